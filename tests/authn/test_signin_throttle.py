"""Throttling that protects without locking out. Failures are counted per (account, client address)
before the password is checked, so concurrent guesses are bounded; each block of a pair lasts twice
as long as its last one, up to a cap; a per-account cap (100 failures in 24 h) stops guessing from
many addresses, and a browser that has signed in to the account before passes it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask import Flask

from idp.clock import FrozenClock
from idp.errors import AuthenticationFailed, TooManyAttempts
from idp.http.context import DEVICE_COOKIE
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, PASSWORD, Backend, World, initialised, make_settings, populate
from tests.support.audit import audit_events
from tests.support.flask_person import FlaskPerson
from tests.support.person import hidden_fields

ATTACKER = "198.51.100.7"
HOME = "203.0.113.9"
WRONG = "not the right password at all"


def _wrong(registry: Registry, ip: str, username: str = "citizen", *, device: str | None = None) -> None:
    with pytest.raises(AuthenticationFailed):
        if device is None:
            registry.passwords.authenticate(username, WRONG, ip=ip)
        else:
            registry.passwords.authenticate(username, WRONG, ip=ip, device=device)


def _submit(person: FlaskPerson, username: str, password: str) -> tuple[int, str]:
    fields = hidden_fields(person.get("/signin").get_data(as_text=True))
    fields.update(username=username, password=password)
    response = person.post("/signin", fields)
    return response.status_code, response.get_data(as_text=True)


def test_wrong_passwords_from_elsewhere_do_not_lock_the_person_out(registry: Registry, world: World) -> None:
    """Reproduction: ten wrong passwords for a username from anywhere blocked its right password
    from everywhere for 15 minutes."""
    for _ in range(registry.settings.signin_max_failures):
        _wrong(registry, ATTACKER)
    assert registry.passwords.authenticate("citizen", PASSWORD, ip=HOME).account_id == world.citizen_id
    with pytest.raises(TooManyAttempts):  # the guessing address itself is blocked
        registry.passwords.authenticate("citizen", PASSWORD, ip=ATTACKER)
    assert len(audit_events(registry, "signin.throttled")) == 1


@BOTH_BACKENDS
def test_twenty_parallel_wrong_passwords_are_checked_at_most_the_limit(
    registry: Registry, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reproduction: reading the counter, verifying, then incrementing let every one of 20
    concurrent guesses be checked against a limit of 10."""
    checked, lock = [0], threading.Lock()
    verify = registry.hasher.verify

    def slow_verify(candidate: str, phc: str) -> bool:
        with lock:
            checked[0] += 1
        time.sleep(0.05)  # every racer is past the throttle before the first one fails
        return verify(candidate, phc)

    monkeypatch.setattr(registry.hasher, "verify", slow_verify)
    barrier = threading.Barrier(20)

    def guess(_: int) -> str:
        barrier.wait(timeout=30)
        try:
            registry.passwords.authenticate("citizen", WRONG, ip=ATTACKER)
        except TooManyAttempts:
            return "throttled"
        except AuthenticationFailed:
            return "failed"
        return "signed in"

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(guess, range(20)))
    limit = registry.settings.signin_max_failures
    assert checked[0] <= limit
    assert outcomes.count("failed") == checked[0] and outcomes.count("throttled") == 20 - checked[0]


def test_each_block_of_an_address_lasts_twice_the_last(
    tmp_path: Path, backend: Backend, clock: FrozenClock
) -> None:
    registry = initialised(
        make_settings(
            tmp_path, backend, signin_max_failures=3, signin_throttle_window=60, signin_block_max=200
        ),
        clock,
    )
    try:
        populate(registry)
        for expected_block in (60, 120, 200, 200):  # doubling, capped
            for _ in range(3):
                _wrong(registry, ATTACKER)
            with pytest.raises(TooManyAttempts):
                registry.passwords.authenticate("citizen", PASSWORD, ip=ATTACKER)
            clock.advance(expected_block - 1)
            with pytest.raises(TooManyAttempts):
                registry.passwords.authenticate("citizen", PASSWORD, ip=ATTACKER)
            clock.advance(2)
        # A success ends the doubling: the next block is the first one's length again.
        assert registry.passwords.authenticate("citizen", PASSWORD, ip=ATTACKER).account_id
        for _ in range(3):
            _wrong(registry, ATTACKER)
        with pytest.raises(TooManyAttempts):
            registry.passwords.authenticate("citizen", PASSWORD, ip=ATTACKER)
        clock.advance(61)
        assert registry.passwords.authenticate("citizen", PASSWORD, ip=ATTACKER).account_id
    finally:
        registry.close()


