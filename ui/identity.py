"""Who a browser is: a random user id kept in the browser, and the server's secret that seals it.

Gradio keeps a ``BrowserState`` value in the browser's local storage, encrypted with a secret.
Its default secret is new at every run, so every browser became a stranger after a restart.
The secret now lives in the state folder (``web-secret``, mode 0600, written once), so a
browser keeps its id across restarts, and each browser is still its own user.
"""

from __future__ import annotations

import os
import re
import secrets
import uuid
from pathlib import Path

__all__ = ["SECRET_FILE", "BrowserIdError", "browser_secret", "browser_user", "check_browser_user"]

SECRET_FILE = "web-secret"
_BROWSER_USER = re.compile(r"web-[0-9a-f]{24}")  # what a browser's id must look like


class BrowserIdError(ValueError):
    """A user id given for a browser that is not one (``web-`` and 24 hex digits)."""


def browser_user(stored: str | None) -> str:
    """The user id a browser keeps: its stored one, or a new random one if absent or unreadable.

    >>> browser_user("web-" + "ab" * 12)
    'web-abababababababababababab'
    >>> browser_user(None).startswith("web-")
    True
    """
    if isinstance(stored, str) and _BROWSER_USER.fullmatch(stored):
        return stored
    return f"web-{uuid.uuid4().hex[:24]}"


def check_browser_user(user: object) -> str:
    """``user`` if it is a browser id; otherwise :class:`BrowserIdError` saying what it must be."""
    if not isinstance(user, str) or not _BROWSER_USER.fullmatch(user):
        shown = repr(user) if len(repr(user)) <= 40 else repr(user)[:37] + "..."
        raise BrowserIdError(f"user must be 'web-' followed by 24 lowercase hex digits, got {shown}")
    return user


def browser_secret(state_dir: Path) -> str:
    """The secret that seals browser ids, created in ``state_dir`` with mode 0600 on first use."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / SECRET_FILE
    try:  # O_EXCL: two servers starting at once cannot both write a secret
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:  # readable by others (copied in by hand?): close it again
            path.chmod(0o600)
        secret = path.read_text(encoding="ascii").strip()
        if len(secret) < 32:
            raise ValueError(f"{path} is not a crs web secret (too short); delete it to make a new one") from None
        return secret
    secret = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secret + "\n")
    return secret
