"""The append-only audit table: insert and read, nothing else."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert, select

from idp.storage.db import Database
from idp.storage.models import AuditRecord

_COLUMNS = ("at", "event", "actor", "subject", "client_id", "ip", "detail")
_COPY = f"COPY audit_events ({', '.join(_COLUMNS)}) FROM STDIN"


class AuditRepository:
    """Append audit records and read them back."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def append(self, record: AuditRecord) -> None:
        """Insert one record."""
        with self._db.transaction() as s:
            s.add(record)

    def append_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert several records, given as column values, in one transaction: COPY on PostgreSQL
        (about 8 µs a row, against 50 µs through an executemany), an executemany elsewhere."""
        if self._db.engine.dialect.name != "postgresql":
            with self._db.transaction() as s:
                s.execute(insert(AuditRecord), list(rows))
            return
        with self._db.engine.begin() as conn:
            raw = conn.connection.driver_connection
            with raw.cursor() as cursor, cursor.copy(_COPY) as copy:  # type: ignore[union-attr]
                for row in rows:
                    copy.write_row([*(row[c] for c in _COLUMNS[:-1]), json.dumps(row["detail"])])

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
