"""One contract for the ephemeral store, run against both backends (same interface, same
contract tests; docs/architecture.md section 1): the embedded SQLite file and Redis.

Codes, one-time tokens, replay caches and throttle counters rely on exactly this behaviour, so a
backend that passes here can replace the other. Time on the embedded store is the injected clock;
Redis keeps its own time, so its expiry is checked with a 1-second TTL and a short real sleep
(the only sleep in the suite).
"""

from __future__ import annotations

import multiprocessing
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from idp.clock import FrozenClock
from idp.storage.ephemeral.base import EphemeralStore
from idp.storage.ephemeral.embedded import EmbeddedStore
from tests.conftest import REDIS_URL, require_servers
from tests.support.race import take_all

#: Long enough never to lapse during a test that is not about expiry.
LONG = 300


@dataclass
class Harness:
    """A store under test and a way to let time pass for it."""

    name: str
    store: EphemeralStore
    #: Let ``seconds`` pass as the store sees time (the frozen clock, or a real sleep on Redis).
    elapse: Callable[[float], None]


def _redis_store(prefix: str) -> EphemeralStore:
    from idp.storage.ephemeral.redis import RedisStore

    return RedisStore(REDIS_URL, prefix=prefix)


def _forget_redis_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


@pytest.fixture(params=["embedded", "redis"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """The embedded store on a temporary file with a frozen clock, or Redis under a unique prefix."""
    if request.param == "embedded":
        clock = FrozenClock()
        embedded = EmbeddedStore(tmp_path / "ephemeral.db", clock=clock)
        yield Harness("embedded", embedded, clock.advance)
        embedded.close()
        return
    require_servers()
    prefix = f"hawiya-test:{secrets.token_hex(6)}:"
    store = _redis_store(prefix)
    try:
        yield Harness("redis", store, time.sleep)
    finally:
        store.close()
        _forget_redis_prefix(prefix)


def test_put_then_get_returns_the_value(harness: Harness) -> None:
    harness.store.put("code:a", b"first", LONG)
    assert harness.store.get("code:a") == b"first"


def test_put_overwrites(harness: Harness) -> None:
    harness.store.put("code:a", b"first", LONG)
    harness.store.put("code:a", b"second", LONG)
    assert harness.store.get("code:a") == b"second"


def test_missing_key_is_none(harness: Harness) -> None:
    assert harness.store.get("never-stored") is None
    assert harness.store.take("never-stored") is None


def test_delete_removes_and_tolerates_absence(harness: Harness) -> None:
    harness.store.put("session:a", b"v", LONG)
    harness.store.delete("session:a")
    assert harness.store.get("session:a") is None
    harness.store.delete("session:a")  # deleting what is gone is not an error


def test_keys_are_independent(harness: Harness) -> None:
    harness.store.put("k1", b"one", LONG)
    harness.store.put("k2", b"two", LONG)
    harness.store.delete("k1")
    assert harness.store.get("k2") == b"two"


def test_add_stores_only_when_absent(harness: Harness) -> None:
    assert harness.store.add("jti:1", b"first", LONG) is True
    assert harness.store.add("jti:1", b"second", LONG) is False
    assert harness.store.get("jti:1") == b"first"


def test_add_after_put_does_not_overwrite(harness: Harness) -> None:
    harness.store.put("jti:1", b"put", LONG)
    assert harness.store.add("jti:1", b"added", LONG) is False
    assert harness.store.get("jti:1") == b"put"


def test_take_returns_the_value_once(harness: Harness) -> None:
    harness.store.put("code:a", b"payload", LONG)
    assert harness.store.take("code:a") == b"payload"
    assert harness.store.take("code:a") is None
    assert harness.store.get("code:a") is None


def test_take_has_exactly_one_winner_among_threads(harness: Harness) -> None:
    """Eight threads race to take the same key, fifty rounds: each round exactly one wins."""
    racers, rounds = 8, 50
    start = threading.Barrier(racers + 1, timeout=30)
    done = threading.Barrier(racers + 1, timeout=30)
    wins: list[list[bytes]] = [[] for _ in range(rounds)]
    lock = threading.Lock()
    errors: list[BaseException] = []

    def racer() -> None:
        try:
            for index in range(rounds):
                start.wait()
                value = harness.store.take("code:raced")
                if value is not None:
                    with lock:
                        wins[index].append(value)
                done.wait()
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
            start.abort()
            done.abort()
        finally:
            if isinstance(harness.store, EmbeddedStore):
                harness.store.close()  # this thread's own SQLite connection

    threads = [threading.Thread(target=racer) for _ in range(racers)]
    for thread in threads:
        thread.start()
    try:
        for index in range(rounds):
            harness.store.put("code:raced", f"round-{index}".encode(), LONG)
            start.wait()
            done.wait()
    except threading.BrokenBarrierError:
        pass
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert wins == [[f"round-{index}".encode()] for index in range(rounds)]


def test_incr_counts(harness: Harness) -> None:
    assert [harness.store.incr("fail:alice", LONG) for _ in range(3)] == [1, 2, 3]
    assert harness.store.incr("fail:bob", LONG) == 1


def test_incr_is_atomic_across_threads(harness: Harness) -> None:
    """No lost updates: 8 threads x 25 increments end at exactly 200."""
    seen: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            mine = [harness.store.incr("fail:shared", LONG) for _ in range(25)]
            with lock:
                seen.extend(mine)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            if isinstance(harness.store, EmbeddedStore):
                harness.store.close()

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert sorted(seen) == list(range(1, 201))


def test_incr_window_is_fixed_from_the_first_increment_then_restarts(harness: Harness) -> None:
    """A throttle window starts at the first failure; later increments do not extend it."""
    assert harness.store.incr("fail:alice", 1) == 1
    assert harness.store.incr("fail:alice", 1) == 2
    harness.elapse(0.6)
    assert harness.store.incr("fail:alice", 1) == 3
    harness.elapse(0.6)  # 1.2 s after the first increment: the window has closed
    assert harness.store.incr("fail:alice", 1) == 1
    assert harness.store.incr("fail:alice", 1) == 2


def test_values_expire(harness: Harness) -> None:
    harness.store.put("session:a", b"put", 1)
    assert harness.store.add("jti:1", b"added", 1) is True
    harness.store.put("code:a", b"code", 1)
    harness.store.put("session:long", b"still here", LONG)
    harness.store.put("session:renewed", b"short", 1)
    harness.store.put("session:renewed", b"renewed", LONG)  # a put replaces the time to live too
    assert harness.store.get("session:a") == b"put"
    harness.elapse(1.2)
    assert harness.store.get("session:a") is None
    assert harness.store.take("code:a") is None
    # An expired entry no longer blocks add: the replay window has passed.
    assert harness.store.add("jti:1", b"again", LONG) is True
    assert harness.store.get("jti:1") == b"again"
    assert harness.store.get("session:long") == b"still here"
    assert harness.store.get("session:renewed") == b"renewed"


def test_get_many_reads_in_order_with_none_for_missing(harness: Harness) -> None:
    harness.store.put("a", b"1", LONG)
    harness.store.put("c", b"3", LONG)
    assert harness.store.get_many(["a", "b", "c", "a"]) == [b"1", None, b"3", b"1"]
    assert harness.store.get_many([]) == []


def test_put_many_stores_each_with_the_ttl(harness: Harness) -> None:
    harness.store.put("b", b"old", LONG)
    harness.store.put_many([("a", b"1"), ("b", b"2")], 1)
    harness.store.put_many([], 1)
    assert harness.store.get_many(["a", "b"]) == [b"1", b"2"]
    harness.elapse(1.2)
    assert harness.store.get_many(["a", "b"]) == [None, None]


def test_ping(harness: Harness) -> None:
    assert harness.store.ping() is True


@pytest.mark.parametrize(
    "value",
    [bytes(range(256)), b"\x00", b"\x00\xff\x00", b"", "حوية".encode(), b"x" * 65536],
    ids=["all-bytes", "nul", "nul-ff-nul", "empty", "utf8-arabic", "64KiB"],
)
def test_binary_values_round_trip(harness: Harness, value: bytes) -> None:
    harness.store.put("blob", value, LONG)
    assert harness.store.get("blob") == value
    assert harness.store.add("blob2", value, LONG) is True
    assert harness.store.take("blob2") == value


def test_keys_with_unusual_characters(harness: Harness) -> None:
    keys = ["a:b:c", "space key", "مفتاح", "*", "%", "_"]
    for index, key in enumerate(keys):
        harness.store.put(key, str(index).encode(), LONG)
    assert [harness.store.get(key) for key in keys] == [str(i).encode() for i in range(len(keys))]


def test_a_missing_set_has_no_members(harness: Harness) -> None:
    assert harness.store.members("sso-account:nobody") == frozenset()
    harness.store.remove_member("sso-account:nobody", "a")  # removing from nothing is not an error


def test_set_members_are_added_once_and_removed(harness: Harness) -> None:
    harness.store.add_member("sso-account:1", "a", LONG)
    harness.store.add_member("sso-account:1", "b", LONG)
    harness.store.add_member("sso-account:1", "a", LONG)
    harness.store.add_member("sso-account:2", "c", LONG)
    assert harness.store.members("sso-account:1") == {"a", "b"}
    harness.store.remove_member("sso-account:1", "a")
    harness.store.remove_member("sso-account:1", "a")
    assert harness.store.members("sso-account:1") == {"b"}
    assert harness.store.members("sso-account:2") == {"c"}


def test_a_set_expires_as_a_whole_and_adding_only_lengthens_it(harness: Harness) -> None:
    harness.store.add_member("short", "a", 1)
    harness.store.add_member("lengthened", "a", 1)
    harness.store.add_member("lengthened", "b", LONG)
    harness.store.add_member("kept", "a", LONG)
    harness.store.add_member("kept", "b", 1)  # a shorter ttl never shortens the set
    harness.elapse(1.2)
    assert harness.store.members("short") == frozenset()
    assert harness.store.members("lengthened") == {"a", "b"}
    assert harness.store.members("kept") == {"a", "b"}
    # An expired set starts again empty.
    harness.store.add_member("short", "c", LONG)
    assert harness.store.members("short") == {"c"}


def test_adding_members_is_atomic_across_threads(harness: Harness) -> None:
    """No lost members: 8 threads x 25 distinct members end as one set of 200."""
    errors: list[BaseException] = []

    def add(thread: int) -> None:
        try:
            for index in range(25):
                harness.store.add_member("sso-account:shared", f"{thread}-{index}", LONG)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            if isinstance(harness.store, EmbeddedStore):
                harness.store.close()

    threads = [threading.Thread(target=add, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert harness.store.members("sso-account:shared") == {f"{t}-{i}" for t in range(8) for i in range(25)}


# -- embedded only: time is the injected clock, and atomicity holds across processes --------------


def test_embedded_ttl_follows_the_injected_clock(tmp_path: Path) -> None:
    clock = FrozenClock(start=1_000_000.0)
    store = EmbeddedStore(tmp_path / "ephemeral.db", clock=clock)
    store.put("code:a", b"v", 60)
    clock.advance(59.9)
    assert store.get("code:a") == b"v"
    clock.advance(0.1)  # exactly 60 s: expired, like Redis
    assert store.get("code:a") is None
    store.close()


def test_embedded_store_is_shared_by_two_openers_of_the_file(tmp_path: Path) -> None:
    """Two gunicorn workers open the same file: what one writes, the other takes."""
    clock = FrozenClock()
    first = EmbeddedStore(tmp_path / "ephemeral.db", clock=clock)
    second = EmbeddedStore(tmp_path / "ephemeral.db", clock=clock)
    first.put("code:a", b"v", LONG)
    assert second.take("code:a") == b"v"
    assert first.get("code:a") is None
    first.close()
    second.close()


def test_embedded_take_has_one_winner_across_processes(tmp_path: Path) -> None:
    """Two processes (as two gunicorn workers) race to take the same 50 keys in the same order."""
    path = str(tmp_path / "ephemeral.db")
    start = 1_000_000.0
    store = EmbeddedStore(path, clock=FrozenClock(start))
    keys = [f"code:{index}" for index in range(50)]
    for key in keys:
        store.put(key, b"v", LONG)
    store.close()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    workers = [context.Process(target=take_all, args=(path, start, keys, barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    won = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert not set(won[0]) & set(won[1])
    assert sorted(won[0] + won[1]) == sorted(keys)


# -- Redis only: the boundary keeps redis-py's errors inside, and prefixes isolate deployments ------


def test_redis_prefixes_isolate_deployments() -> None:
    require_servers()
    one, two = f"hawiya-test:{secrets.token_hex(6)}:", f"hawiya-test:{secrets.token_hex(6)}:"
    first, second = _redis_store(one), _redis_store(two)
    try:
        first.put("code:a", b"first", LONG)
        assert second.get("code:a") is None
        assert second.add("code:a", b"second", LONG) is True
        assert first.take("code:a") == b"first"
        assert second.get("code:a") == b"second"
    finally:
        first.close()
        second.close()
        _forget_redis_prefix(one)
        _forget_redis_prefix(two)


def test_unreachable_redis_raises_a_domain_error_and_pings_false() -> None:
    from idp.errors import HawiyaError
    from idp.storage.ephemeral.redis import EphemeralUnavailable, RedisStore

    store = RedisStore("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        assert store.ping() is False
        with pytest.raises(EphemeralUnavailable) as caught:
            store.take("code:a")
        assert isinstance(caught.value, HawiyaError)
        assert caught.value.status == 503
        for call in (
            lambda: store.put("k", b"v", 1),
            lambda: store.add("k", b"v", 1),
            lambda: store.get("k"),
            lambda: store.delete("k"),
            lambda: store.incr("k", 1),
            lambda: store.add_member("k", "m", 1),
            lambda: store.remove_member("k", "m"),
            lambda: store.members("k"),
        ):
            with pytest.raises(EphemeralUnavailable):
                call()
    finally:
        store.close()
