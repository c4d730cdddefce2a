"""The append-only audit table: insert and read, nothing else."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from idp.storage.db import Database
from idp.storage.models import AuditRecord


class AuditRepository:
    """Append audit records and read them back."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def append(self, record: AuditRecord) -> None:
        """Insert one record."""
        with self._db.transaction() as s:
            s.add(record)

    def recent(
        self, *, event: str | None = None, subject: str | None = None, limit: int = 100
    ) -> Sequence[AuditRecord]:
        """The newest records, optionally of one event and of one subject."""
        with self._db.transaction() as s:
            query = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)
            if event is not None:
                query = query.where(AuditRecord.event == event)
            if subject is not None:
                query = query.where(AuditRecord.subject == subject)
            return s.scalars(query).all()
