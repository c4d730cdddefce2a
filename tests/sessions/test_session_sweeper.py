"""The sweeper: timed-out sessions end on time even when their browser never comes back, so their
agencies hear of it (back-channel logout) at the timeout instead of whenever the person returns.
Ending goes through the one path every ending takes: audited, then each end listener told."""

from __future__ import annotations

import time
from pathlib import Path

from idp.app import create_app
from idp.authn.assurance import password_only
from idp.clock import FrozenClock
from idp.registry import Registry
from idp.sessions.service import SessionService
from tests.conftest import BOTH_BACKENDS, Backend, World, initialised, make_settings, populate
from tests.sessions.conftest import Ended
from tests.support.audit import audit_events

HOUR = 3600


def _service(registry: Registry, ended: Ended) -> SessionService:
    """The registry's session rules, with ``ended`` as the only end listener."""
    return SessionService(
        registry.store,
        registry.clock,
        registry.audit,
        timeouts={level: registry.sessions.timeouts(level) for level in ("urn:hawiya:loa:low",)},
        on_end=(ended,),
    )


@BOTH_BACKENDS
def test_the_sweeper_ends_sessions_whose_browser_never_came_back(
    registry: Registry, world: World, clock: FrozenClock, ended: Ended
) -> None:
    sessions = _service(registry, ended)
    _idle_handle, idle = sessions.start(password_only(world.citizen_id, int(clock.now())))
    used_handle, used = sessions.start(password_only(world.citizen_id, int(clock.now())))
    clock.advance(HOUR - 60)
    assert sessions.find(used_handle) is not None  # this one is used: its idle clock starts again
    assert sessions.sweep() == 0  # nothing has timed out yet
    clock.advance(120)
    assert sessions.sweep() == 1
    assert [(session.sid, reason) for session, reason in ended.calls] == [(idle.sid, "timeout")]
    assert not sessions.is_live(idle.sid) and sessions.is_live(used.sid)
    assert sessions.sweep() == 0  # ended once
    clock.advance(HOUR)
    assert sessions.sweep() == 1
    assert [session.sid for session, _reason in ended.calls] == [idle.sid, used.sid]
    assert [event["detail"]["reason"] for event in audit_events(registry, "session.ended")] == [
        "timeout",
        "timeout",
    ]


def test_a_rotated_or_ended_session_is_swept_once_under_its_new_handle(
    registry: Registry, world: World, clock: FrozenClock, ended: Ended
) -> None:
    sessions = _service(registry, ended)
    handle, session = sessions.start(password_only(world.citizen_id, int(clock.now())))
    signed_out, _other = sessions.start(password_only(world.citizen_id, int(clock.now())))
    sessions.end(signed_out, reason="signout")
    new_handle, _raised = sessions.reauthenticated(
        handle, session, password_only(world.citizen_id, int(clock.now()))
    )
    clock.advance(HOUR + 1)
    assert sessions.sweep() == 1
    assert [reason for _session, reason in ended.calls] == ["signout", "timeout"]
    assert sessions.find(new_handle) is None


@BOTH_BACKENDS
def test_create_app_starts_a_sweeper_at_the_configured_interval(
    tmp_path: Path, backend: Backend, clock: FrozenClock
) -> None:
    settings = make_settings(tmp_path, backend, session_sweep_interval=1)
    registry = initialised(settings, clock)
    try:
        world = populate(registry)
        app = create_app(registry=registry)
        sweeper = app.extensions["hawiya.session_sweeper"]
        assert sweeper.running
        _handle, session = registry.sessions.start(password_only(world.citizen_id, int(clock.now())))
        clock.advance(registry.sessions.timeouts("urn:hawiya:loa:low").idle + 1)
        deadline = time.monotonic() + 10
        while registry.sessions.is_live(session.sid) or not audit_events(registry, "session.ended"):
            assert time.monotonic() < deadline, "the sweeper did not end the session"
            time.sleep(0.1)
        (event,) = audit_events(registry, "session.ended")
        assert event["detail"] == {"sid": session.sid, "reason": "timeout"}
    finally:
        registry.close()
    assert not sweeper.running
