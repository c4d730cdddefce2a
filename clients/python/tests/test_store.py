"""The token store contract, run over every backend: the local files and Redis.

Redis is the one on 127.0.0.1:6379 (each test under a prefix of its own, removed afterwards); the
Redis cases skip when it does not answer, except under CI=true where they must run.
"""

from __future__ import annotations

import secrets
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hawiya_rp.store import FileTokenStore, RedisTokenStore, TokenStore, open_store

from tests.support.needs import unavailable

REDIS_URL = "redis://127.0.0.1:6379/0"
#: Both backends implement the protocol the Flask integration needs (checked by mypy).
BACKENDS: tuple[type[TokenStore], ...] = (FileTokenStore, RedisTokenStore)
TOKENS = {"access_token": "eyJ.at.sig", "id_token": "eyJ.id.sig", "refresh_token": "rt-1"}


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class Backend:
    """A store and a way to let time pass for it."""

    store: FileTokenStore | RedisTokenStore
    advance: Callable[[float], None]


class Clock:
    """Time the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["file", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each backend in turn."""
    if request.param == "file":
        clock = Clock()

        def move(seconds: float) -> None:
            clock.now += seconds

        yield Backend(FileTokenStore(tmp_path / "sessions", clock=clock), move)
        return
    if not _redis_answers():
        unavailable("Redis is not running on 127.0.0.1:6379")
    prefix = f"hawiya-rp-test:{secrets.token_hex(6)}:"
    store = RedisTokenStore(REDIS_URL, prefix)
    try:
        yield Backend(store, time.sleep)
    finally:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()
        store.close()


def record(sid: str | None = "sid-1", sub: str | None = "sub-1", **extra: object) -> dict[str, object]:
    """A session record as the Flask integration writes one."""
    return {"sid": sid, "sub": sub, "tokens": TOKENS, **extra}


def test_a_session_is_stored_under_a_new_opaque_id(backend: Backend) -> None:
    store = backend.store
    first = store.create(record(), ttl=60)
    second = store.create(record(), ttl=60)
    assert first != second
    assert len(first) == 43 and set(first) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    assert "sid-1" not in first and "sub-1" not in first
    assert store.get(first) == record()


@pytest.mark.parametrize("bad", ["", "nope", "../../etc/passwd", "a" * 42, "a" * 44, "a/" * 21 + "a"])
def test_unknown_and_malformed_ids_find_nothing(backend: Backend, bad: str) -> None:
    store = backend.store
    store.create(record(), ttl=60)
    assert store.get(bad) is None
    assert store.pop(bad) is None
    assert store.update(bad, record()) is False
    store.delete(bad)  # no error


def test_update_replaces_the_record_and_keeps_the_expiry(backend: Backend) -> None:
    store = backend.store
    session_id = store.create(record(), ttl=1)
    assert store.update(session_id, record(userinfo={"name": "Fatima"})) is True
    assert store.get(session_id) == record(userinfo={"name": "Fatima"})
    backend.advance(1.2)
    assert store.get(session_id) is None


def test_a_deleted_session_stays_deleted(backend: Backend) -> None:
    store = backend.store
    session_id = store.create(record(), ttl=60)
    store.delete(session_id)
    assert store.get(session_id) is None
    assert store.update(session_id, record()) is False
    assert store.get(session_id) is None
    assert store.ids_for(sid="sid-1") == []


def test_a_record_is_taken_once_even_by_concurrent_callers(backend: Backend) -> None:
    store = backend.store
    session_id = store.create(record(), ttl=60)
    results: list[object] = []
    barrier = threading.Barrier(8)

    def take() -> None:
        barrier.wait()
        results.append(store.pop(session_id))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r for r in results if r is not None] == [record()]
    assert store.get(session_id) is None
    assert store.ids_for(sid="sid-1") == []


