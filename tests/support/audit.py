"""Reading the audit trail back, as an auditor would."""

from __future__ import annotations

from idp.registry import Registry
from idp.storage.repositories.audit import AuditRepository


def audit_events(registry: Registry, event: str) -> list[dict[str, object]]:
    """The recorded events named ``event``, newest first, as plain dicts."""
    return [
        {
            "event": row.event,
            "subject": row.subject,
            "client_id": row.client_id,
            "detail": dict(row.detail or {}),
        }
        for row in AuditRepository(registry.db).recent(event=event)
    ]
