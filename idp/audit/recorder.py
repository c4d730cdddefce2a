"""Records audit events append-only; the only way anything writes to the audit table, and the
one way the rest of the IdP reads it back (``AuditLog.recent``, for the staff console)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from idp.audit.events import AuditEvent
from idp.clock import Clock
from idp.storage.models import AuditRecord
from idp.storage.repositories.audit import AuditRepository

log = logging.getLogger("idp.audit")

#: Detail keys that can never be recorded, whatever a caller passes (defence in depth).
_FORBIDDEN = frozenset(
    {
        "password",
        "secret",
        "client_secret",
        "code",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "otp",
        "code_verifier",
    }
)


#: The most events one read returns.
MAX_READ = 500


@dataclass(frozen=True)
class AuditEntry:
    """One recorded event as readers see it (the detail never held a secret)."""

    id: int
    at: datetime
    event: str
    actor: str | None
    subject: str | None
    client_id: str | None
    ip: str | None
    detail: Mapping[str, Any]


class AuditLog:
    """Write events from the closed catalogue, and read the newest back."""

    def __init__(self, repository: AuditRepository, clock: Clock) -> None:
        self._repository = repository
        self._clock = clock

    def record(
        self,
        event: AuditEvent,
        *,
        actor: str | None = None,
        subject: str | None = None,
        client_id: str | None = None,
        ip: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one event. ``event`` must come from the catalogue."""
        if not isinstance(event, AuditEvent):
            raise TypeError("audit events come from idp.audit.events.AuditEvent only")
        safe = {k: v for k, v in (detail or {}).items() if k.lower() not in _FORBIDDEN}
        self._repository.append(
            AuditRecord(
                at=datetime.fromtimestamp(self._clock.now(), UTC),
                event=event.value,
                actor=actor,
                subject=subject,
                client_id=client_id,
                ip=ip,
                detail=safe,
            )
        )
        log.info("audit %s subject=%s client=%s", event.value, subject, client_id)

    def recent(
        self, *, event: str | None = None, subject: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """The newest events, newest first: of one event name and one subject when given, at
        most ``limit`` (capped at ``MAX_READ``)."""
        rows = self._repository.recent(event=event, subject=subject, limit=max(1, min(limit, MAX_READ)))
        return [
            AuditEntry(
                id=row.id,
                at=row.at,
                event=row.event,
                actor=row.actor,
                subject=row.subject,
                client_id=row.client_id,
                ip=row.ip,
                detail=dict(row.detail or {}),
            )
            for row in rows
        ]
