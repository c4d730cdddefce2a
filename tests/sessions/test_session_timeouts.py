"""Sessions end after their level's idle timeout or absolute lifetime (NIST SP 800-63B-4 2.2.3,
2.3.3), with defaults no looser than NIST's; a step-up to high applies high's shorter limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from idp.authn.results import AuthResult
from idp.clock import FrozenClock
from idp.errors import ConfigurationError
from idp.registry import Registry
from idp.settings import LOA_HIGH, LOA_LOW, LOA_SUBSTANTIAL, Settings
from tests.conftest import BOTH_BACKENDS, PASSWORD, Backend, World, initialised, make_settings, populate
from tests.support.audit import audit_events
from tests.support.mfa import MfaPerson, open_account

HOUR = 3600


def _result(registry: Registry, account_id: str, acr: str) -> AuthResult:
    amr = ("pwd",) if acr == LOA_LOW else ("pwd", "otp", "mfa") if acr == LOA_SUBSTANTIAL else ("pwd", "hwk")
    return AuthResult(account_id, int(registry.clock.now()), amr, acr)


def _ended_reasons(registry: Registry) -> list[object]:
    return [event["detail"]["reason"] for event in audit_events(registry, "session.ended")]


def test_defaults_are_no_looser_than_nist(registry: Registry) -> None:
    sessions = registry.sessions
    for level in (LOA_LOW, LOA_SUBSTANTIAL):  # AAL2 at most: 1 h idle, 24 h absolute
        assert sessions.timeouts(level).idle <= HOUR
        assert sessions.timeouts(level).absolute <= 24 * HOUR
    assert sessions.timeouts(LOA_HIGH).idle <= 15 * 60  # AAL3: 15 min idle, 12 h absolute
    assert sessions.timeouts(LOA_HIGH).absolute <= 12 * HOUR


@BOTH_BACKENDS
@pytest.mark.parametrize(
    ("level", "idle"),
    [(LOA_LOW, HOUR), (LOA_SUBSTANTIAL, HOUR), (LOA_HIGH, 15 * 60)],
    ids=["low", "sub", "high"],
)
def test_a_session_ends_after_its_levels_idle_time(
    registry: Registry, world: World, clock: FrozenClock, level: str, idle: int
) -> None:
    handle, session = registry.sessions.start(_result(registry, world.citizen_id, level))
    clock.advance(idle - 1)
    assert registry.sessions.find(handle) is not None  # used: the idle clock starts again
    clock.advance(idle - 1)
    assert registry.sessions.find(handle) is not None
    clock.advance(idle + 1)
    assert registry.sessions.find(handle) is None
    assert not registry.sessions.is_live(session.sid)
    assert registry.sessions.sessions_of(world.citizen_id) == []
    assert _ended_reasons(registry) == ["timeout"]


@BOTH_BACKENDS
@pytest.mark.parametrize("level", [LOA_LOW, LOA_SUBSTANTIAL, LOA_HIGH], ids=["low", "sub", "high"])
def test_a_session_in_use_still_ends_at_its_absolute_lifetime(
    registry: Registry, world: World, clock: FrozenClock, level: str
) -> None:
    limits = registry.sessions.timeouts(level)
    handle, _session = registry.sessions.start(_result(registry, world.citizen_id, level))
    used_for = 0
    step = limits.idle - 60
    while used_for + step < limits.absolute:
        clock.advance(step)
        used_for += step
        assert registry.sessions.find(handle) is not None, f"ended after {used_for} s"
    clock.advance(limits.absolute - used_for + 1)
    assert registry.sessions.find(handle) is None
    assert _ended_reasons(registry) == ["timeout"]


def test_a_step_up_to_high_shortens_the_idle_time(
    registry: Registry, world: World, clock: FrozenClock
) -> None:
    handle, session = registry.sessions.start(_result(registry, world.citizen_id, LOA_SUBSTANTIAL))
    clock.advance(30 * 60)
    found = registry.sessions.find(handle)
    assert found is not None  # half an hour idle is fine at substantial
    handle, _raised = registry.sessions.step_up(handle, found, _result(registry, world.citizen_id, LOA_HIGH))
    clock.advance(15 * 60 + 1)  # but not at high
    assert registry.sessions.find(handle) is None
    assert not registry.sessions.is_live(session.sid)


def test_a_step_up_to_high_shortens_the_absolute_lifetime(
    tmp_path: Path, backend: Backend, clock: FrozenClock
) -> None:
    """With substantial allowed NIST's full 24 h, a session stepped up to high after 13 h has
    outlived high's 12 h (counted from its sign-in): it ends, and the person signs in afresh."""
    settings = make_settings(tmp_path, backend, session_absolute_ttl=24 * HOUR)
    registry = initialised(settings, clock)
    try:
        world = populate(registry)
        handle, _session = registry.sessions.start(_result(registry, world.citizen_id, LOA_SUBSTANTIAL))
        for _ in range(26):  # 13 h of use, every half hour
            clock.advance(30 * 60)
            found = registry.sessions.find(handle)
            assert found is not None
        handle, _raised = registry.sessions.step_up(
            handle, found, _result(registry, world.citizen_id, LOA_HIGH)
        )
        clock.advance(1)
        assert registry.sessions.find(handle) is None
        assert _ended_reasons(registry) == ["timeout"]
    finally:
        registry.close()


def test_limits_are_settings_and_high_never_outlives_the_lower_levels(
    tmp_path: Path, backend: Backend, clock: FrozenClock
) -> None:
    settings = make_settings(
        tmp_path,
        backend,
        session_idle_ttl=600,
        session_absolute_ttl=2 * HOUR,
        session_idle_ttl_high=900,
        session_absolute_ttl_high=HOUR,
    )
    registry = initialised(settings, clock)
    try:
        assert registry.sessions.timeouts(LOA_SUBSTANTIAL).idle == 600
        assert registry.sessions.timeouts(LOA_HIGH).idle == 600  # capped by the stricter base setting
        assert registry.sessions.timeouts(LOA_HIGH).absolute == HOUR
    finally:
        registry.close()


@pytest.mark.parametrize("name", ["session_idle_ttl_high", "session_absolute_ttl_high"])
def test_limits_must_be_positive(tmp_path: Path, backend: Backend, name: str) -> None:
    with pytest.raises(ConfigurationError, match=name.upper()):
        make_settings(tmp_path, backend, **{name: 0})
    assert getattr(Settings.from_env({f"HAWIYA_{name.upper()}": "300"}), name) == 300


def test_an_idle_browser_is_asked_to_sign_in_again(
    app: Flask, registry: Registry, world: World, clock: FrozenClock
) -> None:
    person = MfaPerson(app, "citizen", PASSWORD, clock=clock)
    open_account(person)
    clock.advance(registry.settings.session_idle_ttl + 1)
    again = person.get("/account")
    assert again.status_code == 302 and again.headers["Location"].endswith("/signin")
    assert _ended_reasons(registry) == ["timeout"]
