"""Whatever ends a session tells every end listener (revoking its tokens, back-channel logout) once
it is gone and audited, with the reason; a failing listener is logged and stops neither the others
nor the logout."""

from __future__ import annotations

import logging

import pytest
from flask import Flask

from idp.app import create_app
from idp.authn.results import AuthResult
from idp.clock import FrozenClock
from idp.registry import Registry
from idp.sessions.service import (
    ENDED_BY_PERSON,
    REPLACED,
    SIGNOUT,
    TIMEOUT,
    EndListener,
    SessionService,
    SsoSession,
    Timeouts,
)
from idp.settings import LOA_LOW, LOA_SUBSTANTIAL
from tests.conftest import BOTH_BACKENDS, PASSWORD, World
from tests.sessions.conftest import Ended
from tests.support.audit import audit_events
from tests.support.mfa import MfaPerson, Rp, open_account, submit

LIMITS = {LOA_LOW: Timeouts(idle=3600, absolute=12 * 3600), LOA_SUBSTANTIAL: Timeouts(3600, 12 * 3600)}


def _service(registry: Registry, *listeners: EndListener) -> SessionService:
    return SessionService(registry.store, registry.clock, registry.audit, timeouts=LIMITS, on_end=listeners)


def _result(registry: Registry, account_id: str) -> AuthResult:
    return AuthResult(account_id, int(registry.clock.now()), ("pwd",), LOA_LOW)


@BOTH_BACKENDS
def test_every_way_a_session_ends_tells_the_listeners_why(
    registry: Registry, world: World, clock: FrozenClock, ended: Ended
) -> None:
    sessions = _service(registry, ended)
    signed_out, _ = sessions.start(_result(registry, world.citizen_id))
    replaced, _ = sessions.start(_result(registry, world.citizen_id))
    idle, _ = sessions.start(_result(registry, world.citizen_id))
    _other, other = sessions.start(_result(registry, world.citizen_id))
    kept, kept_session = sessions.start(_result(registry, world.citizen_id))
    sessions.add_client(kept, kept_session, "agency-a")

    sessions.end(signed_out, reason=SIGNOUT)
    sessions.end(replaced, reason=REPLACED)
    sessions.end_by_sid(other.sid, ENDED_BY_PERSON, account_id=world.citizen_id)
    clock.advance(1800)
    sessions.find(kept)
    clock.advance(1801)  # the idle one has now waited 3601 s
    assert sessions.find(idle) is None
    sessions.end_all(world.citizen_id, ENDED_BY_PERSON)

    assert ended.reasons == [SIGNOUT, REPLACED, ENDED_BY_PERSON, TIMEOUT, ENDED_BY_PERSON]
    last, _reason = ended.calls[-1]
    assert last.clients == ("agency-a",) and last.account_id == world.citizen_id
    assert sessions.end(signed_out, reason=SIGNOUT) is None  # ending twice tells nobody twice
    assert len(ended.calls) == 5


def test_listeners_hear_after_the_session_is_gone_and_audited(registry: Registry, world: World) -> None:
    seen: list[tuple[bool, list[str]]] = []

    def check(session: SsoSession, reason: str) -> None:
        recorded = [str(e["detail"]["sid"]) for e in audit_events(registry, "session.ended")]
        seen.append((sessions.is_live(session.sid), recorded))

    sessions = _service(registry, check)
    handle, session = sessions.start(_result(registry, world.citizen_id))
    sessions.end(handle, reason=SIGNOUT)
    assert seen == [(False, [session.sid])]


def test_a_failing_listener_is_logged_and_the_others_still_hear(
    registry: Registry, world: World, ended: Ended, caplog: pytest.LogCaptureFixture
) -> None:
    def agency_down(session: SsoSession, reason: str) -> None:
        raise ConnectionError("the agency did not answer")

    sessions = _service(registry, agency_down, ended)
    handle, session = sessions.start(_result(registry, world.citizen_id))
    with caplog.at_level(logging.ERROR, logger="idp.sessions"):
        assert sessions.end(handle, reason=SIGNOUT) == session

    assert ended.reasons == [SIGNOUT]
    assert sessions.find(handle) is None and not sessions.is_live(session.sid)
    [record] = [r for r in caplog.records if r.name == "idp.sessions"]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert session.sid in record.getMessage() and "agency_down" in record.getMessage()
    assert handle not in caplog.text  # the cookie handle never reaches a log


def test_a_failing_listener_does_not_break_signing_out_in_the_browser(
    registry: Registry, world: World, clock: FrozenClock, ended: Ended
) -> None:
    def broken(session: SsoSession, reason: str) -> None:
        raise RuntimeError("a bug in one listener")

    registry.__dict__["sessions"] = _service(registry, broken, ended)
    app: Flask = create_app(registry=registry)
    app.testing = True
    person = MfaPerson(app, "citizen", PASSWORD, clock=clock)
    rp = Rp.of_world(app, world)
    rp.id_token(person.go(rp.url("in")), "in")
    page = open_account(person)
    out = submit(person, page, "/signout")
    assert out.status_code == 303 and out.headers["Location"] == "/"
    assert person.get("/account").status_code == 302  # signed out
    [(session, reason)] = ended.calls
    assert reason == SIGNOUT and session.clients == (world.confidential_id,)
