"""The result of authenticating a person: what the protocol consumes (OIDC Core 2: auth_time,
acr, amr). ``idp.oidc`` may import this module and nothing else from ``idp.authn``."""

from __future__ import annotations

from dataclasses import dataclass

from idp.settings import ACR_VALUES, LOA_LOW


def level_rank(acr: str | None) -> int:
    """The strength of a Hawiya level (0 low, 1 substantial, 2 high); -1 for anything else."""
    return ACR_VALUES.index(acr) if acr in ACR_VALUES else -1


@dataclass(frozen=True)
class AuthResult:
    """Who signed in, when, how (amr, RFC 8176) and how strongly (acr)."""

    account_id: str
    auth_time: int
    amr: tuple[str, ...] = ("pwd",)
    acr: str = LOA_LOW

    def meets(self, required: str) -> bool:
        """True when this authentication is at least as strong as the level ``required``."""
        return level_rank(self.acr) >= level_rank(required)
