"""Refresh tokens a test holds without walking a sign-in: issued through the service, as the token
endpoint would after a password sign-in."""

from __future__ import annotations

from idp.oidc.refresh import RefreshGrant
from idp.registry import Registry
from idp.settings import LOA_LOW


def password_grant(
    registry: Registry, account_id: str, client_id: str, *, sid: str | None, offline: bool
) -> RefreshGrant:
    """A refresh grant of a password sign-in (``low``, ``pwd``): bound to the SSO session ``sid``,
    or ``offline`` (``offline_access``, outliving every session)."""
    return RefreshGrant(
        family_id=registry.refresh.new_family(),
        client_id=client_id,
        account_id=account_id,
        sid=sid,
        scope="openid offline_access" if offline else "openid",
        auth_time=int(registry.clock.now()),
        acr=LOA_LOW,
        amr=("pwd",),
        offline=offline,
    )
