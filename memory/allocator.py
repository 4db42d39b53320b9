"""A C allocator that wipes what it frees, so a forgotten user's bytes do not reach other files.

The embedded Chroma index writes buffers it never fully initialised into its files. With
glibc's defaults those buffers can hold the freed bytes of an earlier message, so after
"forget me" a sentence of the forgotten user was found in another user's ``length.bin``
(about one run in six of ``tests/test_forget_me.py``'s scenario; none in 30 with these
settings, at no measurable cost). glibc reads its tunables only when a process starts: the
``crs`` command starts itself again with them (:func:`ensure_private_allocator`); a program
that embeds crs with the embedded memory store should be started with
``GLIBC_TUNABLES`` as :func:`private_allocator_env` gives it.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from collections.abc import Mapping

__all__ = [
    "TUNABLES", "allocator_is_private", "ensure_private_allocator", "private_allocator_env", "warn_if_not_private",
]

log = logging.getLogger(__name__)

#: no per-thread cache of freed chunks (it skips the wiping), and a byte to wipe them with
TUNABLES = ("glibc.malloc.tcache_count=0", "glibc.malloc.perturb=165")
_REEXEC_MARK = "CRS_ALLOCATOR_REEXEC"


def _glibc() -> bool:
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def allocator_is_private(env: Mapping[str, str] | None = None) -> bool:
    """True where the wiping is on (or where there is no glibc to set it on)."""
    env = os.environ if env is None else env
    have = set(env.get("GLIBC_TUNABLES", "").split(":"))
    return not _glibc() or all(t in have for t in TUNABLES)


def private_allocator_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with the tunables added to any already there.

    >>> private_allocator_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})["GLIBC_TUNABLES"]
    'glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0:glibc.malloc.perturb=165'
    """
    out = dict(os.environ if env is None else env)
    have = [t for t in out.get("GLIBC_TUNABLES", "").split(":") if t]
    keys = {t.split("=")[0] for t in TUNABLES}
    out["GLIBC_TUNABLES"] = ":".join([*(t for t in have if t.split("=")[0] not in keys), *TUNABLES])
    return out


def ensure_private_allocator() -> None:
    """Start this process again with the tunables, unless they are on (or this is not glibc).

    Call it first thing in a program's ``main``: nothing done before it survives. It tries
    once (a mark in the environment stops a loop) and carries on, with a warning, when it
    cannot.
    """
    if allocator_is_private() or os.environ.get(_REEXEC_MARK):
        if not allocator_is_private():
            log.warning("could not restart with GLIBC_TUNABLES=%s; forget-me may leave bytes in index files",
                        ":".join(TUNABLES))
        return
    env = private_allocator_env()
    env[_REEXEC_MARK] = "1"
    argv = [sys.executable, *sys.orig_argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, argv, env)
    except OSError as exc:
        log.warning("could not restart with a private allocator: %s", exc)


def warn_if_not_private() -> None:
    """One warning, for programs that open the embedded store without the tunables."""
    if not allocator_is_private() and not _warned:
        _warned.append(True)
        log.warning("the embedded memory store runs without GLIBC_TUNABLES=%s: after forget-me, freed "
                    "bytes of the user may reach other users' index files (see crs.memory.allocator)",
                    ":".join(TUNABLES))


_warned: list[bool] = []
