"""Authorization codes (RFC 6749 4.1: 60 s, single use, atomic consume).

A code is stored only as its SHA-256, in the ephemeral store. Consuming it is one atomic ``take``:
of two concurrent redemptions exactly one succeeds. A spent code leaves a marker behind, so a replay
is recognised, audited, and revokes what the code issued (RFC 6749 4.1.2).
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

    def consume(self, code: str, client_id: str) -> AuthorizationCode | None:
        """The code's record if it is live, unspent and was issued to ``client_id``; else None."""
        hashed = code_hash(code)
        # The spent marker is claimed before the code is taken, atomically (``add``): a concurrent
        # redemption that loses must see it, or its replay would go unnoticed (RFC 6749 4.1.2).
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
        data = json.loads(raw)
        record = AuthorizationCode(**{**data, "amr": tuple(data["amr"])})
        # RFC 6749 4.1.3: the code must have been issued to the authenticated client.
        if record.client_id != client_id or record.expires_at <= self._clock.now():
            return None
        return record
