"""Per-process caches and the generation counter that tells every process to forget."""

from __future__ import annotations

from pathlib import Path

import pytest

from idp.clock import FrozenClock
from idp.storage.ephemeral.embedded import EmbeddedStore
from idp.storage.ephemeral.redis import EphemeralUnavailable
from idp.storage.generation import Cached, Generation


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "ephemeral.db", clock=FrozenClock(1_000_000))


def test_a_value_is_loaded_once_until_the_generation_moves(store: EmbeddedStore) -> None:
    ticks = Ticks()
    mine = Generation(store, "clients", monotonic=ticks)
    theirs = Generation(store, "clients", monotonic=ticks)  # another process's view
    cache: Cached[str] = Cached(mine, monotonic=ticks)
    loads: list[str] = []

    def load(value: str) -> str:
        loads.append(value)
        return value

    assert cache.get("a", lambda: load("one")) == "one"
    assert cache.get("a", lambda: load("two")) == "one"
    theirs.bump()  # a change made elsewhere: seen at the next check, not before
    assert cache.get("a", lambda: load("two")) == "one"
    ticks.now += 1.0
    assert cache.get("a", lambda: load("two")) == "two"
    mine.bump()  # a change made here: seen at once
    assert cache.get("a", lambda: load("three")) == "three"
    assert loads == ["one", "two", "three"]


def test_nothing_is_kept_longer_than_max_age(store: EmbeddedStore) -> None:
    ticks = Ticks()
    cache: Cached[int] = Cached(Generation(store, "keys", monotonic=ticks), max_age=60, monotonic=ticks)
    assert cache.get("k", lambda: 1) == 1
    ticks.now += 59
    assert cache.get("k", lambda: 2) == 1
    ticks.now += 2
    assert cache.get("k", lambda: 3) == 3


def test_a_full_cache_drops_the_oldest_entry(store: EmbeddedStore) -> None:
    ticks = Ticks()
    cache: Cached[int] = Cached(Generation(store, "clients", monotonic=ticks), max_entries=3, monotonic=ticks)
    for n in range(3):
        cache.get(n, lambda n=n: n)
    cache.get(3, lambda: 3)  # a fourth: 0, loaded first, makes room
    assert cache.get(0, lambda: 99) == 99  # reloaded (and now 1 is the oldest)
    assert cache.get(2, lambda: 98) == 2
    assert cache.get(3, lambda: 97) == 3
    assert cache.get(1, lambda: 96) == 96


class BrokenStore(EmbeddedStore):
    """A store that cannot be reached (Redis down)."""

    broken = True

    def get(self, key: str) -> bytes | None:
        if self.broken:
            raise EphemeralUnavailable("down")
        return super().get(key)

    def incr(self, key: str, ttl: int) -> int:
        if self.broken:
            raise EphemeralUnavailable("down")
        return super().incr(key, ttl)


def test_without_the_store_nothing_is_trusted(tmp_path: Path) -> None:
    store = BrokenStore(tmp_path / "e.db", clock=FrozenClock(1_000_000))
    ticks = Ticks()
    generation = Generation(store, "clients", monotonic=ticks)
    cache: Cached[int] = Cached(generation, monotonic=ticks)
    values = iter(range(10))
    assert cache.get("k", lambda: next(values)) == 0
    assert cache.get("k", lambda: next(values)) == 1  # every read goes to the database
    generation.bump()  # does not raise
    store.broken = False
    assert cache.get("k", lambda: next(values)) == 2
    assert cache.get("k", lambda: next(values)) == 2  # trusted again
