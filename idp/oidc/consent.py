"""Consent: a person allows a client to receive the claims of the scopes it asks for.

Consent is remembered per (person, client); the page is skipped when every requested scope was
already allowed, and shown again with ``prompt=consent``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.clock import Clock
from idp.storage.repositories.consents import ConsentRepository

#: Scopes that need no consent: ``openid`` only says "sign me in" and releases ``sub``.
IMPLICIT_SCOPES = frozenset({"openid"})


class ConsentService:
    """Decide whether to ask, and remember answers."""

    def __init__(self, repository: ConsentRepository, clock: Clock, audit: AuditLog) -> None:
        self._repository = repository
        self._clock = clock
        self._audit = audit

    def missing(self, account_id: str, client_id: str, scopes: set[str]) -> set[str]:
        """Requested scopes the person has not allowed this client yet."""
        wanted = scopes - IMPLICIT_SCOPES
        if not wanted:
            return set()
        return wanted - self._repository.scopes(account_id, client_id)

    def grant(self, account_id: str, client_id: str, scopes: set[str]) -> None:
        """Remember that the person allowed ``scopes``."""
        now = datetime.fromtimestamp(self._clock.now(), UTC)
        self._repository.merge(account_id, client_id, scopes - IMPLICIT_SCOPES, now)
        self._audit.record(
            AuditEvent.CONSENT_GRANTED,
            subject=account_id,
            client_id=client_id,
            detail={"scopes": sorted(scopes)},
        )

    def deny(self, account_id: str, client_id: str) -> None:
        """Record that the person refused."""
        self._audit.record(AuditEvent.CONSENT_DENIED, subject=account_id, client_id=client_id)
