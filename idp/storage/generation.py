"""Caches that every process may keep, and one counter per kind of data that tells them it changed.

The token endpoint needs the client and the current signing key on every request; both change a few
times a year. Reading them from the database each time cost most of the request (two round-trips
and a transaction each), so each process keeps them, and a ``Generation`` says when to forget:

- a change made through the services (``ClientService``, ``KeyStore``) bumps the generation in the
  ephemeral store (shared by every process) and forgets at once in the process that made it;
- every other process reads the generation at most once per ``check_every`` seconds (one round-trip
  to Redis a second, not one a request) and forgets when it moved: a disabled client or a revoked
  key stops being served everywhere within about a second;
- nothing is kept longer than ``max_age`` whatever the counter says, so a change made behind the
  services' back (SQL by hand, a restored backup) is seen within that time.

When the ephemeral store cannot be read, caches are not trusted: every read goes to the database
(slower, never stale) until the store answers again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from idp.storage.ephemeral.base import EphemeralStore
from idp.storage.ephemeral.redis import EphemeralUnavailable

T = TypeVar("T")

#: How long the counter lives in the ephemeral store. A counter that expired (or a Redis restarted
#: empty) starts again from 1, which any process holding another value reads as a change.
_COUNTER_TTL = 400 * 24 * 3600


class Generation:
    """A change counter named ``name``, shared through the ephemeral store."""

    def __init__(
        self,
        store: EphemeralStore,
        name: str,
        *,
        check_every: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._key = f"generation:{name}"
        self._check_every = check_every
        self._monotonic = monotonic
        self._local = 0
        self._seen: bytes | None = None
        self._checked_at = float("-inf")
        self._trusted = False

    def bump(self) -> None:
        """The data changed: every process forgets it (this one at once, others within a check)."""
        self._local += 1
        try:
            self._store.incr(self._key, _COUNTER_TTL)
        except EphemeralUnavailable:
            self._trusted = False

    def token(self) -> tuple[int, bytes | None] | None:
        """What a cache entry remembers to tell whether it is still good; None when nothing may be
        trusted (the store is down)."""
        now = self._monotonic()
        if now - self._checked_at >= self._check_every or not self._trusted:
            try:
                self._seen = self._store.get(self._key)
                self._trusted = True
            except EphemeralUnavailable:
                self._trusted = False
            self._checked_at = now
        return (self._local, self._seen) if self._trusted else None


class Cached(Generic[T]):
    """Values by key, each good while the generation has not moved and for ``max_age`` at most.
    At most ``max_entries`` are kept; beyond that the one loaded longest ago goes first."""

    def __init__(
        self,
        generation: Generation,
        *,
        max_age: float = 60.0,
        max_entries: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._generation = generation
        self._max_age = max_age
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._entries: dict[Hashable, tuple[object, float, T]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The cached value of ``key``, or ``load()`` (then kept)."""
        token = self._generation.token()
        now = self._monotonic()
        entry = self._entries.get(key)
        if token is not None and entry is not None and entry[0] == token and now - entry[1] < self._max_age:
            return entry[2]
        value = load()
        if token is not None:
            with self._lock:
                self._entries.pop(key, None)  # a refreshed entry goes to the back of the line
                while len(self._entries) >= self._max_entries:
                    del self._entries[next(iter(self._entries))]  # the oldest loaded
                self._entries[key] = (token, now, value)
        return value

    def changed(self) -> None:
        """What the cache holds changed: every process forgets it (this one at once, the others
        at their next look at the generation)."""
        self._generation.bump()
        with self._lock:
            self._entries.clear()
