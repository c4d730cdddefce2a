"""The delayed-queue part of the ephemeral store's contract (``enqueue``, ``claim``, ``dequeue``), run
against both backends: back-channel logout deliveries rely on exactly this behaviour.

A job's due time and lease follow the caller's ``now`` on every backend, so they are tested without
sleeping; only a job's time to live is the backend's own time (a short real sleep on Redis).
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from idp.storage.ephemeral.base import Claimed
from idp.storage.ephemeral.embedded import EmbeddedStore
from tests.storage.test_ephemeral_contract import LONG, Harness, harness

__all__ = ["harness"]  # the fixture, shared with the key/value contract

NOW = 1_000_000.0
LEASE = 60.0


def test_a_job_is_claimed_once_it_is_due_and_not_before(harness: Harness) -> None:
    store = harness.store
    store.enqueue("deliveries", "job-1", b"payload", due=NOW + 5, ttl=LONG)
    assert store.claim("deliveries", now=NOW, lease=LEASE) is None
    assert store.claim("deliveries", now=NOW + 4.9, lease=LEASE) is None
    assert store.claim("deliveries", now=NOW + 5, lease=LEASE) == Claimed("job-1", b"payload")


def test_an_empty_or_unknown_queue_has_nothing_to_claim(harness: Harness) -> None:
    assert harness.store.claim("never-used", now=NOW, lease=LEASE) is None
    harness.store.dequeue("never-used", "job-1")  # removing what is not there is not an error


def test_the_earliest_due_job_comes_first(harness: Harness) -> None:
    store = harness.store
    store.enqueue("deliveries", "late", b"3", due=NOW - 1, ttl=LONG)
    store.enqueue("deliveries", "early", b"1", due=NOW - 30, ttl=LONG)
    store.enqueue("deliveries", "middle", b"2", due=NOW - 10, ttl=LONG)
    store.enqueue("deliveries", "future", b"4", due=NOW + 10, ttl=LONG)
    claimed = [store.claim("deliveries", now=NOW, lease=LEASE) for _ in range(4)]
    assert [c.item if c else None for c in claimed] == ["early", "middle", "late", None]


def test_a_claimed_job_is_hidden_for_its_lease_then_comes_back(harness: Harness) -> None:
    """A worker that dies holding a job does not lose it: the job is due again when the lease ends."""
    store = harness.store
    store.enqueue("deliveries", "job-1", b"payload", due=NOW, ttl=LONG)
    assert store.claim("deliveries", now=NOW, lease=LEASE) is not None
    assert store.claim("deliveries", now=NOW + LEASE - 1, lease=LEASE) is None
    assert store.claim("deliveries", now=NOW + LEASE, lease=LEASE) == Claimed("job-1", b"payload")


def test_dequeue_removes_the_job_for_good(harness: Harness) -> None:
    store = harness.store
    store.enqueue("deliveries", "job-1", b"one", due=NOW, ttl=LONG)
    store.enqueue("deliveries", "job-2", b"two", due=NOW, ttl=LONG)
    claimed = store.claim("deliveries", now=NOW, lease=LEASE)
    assert claimed is not None and claimed.item == "job-1"
    store.dequeue("deliveries", "job-1")
    assert store.claim("deliveries", now=NOW + 10 * LEASE, lease=LEASE) == Claimed("job-2", b"two")
    store.dequeue("deliveries", "job-2")
    assert store.claim("deliveries", now=NOW + 100 * LEASE, lease=LEASE) is None


def test_enqueuing_again_replaces_the_value_and_the_due_time(harness: Harness) -> None:
    """A retry: the worker puts the job back with its next attempt number and a later due time."""
    store = harness.store
    store.enqueue("deliveries", "job-1", b"attempt 1", due=NOW, ttl=LONG)
    assert store.claim("deliveries", now=NOW, lease=LEASE) is not None
    store.enqueue("deliveries", "job-1", b"attempt 2", due=NOW + 30, ttl=LONG)
    assert store.claim("deliveries", now=NOW + 29, lease=LEASE) is None
    assert store.claim("deliveries", now=NOW + 30, lease=LEASE) == Claimed("job-1", b"attempt 2")


def test_queues_are_independent(harness: Harness) -> None:
    store = harness.store
    store.enqueue("one", "job", b"first", due=NOW, ttl=LONG)
    store.enqueue("two", "job", b"second", due=NOW, ttl=LONG)
    store.dequeue("one", "job")
    assert store.claim("one", now=NOW, lease=LEASE) is None
    assert store.claim("two", now=NOW, lease=LEASE) == Claimed("job", b"second")


@pytest.mark.parametrize("value", [bytes(range(256)), b"", '{"sid": "حوية"}'.encode()])
def test_job_values_round_trip(harness: Harness, value: bytes) -> None:
    harness.store.enqueue("deliveries", "job", value, due=NOW, ttl=LONG)
    assert harness.store.claim("deliveries", now=NOW, lease=LEASE) == Claimed("job", value)


def test_a_job_is_forgotten_when_its_time_to_live_ends(harness: Harness) -> None:
    store = harness.store
    store.enqueue("deliveries", "short", b"gone", due=NOW, ttl=1)
    store.enqueue("deliveries", "renewed", b"short", due=NOW, ttl=1)
    store.enqueue("deliveries", "renewed", b"kept", due=NOW, ttl=LONG)  # a retry renews the ttl
    store.enqueue("deliveries", "long", b"kept too", due=NOW + 1, ttl=LONG)
    harness.elapse(1.2)
    claimed = [store.claim("deliveries", now=NOW + 2, lease=LEASE) for _ in range(3)]
    assert claimed == [Claimed("renewed", b"kept"), Claimed("long", b"kept too"), None]


def test_claims_have_exactly_one_winner_among_threads(harness: Harness) -> None:
    """Eight workers drain 120 jobs at once: every job is claimed by exactly one of them."""
    jobs = [f"job-{index}" for index in range(120)]
    for index, job in enumerate(jobs):
        harness.store.enqueue("deliveries", job, str(index).encode(), due=NOW - index, ttl=LONG)
    claimed: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(8, timeout=30)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            while (job := harness.store.claim("deliveries", now=NOW, lease=LEASE)) is not None:
                with lock:
                    claimed[job.item] += 1
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
            start.abort()
        finally:
            if isinstance(harness.store, EmbeddedStore):
                harness.store.close()  # this thread's own SQLite connection

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert claimed == Counter(dict.fromkeys(jobs, 1))


def test_unreachable_redis_queue_raises_a_domain_error() -> None:
    from idp.storage.ephemeral.redis import EphemeralUnavailable, RedisStore

    store = RedisStore("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        for call in (
            lambda: store.enqueue("q", "job", b"v", due=NOW, ttl=1),
            lambda: store.claim("q", now=NOW, lease=LEASE),
            lambda: store.dequeue("q", "job"),
        ):
            with pytest.raises(EphemeralUnavailable):
                call()
    finally:
        store.close()
