"""The ephemeral store interface.

Values are bytes with a time to live. Every operation a security decision depends on is atomic on
every backend: ``take`` (read and delete: codes, one-time tokens), ``add`` (set only if absent:
replay caches) and ``incr`` (throttle counters). Small sets (``add_member``, ``remove_member``,
``members``) index what belongs together, such as a person's SSO sessions; adding is atomic.
Delayed queues (``enqueue``, ``claim``, ``dequeue``) hold background jobs, such as back-channel
logout deliveries; ``claim`` is atomic, so two workers never hold the same job at once. A job's due
time is the caller's clock (``now``), as its retries are; only its time to live is the backend's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Claimed:
    """A job a worker claimed from a queue: its id and value."""

    item: str
    value: bytes


class EphemeralStore(Protocol):
    """Short-lived key/value data shared by every IdP process."""

    def put(self, key: str, value: bytes, ttl: int) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds, replacing any previous value."""
        ...

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        """Store only if ``key`` is absent (or expired); True when this call stored it."""
        ...

    def get(self, key: str) -> bytes | None:
        """The live value under ``key``, or None."""
        ...

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The live values under ``keys``, in order (None where absent): one round-trip."""
        ...

    def put_many(self, items: Sequence[tuple[str, bytes]], ttl: int) -> None:
        """``put`` each (key, value) with the same ``ttl``: one round-trip."""
        ...

    def take(self, key: str) -> bytes | None:
        """Atomically read and delete ``key``: of concurrent callers, exactly one gets the value."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        ...

    def incr(self, key: str, ttl: int) -> int:
        """Atomically add one to a counter; a new counter expires after ``ttl`` seconds."""
        ...

    def add_member(self, key: str, member: str, ttl: int) -> None:
        """Add ``member`` to the set under ``key``; the set then lives at least ``ttl`` more
        seconds (adding never shortens it). A set key is never also used for a plain value."""
        ...

    def remove_member(self, key: str, member: str) -> None:
        """Remove ``member`` from the set under ``key`` if present."""
        ...

    def members(self, key: str) -> frozenset[str]:
        """The members of the live set under ``key`` (empty when absent or expired)."""
        ...

    def enqueue(self, queue: str, item: str, value: bytes, *, due: float, ttl: int) -> None:
        """Put job ``item`` in ``queue``, claimable from ``due`` (seconds since the epoch); enqueuing
        an item again replaces its value and due time (a retry). The job is forgotten ``ttl``
        seconds after it was last enqueued, if no worker dequeued it before."""
        ...

    def claim(self, queue: str, *, now: float, lease: float) -> Claimed | None:
        """Atomically claim the job due earliest at or before ``now``: of concurrent claimers exactly
        one gets it. It stays in the queue, due again at ``now + lease``, so the job comes back if
        its worker dies; the worker dequeues or re-enqueues it once done. None when nothing is due."""
        ...

    def dequeue(self, queue: str, item: str) -> None:
        """Remove job ``item`` from ``queue`` if present (done, or given up)."""
        ...

    def ping(self) -> bool:
        """True when the backend answers."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
