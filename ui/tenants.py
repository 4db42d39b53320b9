"""Tenants and their bearer tokens: who may call the API, and whose users a call reaches.

Each tenant's user ids are its own. The recommender sees ``<tenant>/<user id>``; a tenant name
never holds ``/``, so two tenants' ``u1`` can never meet, whatever either sends.

>>> tokens = parse_tokens("shop:s3cret-shop,news:s3cret-news")
>>> sorted(tokens.tenants)
['news', 'shop']
>>> tokens.tenant_of("s3cret-shop")
'shop'
>>> tokens.tenant_of("guess") is None
True
>>> scoped_user("shop", "u1") == scoped_user("news", "u1")
False
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["TENANT_PATTERN", "TenantError", "Tokens", "check_tenant", "parse_tokens", "scoped_user", "tokens_from"]

TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_MIN_TOKEN_CHARS = 8


class TenantError(ValueError):
    """Tokens that cannot be used: the message names the entry and what is wrong with it."""


@dataclass(frozen=True)
class Tokens:
    """Bearer token -> tenant, compared in constant time."""

    by_tenant: Mapping[str, str]

    @property
    def tenants(self) -> list[str]:
        return list(self.by_tenant)

    def tenant_of(self, token: str) -> str | None:
        found = None
        for tenant, known in self.by_tenant.items():  # every token is compared: no timing hint
            if hmac.compare_digest(token.encode(), known.encode()):
                found = tenant
        return found


def check_tenant(name: str) -> str:
    if not TENANT_PATTERN.fullmatch(name):
        raise TenantError(f"tenant {name!r} must be 1-32 of a-z, 0-9, '_' or '-' (starting with a letter or digit)")
    return name


def tokens_from(mapping: Mapping[str, str]) -> Tokens:
    """Check a tenant -> token table: valid names, tokens long enough, no token shared."""
    seen: dict[str, str] = {}
    for tenant, token in mapping.items():
        check_tenant(tenant)
        if len(token) < _MIN_TOKEN_CHARS or any(c.isspace() for c in token):
            raise TenantError(f"the token of tenant {tenant!r} must be at least {_MIN_TOKEN_CHARS} characters "
                              "without spaces")
        if token in seen:
            raise TenantError(f"tenants {seen[token]!r} and {tenant!r} share a token")
        seen[token] = tenant
    return Tokens(dict(mapping))


def parse_tokens(spec: str) -> Tokens:
    """Read ``tenant:token,tenant2:token2`` (the form of ``CRS_API_TOKENS``)."""
    mapping: dict[str, str] = {}
    for number, entry in enumerate((e.strip() for e in spec.split(",")), start=1):
        if not entry:
            continue
        tenant, sep, token = entry.partition(":")
        if not sep:  # the entry may be a bare token: never echo it
            raise TenantError(f"CRS_API_TOKENS entry {number} is not tenant:token")
        if tenant in mapping:
            raise TenantError(f"tenant {tenant!r} is given twice")
        mapping[tenant.strip()] = token.strip()
    return tokens_from(mapping)


def scoped_user(tenant: str, user_id: str) -> str:
    """The id the recommender knows a tenant's user by."""
    return f"{tenant}/{user_id}"