def test_the_account_cap_stops_guessing_from_many_addresses_but_not_a_known_device(
    tmp_path: Path, backend: Backend, clock: FrozenClock
) -> None:
    registry = initialised(make_settings(tmp_path, backend, signin_account_max_failures=6), clock)
    try:
        world = populate(registry)
        device = registry.devices.remember(None, world.citizen_id)
        for n in range(6):
            _wrong(registry, f"192.0.2.{n}")
        with pytest.raises(TooManyAttempts):  # a new address, a new browser: the cap holds
            registry.passwords.authenticate("citizen", PASSWORD, ip=HOME)
        assert registry.passwords.authenticate("citizen", PASSWORD, ip=HOME, device=device).account_id
        # The device is the account's, not anyone's: for another account it is a stranger.
        other = registry.devices.remember(None, "another-account")
        with pytest.raises(TooManyAttempts):
            registry.passwords.authenticate("citizen", PASSWORD, ip=HOME, device=other)
        with pytest.raises(TooManyAttempts):  # nor does a forged one pass
            registry.passwords.authenticate("citizen", PASSWORD, ip=HOME, device=device[:-2] + "xx")
    finally:
        registry.close()


def test_a_wrong_password_from_a_known_device_still_counts(registry: Registry, world: World) -> None:
    device = registry.devices.remember(None, world.citizen_id)
    for _ in range(registry.settings.signin_max_failures):
        _wrong(registry, HOME, device=device)
    with pytest.raises(TooManyAttempts):
        registry.passwords.authenticate("citizen", PASSWORD, ip=HOME, device=device)


def test_a_browser_that_signed_in_passes_while_the_account_is_under_attack(
    app: Flask, registry: Registry, world: World
) -> None:
    person = FlaskPerson(app)
    fields = hidden_fields(person.get("/signin").get_data(as_text=True))
    signed_in = person.post("/signin", {**fields, "username": "citizen", "password": PASSWORD})
    assert signed_in.status_code == 302
    (header,) = [h for h in signed_in.headers.getlist("Set-Cookie") if h.startswith(DEVICE_COOKIE + "=")]
    attributes = [part.strip().lower() for part in header.split(";")[1:]]
    assert "httponly" in attributes and "path=/" in attributes
    max_age = next(int(a.split("=")[1]) for a in attributes if a.startswith("max-age="))
    assert max_age >= 90 * 86400  # long-lived: the browser is remembered for months
    assert world.citizen_id not in header  # the account is in the MAC, not in the clear
    person.browser.delete_cookie("hawiya_sso", domain="localhost")  # signed out, or the session timed out

    for n in range(registry.settings.signin_account_max_failures):  # the person's sign-in counted too
        with pytest.raises((AuthenticationFailed, TooManyAttempts)):
            registry.passwords.authenticate("citizen", WRONG, ip=f"10.{n // 250}.{n % 250}.1")
    assert _submit(FlaskPerson(app), "citizen", PASSWORD)[0] == 401  # a stranger's browser: capped
    assert _submit(person, "citizen", PASSWORD)[0] == 302  # the person's own browser passes


def test_a_device_cookie_expires_and_remembers_a_few_accounts(registry: Registry, clock: FrozenClock) -> None:
    devices = registry.devices
    cookie = None
    for n in range(7):
        cookie = devices.remember(cookie, f"account-{n}")
    assert all(devices.recognises(cookie, f"account-{n}") for n in range(2, 7))
    assert not devices.recognises(cookie, "account-0")  # the oldest made room
    assert not devices.recognises("garbage~1.x~" + "a" * 600, "account-6")
    clock.advance(devices.ttl + 1)
    assert not devices.recognises(cookie, "account-6")  # a browser not seen for long is a stranger


def test_wrong_passwords_from_a_known_device_count_towards_the_account_cap(
    tmp_path: Path, backend: Backend, clock: FrozenClock
) -> None:
    registry = initialised(make_settings(tmp_path, backend, signin_account_max_failures=4), clock)
    try:
        world = populate(registry)
        device = registry.devices.remember(None, world.citizen_id)
        for _ in range(4):
            _wrong(registry, HOME, device=device)
        with pytest.raises(TooManyAttempts):  # a stranger's browser is now capped
            registry.passwords.authenticate("citizen", PASSWORD, ip="192.0.2.50")
        assert registry.passwords.authenticate("citizen", PASSWORD, ip=HOME, device=device).account_id
    finally:
        registry.close()
