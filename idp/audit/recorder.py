"""Records audit events append-only; the only way anything writes to the audit table, and the
one way the rest of the IdP reads it back (``AuditLog.recent``, for the staff console)."""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from idp.audit.events import HIGH_VOLUME, AuditEvent
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


#: Called after an event is recorded: (event, subject, actor, detail).
Listener = Callable[[AuditEvent, "str | None", "str | None", Mapping[str, Any]], None]


class AuditLog:
    """Write events from the closed catalogue, and read the newest back."""

    def __init__(self, repository: AuditRepository, clock: Clock) -> None:
        self._repository = repository
        self._clock = clock
        #: High-volume records waiting for the batch writer (only while it runs).
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._batching: threading.Event | None = None
        self._listeners: list[Listener] = []

    #: A batch is written when it holds this many records, or after ``interval`` seconds.
    BATCH_SIZE = 500

    def listen(self, listener: Listener) -> None:
        """Call ``listener`` after each event is recorded (security notifications follow the
        changes they tell of here). A listener that raises is logged; the record stands."""
        self._listeners.append(listener)

    def start_batching(self, interval: float = 0.25) -> None:
        """Write HIGH_VOLUME events in batches from a background thread (``hawiya serve``); the rest
        stay synchronous. ``close`` (and the process's exit) writes what is pending."""
        if self._batching is not None:
            return
        stopping = self._batching = threading.Event()

        def run() -> None:
            while not stopping.wait(interval):
                self.flush()

        threading.Thread(target=run, name="hawiya-audit-batch", daemon=True).start()
        atexit.register(self.close)

    def flush(self) -> None:
        """Write the pending batch now. A failed write is logged and retried with the next batch
        (the records stay pending, at most ten batches of them)."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            self._repository.append_many(batch)
        except Exception:
            log.exception("audit batch of %d records not written; will retry", len(batch))
            with self._lock:
                self._pending[:0] = batch[-10 * self.BATCH_SIZE :]

    def close(self) -> None:
        """Stop batching and write what is pending."""
        if self._batching is not None:
            self._batching.set()
            self._batching = None
        self.flush()

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
        row = {
            "at": datetime.fromtimestamp(self._clock.now(), UTC),
            "event": event.value,
            "actor": actor,
            "subject": subject,
            "client_id": client_id,
            "ip": ip,
            "detail": safe,
        }
        if self._batching is not None and event in HIGH_VOLUME:
            with self._lock:
                self._pending.append(row)
                full = len(self._pending) >= self.BATCH_SIZE
            if full:
                self.flush()
        else:
            self._repository.append(AuditRecord(**row))
        log.info("audit %s subject=%s client=%s", event.value, subject, client_id)
        for listener in self._listeners:
            try:
                listener(event, subject, actor, safe)
            except Exception:
                log.exception("an audit listener failed on %s", event.value)

    def recent(
        self, *, event: str | None = None, subject: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """The newest events, newest first: of one event name and one subject when given, at
        most ``limit`` (capped at ``MAX_READ``)."""
        self.flush()
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
