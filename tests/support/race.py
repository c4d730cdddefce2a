"""A worker that races other processes to take keys from the embedded ephemeral store.

It lives here rather than in the test module so a spawned process imports only the store, not the
whole test suite.
"""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from idp.clock import FrozenClock
from idp.storage.ephemeral.embedded import EmbeddedStore


def take_all(path: str, start: float, keys: list[str], barrier: Barrier, results: Queue[list[str]]) -> None:
    """Open the store, wait for the other racers, try to take every key; report the keys won."""
    store = EmbeddedStore(path, clock=FrozenClock(start))
    barrier.wait(timeout=30)
    won = [key for key in keys if store.take(key) is not None]
    store.close()
    results.put(won)
