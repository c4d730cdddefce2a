"""Each person's live sessions are indexed in the ephemeral store, on either backend, so the account
area lists exactly the sessions that live and "end all" reaches every one."""

from __future__ import annotations

import hashlib

from idp.authn.results import AuthResult
from idp.clock import FrozenClock
from idp.registry import Registry
from idp.sessions.service import ENDED_BY_PERSON, SIGNOUT
from idp.settings import LOA_LOW
from tests.conftest import BOTH_BACKENDS, World
from tests.support.audit import audit_events


def _start(registry: Registry, account_id: str, agent: str = "") -> tuple[str, str]:
    """A new session of ``account_id``: its handle and sid."""
    result = AuthResult(account_id, int(registry.clock.now()), ("pwd",), LOA_LOW)
    handle, session = registry.sessions.start(result, ip="192.0.2.1", user_agent=agent)
    return handle, session.sid


def _resident_id(registry: Registry) -> str:
    resident = registry.accounts.by_username("resident")
    assert resident is not None
    return resident.id


@BOTH_BACKENDS
def test_a_persons_sessions_are_listed_most_recently_used_first(
    registry: Registry, world: World, clock: FrozenClock
) -> None:
    first, first_sid = _start(registry, world.citizen_id, "first")
    clock.advance(60)
    _second, second_sid = _start(registry, world.citizen_id, "second")
    clock.advance(60)
    _third, third_sid = _start(registry, world.citizen_id, "third")
    _theirs, their_sid = _start(registry, _resident_id(registry))
    clock.advance(60)
    registry.sessions.find(first)  # used again: now the most recent

    listed = registry.sessions.sessions_of(world.citizen_id)
    assert [s.sid for s in listed] == [first_sid, third_sid, second_sid]
    assert [s.user_agent for s in listed] == ["first", "third", "second"]
    assert {s.ip for s in listed} == {"192.0.2.1"}
    assert listed[0].first_seen < listed[0].last_seen  # the first was used after it started
    assert [s.sid for s in registry.sessions.sessions_of(_resident_id(registry))] == [their_sid]
    assert registry.sessions.sessions_of("nobody") == []


@BOTH_BACKENDS
def test_ended_sessions_leave_the_list(registry: Registry, world: World) -> None:
    first, _first_sid = _start(registry, world.citizen_id)
    _second, second_sid = _start(registry, world.citizen_id)
    _third, third_sid = _start(registry, world.citizen_id)

    registry.sessions.end(first, reason=SIGNOUT)
    assert {s.sid for s in registry.sessions.sessions_of(world.citizen_id)} == {second_sid, third_sid}
    ended = registry.sessions.end_by_sid(second_sid, ENDED_BY_PERSON, account_id=world.citizen_id)
    assert ended is not None and ended.sid == second_sid
    assert [s.sid for s in registry.sessions.sessions_of(world.citizen_id)] == [third_sid]
    assert registry.sessions.end_by_sid(second_sid, ENDED_BY_PERSON) is None  # already gone


@BOTH_BACKENDS
def test_ending_all_keeps_only_this_browser(registry: Registry, world: World) -> None:
    kept, kept_sid = _start(registry, world.citizen_id)
    others = [_start(registry, world.citizen_id) for _ in range(3)]
    _theirs, their_sid = _start(registry, _resident_id(registry))

    assert registry.sessions.end_all(world.citizen_id, ENDED_BY_PERSON, except_handle=kept) == 3
    assert [s.sid for s in registry.sessions.sessions_of(world.citizen_id)] == [kept_sid]
    assert all(registry.sessions.find(handle) is None for handle, _sid in others)
    assert not any(registry.sessions.is_live(sid) for _handle, sid in others)
    assert registry.sessions.find(kept) is not None
    assert registry.sessions.is_live(their_sid)  # someone else's session is untouched
    events = audit_events(registry, "session.ended")
    assert sorted(str(e["detail"]["sid"]) for e in events) == sorted(sid for _handle, sid in others)
    assert {e["detail"]["reason"] for e in events} == {ENDED_BY_PERSON}

    assert registry.sessions.end_all(world.citizen_id, ENDED_BY_PERSON) == 1  # and then this one
    assert registry.sessions.sessions_of(world.citizen_id) == []


@BOTH_BACKENDS
def test_a_sid_ends_only_its_owners_session(registry: Registry, world: World) -> None:
    _theirs, their_sid = _start(registry, _resident_id(registry))
    assert registry.sessions.end_by_sid(their_sid, ENDED_BY_PERSON, account_id=world.citizen_id) is None
    assert registry.sessions.is_live(their_sid)
    assert audit_events(registry, "session.ended") == []


@BOTH_BACKENDS
def test_stale_entries_are_dropped_when_read(registry: Registry, world: World) -> None:
    """An entry whose session vanished from the store (expired there, or a half-finished write) is
    not listed, and is removed from the index the first time it is read."""
    _kept, kept_sid = _start(registry, world.citizen_id)
    vanished, _sid = _start(registry, world.citizen_id)
    vanished_digest = hashlib.sha256(vanished.encode()).hexdigest()
    registry.store.delete("sso:" + vanished_digest)
    registry.store.add_member("sso-account:" + world.citizen_id, "0" * 64, 600)  # never a session

    assert [s.sid for s in registry.sessions.sessions_of(world.citizen_id)] == [kept_sid]
    assert registry.store.members("sso-account:" + world.citizen_id) == {
        hashlib.sha256(_kept.encode()).hexdigest()
    }
    assert audit_events(registry, "session.ended") == []  # nothing was live to end


@BOTH_BACKENDS
def test_listing_ends_the_sessions_it_finds_timed_out(
    registry: Registry, world: World, clock: FrozenClock
) -> None:
    idle, idle_sid = _start(registry, world.citizen_id)
    clock.advance(registry.settings.session_idle_ttl - 60)
    active, active_sid = _start(registry, world.citizen_id)
    clock.advance(120)  # the first has been idle too long; the second is two minutes old

    assert [s.sid for s in registry.sessions.sessions_of(world.citizen_id)] == [active_sid]
    [event] = audit_events(registry, "session.ended")
    assert event["detail"] == {"sid": idle_sid, "reason": "timeout"}
    assert registry.sessions.find(idle) is None and registry.sessions.find(active) is not None
