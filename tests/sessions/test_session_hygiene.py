"""Session hygiene: every authentication step gives the browser a new SSO handle (the ``sid`` of
the session stays: it is the OIDC session), and every sign-in and step-up a new form session (so a
CSRF token known before it is worthless after); on an https issuer the SSO, pending and interaction
cookies carry the ``__Host-`` prefix (Secure, Path=/, no Domain: RFC 6265bis 4.1.3.2), so no
sibling host can plant or overwrite them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.wrappers import Response

from idp.app import create_app
from idp.clock import FrozenClock
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, PASSWORD, Backend, initialised, make_settings, populate
from tests.support.mfa import MfaPerson, Rp, add_app_in_account, open_account, submit
from tests.support.person import hidden_fields

SUBSTANTIAL = "urn:hawiya:loa:substantial"


def _handle(person: MfaPerson, name: str = "hawiya_sso", domain: str = "localhost") -> str:
    cookie = person.browser.get_cookie(name, domain=domain)
    assert cookie is not None, f"no {name} cookie"
    return cookie.value


def _thief(app: Flask, handle: str) -> MfaPerson:
    """Another browser holding a copy of an SSO cookie."""
    thief = MfaPerson(app, "", "", clock=FrozenClock())
    thief.browser.set_cookie("hawiya_sso", handle, domain="localhost")
    return thief


@pytest.fixture
def at_low(citizen: MfaPerson, rp: Rp, clock: FrozenClock) -> dict[str, Any]:
    """The citizen signed in with her password (low), then added an authenticator app."""
    first = rp.id_token(citizen.go(rp.url("first")), "first")
    add_app_in_account(citizen)
    clock.advance(120)
    citizen.pages.clear()
    return first


@BOTH_BACKENDS
def test_a_step_up_gives_a_new_handle_and_the_old_one_dies(
    app: Flask, citizen: MfaPerson, rp: Rp, at_low: dict[str, Any]
) -> None:
    before = _handle(citizen)
    claims = rp.id_token(citizen.go(rp.url("up", acr_values=SUBSTANTIAL)), "up")
    assert claims["acr"] == SUBSTANTIAL and claims["sid"] == at_low["sid"]  # the same OIDC session
    assert _handle(citizen) != before
    # A copy of the cookie taken before the step-up (at the low level) gets nothing, at any level.
    thief = _thief(app, before)
    for state, extra in (("t1", {"acr_values": SUBSTANTIAL}), ("t2", {})):
        response = thief.get(rp.url(state, prompt="none", **extra))
        params = rp.back(response.location or "", state)
        assert params.get("error") == "login_required" and "code" not in params, params
    # The person's own browser goes on, at the raised level, without a page.
    citizen.pages.clear()
    again = rp.id_token(citizen.go(rp.url("again", acr_values=SUBSTANTIAL)), "again")
    assert citizen.pages == [] and again["sid"] == at_low["sid"]


def test_reauthentication_gives_a_new_handle(
    app: Flask, citizen: MfaPerson, rp: Rp, at_low: dict[str, Any], registry: Registry
) -> None:
    before = _handle(citizen)
    done = submit(citizen, citizen.get("/account/reauth"), "/account/reauth", password=PASSWORD)
    assert done.status_code == 303
    assert _handle(citizen) != before
    assert registry.sessions.find(before) is None
    assert registry.sessions.find(_handle(citizen)) is not None
    response = _thief(app, before).get(rp.url("t", prompt="none"))
    assert rp.back(response.location or "", "t")["error"] == "login_required"


def test_a_handle_rotated_while_a_request_read_it_stays_dead(
    registry: Registry, world: Any, clock: FrozenClock
) -> None:
    """A request that read the session just before a rotation and writes its touch just after must
    not bring the old handle back (the store has no compare-and-set: the touch looks again)."""
    from idp.authn.assurance import password_only

    sessions = registry.sessions
    handle, session = sessions.start(password_only(world.citizen_id, int(clock.now())))
    stale = sessions.find(handle)
    assert stale is not None
    real_get = registry.store.get
    rotated: list[str] = []

    def get_then_rotate(key: str) -> bytes | None:
        found = real_get(key)
        if key.startswith("sso:") and not rotated:  # between the touch's read and its write
            rotated.append("")
            rotated[0] = sessions.reauthenticated(
                handle, stale, password_only(world.citizen_id, int(clock.now()))
            )[0]
        return found

    registry.store.get = get_then_rotate  # type: ignore[method-assign]
    try:
        touched = sessions.find(handle)  # read before the rotation, written after it
    finally:
        registry.store.get = real_get  # type: ignore[method-assign]
    assert touched is None
    assert sessions.find(handle) is None
    live = sessions.find(rotated[0])
    assert live is not None and live.sid == session.sid
    assert sessions.is_live(session.sid)
    assert [s.sid for s in sessions.sessions_of(world.citizen_id)] == [session.sid]
    ended = sessions.end_by_sid(session.sid, "signout")
    assert ended is not None and sessions.find(rotated[0]) is None


def _csrf_token(person: MfaPerson, path: str) -> str:
    return hidden_fields(person.get(path).get_data(as_text=True))["csrf_token"]


def test_sign_in_renews_the_form_session(citizen: MfaPerson) -> None:
    """A CSRF token known before sign-in (say, planted with a form cookie) is refused after it."""
    known = _csrf_token(citizen, "/signin")
    open_account(citizen)
    refused = citizen.post("/signout", {"csrf_token": known})
    assert refused.status_code == 400
    assert citizen.browser.get_cookie("hawiya_sso", domain="localhost") is not None  # still signed in
    fresh = _csrf_token(citizen, "/account")
    assert fresh != known
    assert citizen.post("/signout", {"csrf_token": fresh}).status_code == 303


def test_a_step_up_renews_the_form_session(citizen: MfaPerson, rp: Rp, at_low: dict[str, Any]) -> None:
    known = _csrf_token(citizen, "/account")
    rp.id_token(citizen.go(rp.url("up", acr_values=SUBSTANTIAL)), "up")
    assert citizen.post("/signout", {"csrf_token": known}).status_code == 400


def test_a_password_reentry_renews_the_form_session(citizen: MfaPerson, at_low: dict[str, Any]) -> None:
    known = _csrf_token(citizen, "/account")
    done = submit(citizen, citizen.get("/account/reauth"), "/account/reauth", password=PASSWORD)
    assert done.status_code == 303
    assert citizen.post("/signout", {"csrf_token": known}).status_code == 400
    fresh = _csrf_token(citizen, "/account")
    assert fresh != known
    assert citizen.post("/signout", {"csrf_token": fresh}).status_code == 303


# -- cookie names and flags ---------------------------------------------------------------------------


class CookieLog:
    """Every Set-Cookie header the app sent."""

    def __init__(self, app: Flask) -> None:
        self.headers: list[str] = []

        @app.after_request
        def _record(response: Response) -> Response:
            self.headers.extend(response.headers.getlist("Set-Cookie"))
            return response

    def set(self, name: str) -> list[str]:
        """The headers that set ``name`` to a value (not those that clear it)."""
        return [h for h in self.headers if h.startswith(name + "=") and not h.startswith(name + "=;")]


@pytest.fixture
def https_app(tmp_path: Path, backend: Backend, clock: FrozenClock) -> Iterator[tuple[Flask, Registry]]:
    settings = make_settings(tmp_path, backend, issuer="https://idp.example.gov")
    registry = initialised(settings, clock)
    try:
        app = create_app(registry=registry, start_schedule=False)
        app.testing = True
        yield app, registry
    finally:
        registry.close()


def _staff_signs_in(app: Flask, registry: Registry, clock: FrozenClock, base_url: str) -> MfaPerson:
    """The staff member's first sign-in at the agency: password, pending, enrolment, session."""
    world = populate(registry)
    staff = MfaPerson(app, "staff", PASSWORD, clock=clock)
    staff.base_url = base_url
    rp = Rp.of_world(app, world)
    claims = rp.id_token(staff.go(rp.url()))
    assert claims["acr"] == SUBSTANTIAL
    return staff


