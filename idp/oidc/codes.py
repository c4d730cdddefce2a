"""Authorization codes (RFC 6749 4.1: 60 s, single use, atomic consume).

A code is stored only as its SHA-256, in the ephemeral store. Consuming it is one atomic ``take``:
of two concurrent redemptions exactly one succeeds. A spent code leaves a marker behind, so a replay
is recognised, audited, and revokes what the code issued (RFC 6749 4.1.2). Only a redemption by the
client the code was issued to, with the same redirect_uri, spends it: another client presenting it
is refused and leaves it to its rightful client.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from authlib.oidc.core import AuthorizationCodeMixin

from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.clock import Clock
from idp.storage.ephemeral import EphemeralStore

#: How long a spent code is remembered, to recognise replays.
SPENT_MEMORY = 3600


@dataclass(frozen=True)
class AuthorizationCode(AuthorizationCodeMixin):
    """What a code stands for; implements Authlib's AuthorizationCodeMixin."""

    code_hash: str
    client_id: str
    account_id: str
    redirect_uri: str | None
    scope: str
    nonce: str | None
    auth_time: int
    acr: str
    amr: tuple[str, ...]
    sid: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    #: The OIDC Core 5.5 claims request (JSON), if any.
    claims: str | None = None
    #: The organisation the person chose to act for (the ``business`` scope).
    organisation: str | None = None

    def get_redirect_uri(self) -> str | None:
        """The redirect_uri of the authorization request (must match at /token)."""
        return self.redirect_uri

    def get_scope(self) -> str:
        """Granted scope."""
        return self.scope

    def get_nonce(self) -> str | None:
        """The request's nonce."""
        return self.nonce

    def get_auth_time(self) -> int:
        """When the person authenticated."""
        return self.auth_time

    def get_acr(self) -> str:
        """Level of assurance reached."""
        return self.acr

    def get_amr(self) -> list[str]:
        """Methods used."""
        return list(self.amr)


def code_hash(code: str) -> str:
    """The storage key of a code."""
    return hashlib.sha256(code.encode()).hexdigest()


class CodeStore:
    """Save and atomically consume authorization codes."""

    def __init__(self, store: EphemeralStore, clock: Clock, audit: AuditLog, *, ttl: int) -> None:
        self._store = store
        self._clock = clock
        self._audit = audit
        self.ttl = ttl

    def save(self, code: str, **fields: object) -> AuthorizationCode:
        """Store what ``code`` stands for, for ``ttl`` seconds."""
        hashed = code_hash(code)
        record = AuthorizationCode(
            code_hash=hashed,
            expires_at=self._clock.now() + self.ttl,
            **fields,  # type: ignore[arg-type]
        )
        self._store.put("code:" + hashed, json.dumps(asdict(record)).encode(), self.ttl)
        return record

    def was_spent(self, code: str) -> bool:
        """True when ``code`` was redeemed before (a replay)."""
        return self._store.get("code-spent:" + code_hash(code)) is not None

    def consume(self, code: str, client_id: str, redirect_uri: str | None) -> AuthorizationCode | None:
        """The code's record if it is live, unspent, was issued to ``client_id`` and asked for with
        ``redirect_uri``; else None. Only a request that passes these checks spends the code."""
        hashed = code_hash(code)
        # Compare before spending: a client presenting a code that is not its own must not burn it,
        # or the rightful client's redemption would look like a replay and revoke its tokens. The
        # stored record is written once and never changed, so what is read here is what is taken.
        raw = self._store.get("code:" + hashed)
        if raw is not None and not self._redeemable(_record(raw), client_id, redirect_uri):
            return None
        # The spent marker is claimed before the code is taken, atomically (``add``): of concurrent
        # redemptions exactly one wins, and a loser must see the marker, or its replay would go
        # unnoticed (RFC 6749 4.1.2).
        if not self._store.add("code-spent:" + hashed, client_id.encode(), SPENT_MEMORY):
            spent = self._store.get("code-spent:" + hashed)
            self._audit.record(
                AuditEvent.CODE_REPLAYED,
                client_id=client_id,
                detail={"issued_to": spent.decode() if spent else None},
            )
            return None
        raw = self._store.take("code:" + hashed)
        if raw is None:  # never issued, or expired: not a code anyone redeemed
            self._store.delete("code-spent:" + hashed)
            return None
        record = _record(raw)
        if not self._redeemable(record, client_id, redirect_uri):
            return None
        return record

    def _redeemable(self, record: AuthorizationCode, client_id: str, redirect_uri: str | None) -> bool:
        # RFC 6749 4.1.3: issued to the authenticated client, and the redirect_uri identical to the
        # authorization request's.
        return (
            record.client_id == client_id
            and (record.redirect_uri is None or record.redirect_uri == redirect_uri)
            and record.expires_at > self._clock.now()
        )


def _record(raw: bytes) -> AuthorizationCode:
    data = json.loads(raw)
    return AuthorizationCode(**{**data, "amr": tuple(data["amr"])})
