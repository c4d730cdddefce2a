"""Records audit events append-only; the only way anything writes to the audit table."""

from __future__ import annotations

import logging
from collections.abc import Mapping
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


class AuditLog:
    """Write events from the closed catalogue."""

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