def test_https_cookies_carry_the_host_prefix(https_app: tuple[Flask, Registry], clock: FrozenClock) -> None:
    app, registry = https_app
    log = CookieLog(app)
    staff = _staff_signs_in(app, registry, clock, "https://idp.example.gov")
    for name in ("hawiya_sso", "hawiya_pending", "hawiya_ix", "hawiya_device"):
        assert log.set(name) == [], f"{name} set without its prefix"
        headers = log.set("__Host-" + name)
        assert headers, f"__Host-{name} was never set"
        for header in headers:
            attributes = [part.strip().lower() for part in header.split(";")[1:]]
            assert "secure" in attributes and "path=/" in attributes, header
            assert not any(a.startswith("domain=") for a in attributes), header
    # The prefixed cookie is the one read back: the person is signed in.
    assert _handle(staff, "__Host-hawiya_sso", domain="idp.example.gov")
    assert "Sign out" in staff.get("/account").get_data(as_text=True)


def test_plain_http_development_cookies_have_no_prefix(
    app: Flask, registry: Registry, clock: FrozenClock
) -> None:
    log = CookieLog(app)
    _staff_signs_in(app, registry, clock, "http://localhost")
    for name in ("hawiya_sso", "hawiya_pending", "hawiya_ix"):
        assert log.set(name), f"{name} was never set"
        assert not log.set("__Host-" + name)
        assert all("secure" not in h.lower() for h in log.set(name))
