"""Key administration: what security staff do to signing keys, across services.

Revoking a key is more than changing its state: the refresh tokens issued alongside tokens it
signed must die too (their access tokens already fail: the key is no longer published).
"""

from __future__ import annotations

from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.keys.keystore import KeyStore, PublicKeyInfo
from idp.oidc.refresh import RefreshTokens


class KeyAdministration:
    """Revoke keys with everything that depends on them."""

    def __init__(self, keystore: KeyStore, refresh: RefreshTokens, audit: AuditLog) -> None:
        self._keystore = keystore
        self._refresh = refresh
        self._audit = audit

    def revoke(self, kid: str, *, reason: str, actor: str | None = None) -> PublicKeyInfo:
        """Withdraw ``kid`` at once and revoke the refresh families issued alongside its tokens."""
        info = self._keystore.revoke(kid, reason=reason, actor=actor)
        families = self._refresh.revoke_for_key(kid)
        self._audit.record(
            AuditEvent.TOKEN_REVOKED,
            actor=actor,
            detail={"reason": "signing_key_revoked", "kid": kid, "refresh_families": len(families)},
        )
        return info
