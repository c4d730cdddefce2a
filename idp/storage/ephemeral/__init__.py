"""Ephemeral data (codes, sessions, parked sign-ins, replay and throttle counters).

One small interface, two backends (Redis for scale-out, embedded SQLite for one machine), and one
contract test run against both.
"""

from __future__ import annotations

from idp.clock import Clock
from idp.settings import Settings
from idp.storage.ephemeral.base import EphemeralStore


def open_store(settings: Settings, clock: Clock) -> EphemeralStore:
    """Open the backend the settings name."""
    if settings.uses_redis:
        from idp.storage.ephemeral.redis import RedisStore

        return RedisStore(settings.ephemeral_url, prefix=settings.redis_prefix)
    from idp.storage.ephemeral.embedded import EmbeddedStore

    return EmbeddedStore(settings.embedded_ephemeral_path, clock=clock)


__all__ = ["EphemeralStore", "open_store"]
