"""The ephemeral store interface.

Values are bytes with a time to live. Every operation a security decision depends on is atomic on
every backend: ``take`` (read and delete: codes, one-time tokens), ``add`` (set only if absent:
replay caches) and ``incr`` (throttle counters).
"""

from __future__ import annotations

from typing import Protocol


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

    def take(self, key: str) -> bytes | None:
        """Atomically read and delete ``key``: of concurrent callers, exactly one gets the value."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        ...

    def incr(self, key: str, ttl: int) -> int:
        """Atomically add one to a counter; a new counter expires after ``ttl`` seconds."""
        ...

    def ping(self) -> bool:
        """True when the backend answers."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