def test_sessions_are_found_by_sid_or_else_by_sub(backend: Backend) -> None:
    store = backend.store
    a = store.create(record(sid="idp-session-A", sub="person-1"), ttl=60)
    b = store.create(record(sid="idp-session-A", sub="person-1"), ttl=60)
    c = store.create(record(sid="idp-session-B", sub="person-1"), ttl=60)
    d = store.create(record(sid="idp-session-C", sub="person-2"), ttl=60)
    e = store.create(record(sid=None, sub="person-3"), ttl=60)
    assert sorted(store.ids_for(sid="idp-session-A")) == sorted([a, b])
    assert sorted(store.ids_for(sub="person-1")) == sorted([a, b, c])
    assert store.ids_for(sid="idp-session-C", sub="person-1") == [d]  # the sid decides
    assert store.ids_for(sub="person-3") == [e]
    assert store.ids_for(sid="unknown") == []
    assert store.ids_for() == []
    store.delete(a)
    assert store.ids_for(sid="idp-session-A") == [b]


def test_the_index_follows_an_update(backend: Backend) -> None:
    store = backend.store
    session_id = store.create(record(sid="old-sid"), ttl=60)
    store.update(session_id, record(sid="new-sid"))
    assert store.ids_for(sid="old-sid") == []
    assert store.ids_for(sid="new-sid") == [session_id]


def test_sessions_expire(backend: Backend) -> None:
    store = backend.store
    short = store.create(record(), ttl=1)
    long = store.create(record(), ttl=60)
    backend.advance(1.2)
    assert store.get(short) is None
    assert store.pop(short) is None
    assert store.get(long) == record()
    assert store.ids_for(sid="sid-1") == [long]


def test_sid_and_sub_with_any_characters_are_indexed(backend: Backend) -> None:
    store = backend.store
    odd = "../../x y/ح\n*"
    session_id = store.create(record(sid=odd, sub=odd), ttl=60)
    assert store.ids_for(sid=odd) == [session_id]
    assert store.ids_for(sub=odd) == [session_id]


# -- what only files do -------------------------------------------------------------------------


def test_session_files_are_private_and_hold_the_tokens(tmp_path: Path) -> None:
    folder = tmp_path / "sessions"
    store = FileTokenStore(folder)
    session_id = store.create(record(), ttl=60)
    path = folder / "sessions" / f"{session_id}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert TOKENS["access_token"] in path.read_text()
    store.update(session_id, record(userinfo={"name": "x"}))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in (folder / "sessions").iterdir()] == [path.name]  # no temporary left


def test_expired_files_are_swept(tmp_path: Path) -> None:
    clock = Clock()
    store = FileTokenStore(tmp_path, clock=clock)
    old = store.create(record(), ttl=10)
    (tmp_path / "sessions" / f"{'b' * 43}.json").write_text("not json")
    clock.now += store.sweep_every + 1
    fresh = store.create(record(), ttl=10)  # sweeps
    assert sorted(p.name for p in (tmp_path / "sessions").iterdir()) == [f"{fresh}.json"]
    assert store.get(old) is None
    assert store.ids_for(sid="sid-1") == [fresh]


def test_a_damaged_file_reads_as_no_session(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)
    session_id = store.create(record(), ttl=60)
    (tmp_path / "sessions" / f"{session_id}.json").write_text("{")
    assert store.get(session_id) is None
    assert store.ids_for(sid="sid-1") == []


# -- what only Redis does -----------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_redis_keys_carry_the_ttl_and_the_prefix(backend: Backend) -> None:
    import redis

    assert isinstance(backend.store, RedisTokenStore)

    session_id = backend.store.create(record(), ttl=120)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = sorted(k.decode() for k in client.scan_iter(match=backend.store.prefix + "*"))
        assert len(keys) == 3  # the session and its two index sets
        assert f"{backend.store.prefix}session:{session_id}" in keys
        assert all(0 < client.ttl(key) <= 120 for key in keys)
    finally:
        client.close()


def test_open_store_picks_the_backend_from_one_setting(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path / "s")), FileTokenStore)
    store = open_store(REDIS_URL, prefix="hawiya-rp-test:unused:")
    assert isinstance(store, RedisTokenStore)
    store.close()


def test_a_key_is_accepted_once_until_it_expires(backend: Backend) -> None:
    """The stores double as the replay memory for logout tokens, shared by every process."""
    store = backend.store
    assert store.add("jti-1", 1) is True
    assert store.add("jti-1", 1) is False
    assert store.add("jti-2", 1) is True
    backend.advance(1.2)
    assert store.add("jti-1", 1) is True
