"""Refresh tokens (RFC 6749 section 6; RFC 9700 section 4.14).

Opaque, stored only as SHA-256, in a rotation family bound to the SSO session (``sid``). Every use
rotates: the presented token is consumed atomically and a new one issued in the same family. A
spent token presented again means it leaked: the whole family is revoked, with the access tokens
it issued. Tokens issued without ``offline_access`` die with the SSO session.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.clock import Clock
from idp.oidc.revocation import TokenLedger
from idp.storage.models import RefreshToken
from idp.storage.repositories.tokens import RefreshTokenRepository


@dataclass(frozen=True)
class RefreshGrant:
    """What a refresh token stands for."""

    family_id: str
    client_id: str
    account_id: str
    sid: str | None
    scope: str
    auth_time: int
    acr: str | None
    amr: tuple[str, ...]
    offline: bool
    claims: str | None = None
    #: The organisation the person acts for (the ``business`` scope).
    organisation: str | None = None


def token_hash(token: str) -> str:
    """The storage key of a refresh token."""
    return hashlib.sha256(token.encode()).hexdigest()


def key_grant(kid: str) -> str:
    """The ledger's name for everything the signing key ``kid`` signed (revoked with the key)."""
    return "key:" + kid


class RefreshTokens:
    """Issue, rotate and revoke refresh tokens."""

    def __init__(
        self,
        repository: RefreshTokenRepository,
        ledger: TokenLedger,
        clock: Clock,
        audit: AuditLog,
        *,
        session_ttl: int,
        offline_ttl: int,
    ) -> None:
        self._repository = repository
        self._ledger = ledger
        self._clock = clock
        self._audit = audit
        self._session_ttl = session_ttl
        self._offline_ttl = offline_ttl

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    def issue(
        self, grant: RefreshGrant, *, code_hash: str | None = None, key_ids: tuple[str, ...] = ()
    ) -> str:
        """A new refresh token in ``grant.family_id``."""
        token = secrets.token_urlsafe(32)
        now = self._now()
        ttl = self._offline_ttl if grant.offline else self._session_ttl
        self._repository.add(
            RefreshToken(
                token_hash=token_hash(token),
                family_id=grant.family_id,
                client_id=grant.client_id,
                account_id=grant.account_id,
                sid=grant.sid,
                scope=grant.scope,
                auth_time=grant.auth_time,
                acr=grant.acr,
                amr=list(grant.amr),
                code_hash=code_hash,
                claims=grant.claims,
                key_ids=" " + " ".join(key_ids) + " " if key_ids else "",
                offline=grant.offline,
                organisation_id=grant.organisation,
                issued_at=now,
                expires_at=now + timedelta(seconds=ttl),
            )
        )
        return token

    @staticmethod
    def new_family() -> str:
        """A fresh family id."""
        return str(uuid.uuid4())

    def consume(self, token: str, client_id: str) -> RefreshGrant | None:
        """Spend ``token`` for ``client_id``; None if it is unknown, expired, revoked or reused."""
        hashed = token_hash(token)
        now = self._now()
        row = self._repository.consume(hashed, client_id, now)
        if row is None:
            existing = self._repository.by_hash(hashed)
            if existing is None or existing.client_id != client_id:
                return None  # unknown, or another client's token: leave it untouched
            if existing.consumed_at is not None and existing.revoked_at is None:
                # RFC 9700 4.14.2: a rotated-out token came back; someone holds a copy.
                self.revoke_family(existing.family_id, reason="reuse")
                self._audit.record(
                    AuditEvent.REFRESH_TOKEN_REUSED,
                    subject=existing.account_id,
                    client_id=existing.client_id,
                    detail={"family": existing.family_id},
                )
            return None
        if row.expires_at <= now:
            return None
        return RefreshGrant(
            family_id=row.family_id,
            client_id=row.client_id,
            account_id=row.account_id,
            sid=row.sid,
            scope=row.scope,
            auth_time=row.auth_time,
            acr=row.acr,
            amr=tuple(row.amr),
            offline=row.offline,
            claims=row.claims,
            organisation=row.organisation_id,
        )

    def release(self, token: str, client_id: str) -> bool:
        """Give back a token consumed for a response that could not be made (nothing was issued
        for it), so that the client's retry is not taken for a reuse; False if it was revoked since
        (a reuse in between revoked its family)."""
        return self._repository.release(token_hash(token), client_id)

    def revoke_family(self, family_id: str, *, reason: str) -> None:
        """Revoke a family and every access token it issued.

        The ledger goes first: it marks the family revoked, so a rotation racing this call either
        inserted its token before the UPDATE below (which then revokes it) or sees the mark.
        """
        self._ledger.revoke_grant("family:" + family_id)
        self._repository.revoke_family(family_id, self._now())

    def revoke_token(self, token: str, client_id: str) -> bool:
        """RFC 7009: revoke the family of ``token`` if it belongs to ``client_id``."""
        row = self._repository.by_hash(token_hash(token))
        if row is None or row.client_id != client_id:
            return False
        self.revoke_family(row.family_id, reason="revoked")
        return True

    def revoke_for_key(self, kid: str) -> list[str]:
        """A revoked signing key takes down the refresh families issued alongside its tokens.

        The key is marked revoked before the families are looked for: a response signed by the
        key just before its revocation either stored its refresh token before the look-up (found
        here) or sees the mark once it has (``HawiyaServer.issue`` checks ``key_grant(kid)``).
        """
        self._ledger.revoke_grant(key_grant(kid))
        families = self._repository.revoke_for_key(kid, self._now())
        for family in families:
            self._ledger.revoke_grant("family:" + family)
        return families

    def holders(self, client_id: str) -> set[str]:
        """The accounts ``client_id`` holds a usable refresh token for, now."""
        return self._repository.holders(client_id, self._now())

    def revoke_for_grant(self, account_id: str, client_id: str) -> int:
        """A withdrawn consent takes down every family the person's grant gave the client, and the
        access tokens they issued; how many families."""
        families = self._repository.revoke_for_grant(account_id, client_id, self._now())
        for family in families:
            self._ledger.revoke_grant("family:" + family)
        return len(families)

    def revoke_account(self, account_id: str) -> list[str]:
        """Every family of the person, offline ones too, and the access tokens they issued (a new
        password evicts whoever held the account); their ids."""
        families = list(self._repository.revoke_for_account(account_id, self._now()))
        for family in families:
            self._ledger.revoke_grant("family:" + family)
        return families

    def revoke_for_code(self, code_hash: str) -> None:
        """A replayed code revokes the refresh families it started."""
        for family in self._repository.revoke_for_code(code_hash, self._now()):
            self._ledger.revoke_grant("family:" + family)

    def revoke_for_session(self, sid: str) -> list[str]:
        """The end of an SSO session revokes its session-bound families (not the ``offline_access``
        ones), with the access tokens they issued; their ids."""
        families = list(self._repository.revoke_for_session(sid, self._now()))
        for family in families:
            self._ledger.revoke_grant("family:" + family)
        return families

    def introspect(self, token: str) -> RefreshToken | None:
        """The live row of ``token`` (for introspection), or None."""
        row = self._repository.by_hash(token_hash(token))
        if row is None or row.consumed_at is not None or row.revoked_at is not None:
            return None
        return row if row.expires_at > self._now() else None
