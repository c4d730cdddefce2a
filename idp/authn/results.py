"""The result of authenticating a person: what the protocol consumes (OIDC Core 2: auth_time,
acr, amr). ``idp.oidc`` may import this module and nothing else from ``idp.authn``."""

from __future__ import annotations

from dataclasses import dataclass

from idp.settings import LOA_LOW


@dataclass(frozen=True)
class AuthResult:
    """Who signed in, when, how (amr, RFC 8176) and how strongly (acr)."""

    account_id: str
    auth_time: int
    amr: tuple[str, ...] = ("pwd",)
    acr: str = LOA_LOW
