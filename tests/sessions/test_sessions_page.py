"""The account area's sessions page: the person sees where they are signed in (browser and system,
when, from where, which agencies) and ends any other session, or all others; each ending is audited
and needs a recent sign-in and a CSRF token."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from html import unescape

from flask import Flask

from idp.clock import FrozenClock
from idp.registry import Registry
from idp.sessions.service import ENDED_BY_PERSON, SessionService
from idp.settings import LOA_HIGH, LOA_LOW, LOA_SUBSTANTIAL
from tests.conftest import BOTH_BACKENDS, World
from tests.sessions.conftest import CHROME_ANDROID, FIREFOX_WINDOWS, SAFARI_IPHONE, Ended
from tests.support.agency import sso_handle
from tests.support.audit import audit_events
from tests.support.mfa import MfaPerson, Rp, open_account, submit
from tests.support.person import hidden_fields

Browser = Callable[..., MfaPerson]
_ROW = re.compile(r'<li id="session-\d+"( class="current")?>(.*?)</form>\s*</li>', re.S)


def _rows(html: str) -> list[tuple[bool, str, str]]:
    """(this browser?, the row's text, its sid) for each session listed."""
    rows = []
    for current, body in _ROW.findall(html):
        text = " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())
        rows.append((bool(current), text, hidden_fields(body)["sid"]))
    return rows


def _sessions_page(person: MfaPerson) -> str:
    page = person.get("/account/sessions")
    assert page.status_code == 200, page.status_code
    return page.get_data(as_text=True)


def _sid_of(registry: Registry, person: MfaPerson) -> str:
    session = registry.sessions.find(sso_handle(person))
    assert session is not None
    return session.sid


def _signed_out(person: MfaPerson) -> bool:
    response = person.get("/account")
    return response.status_code == 302 and response.headers["Location"].endswith("/signin")


@BOTH_BACKENDS
def test_the_page_lists_each_browser_with_what_it_did(
    registry: Registry, world: World, rp: Rp, browser: Browser, clock: FrozenClock
) -> None:
    office = browser("citizen", FIREFOX_WINDOWS, "192.0.2.10")
    rp.id_token(office.go(rp.url("office")), "office")  # the Ministry of Health got tokens here
    clock.advance(600)
    phone = browser("citizen", SAFARI_IPHONE, "198.51.100.7")
    account = open_account(phone)
    link = re.search(r'<a href="([^"]+)" id="sessions-link">', account.get_data(as_text=True))
    assert link and link.group(1) == "/account/sessions"

    rows = _rows(_sessions_page(phone))
    assert [current for current, _text, _sid in rows] == [True, False]  # this browser first
    (_, here, here_sid), (_, there, there_sid) = rows
    assert here.startswith("Safari on iOS This browser")
    assert "From the address 198.51.100.7" in here and "No service used yet" in here
    assert here_sid == _sid_of(registry, phone)
    assert there.startswith("Firefox on Windows")
    assert "From the address 192.0.2.10" in there
    assert "Services used: Ministry of Health" in there
    assert there_sid == _sid_of(registry, office)
    started = registry.sessions.sessions_of(world.citizen_id)[-1].first_seen
    assert f"Signed in {datetime.fromtimestamp(started, UTC):%Y-%m-%d %H:%M} (UTC)" in there


@BOTH_BACKENDS
def test_ending_another_session_signs_that_browser_out(
    registry: Registry, world: World, browser: Browser, rp: Rp
) -> None:
    office = browser("citizen", FIREFOX_WINDOWS, "192.0.2.10")
    rp.id_token(office.go(rp.url("office")), "office")
    office_sid = _sid_of(registry, office)
    phone = browser("citizen", SAFARI_IPHONE, "198.51.100.7")
    open_account(phone)
    page = phone.get("/account/sessions")

    done = submit(phone, page, "/account/sessions/end", sid=office_sid)
    assert done.status_code == 303 and done.headers["Location"].endswith("/account/sessions?done=ended")
    assert 'id="notice"' in phone.get(done.headers["Location"]).get_data(as_text=True)
    assert _signed_out(office)
    assert not registry.sessions.is_live(office_sid)
    assert not _signed_out(phone)
    [event] = audit_events(registry, "session.ended")
    assert event["subject"] == world.citizen_id
    assert event["detail"] == {"sid": office_sid, "reason": ENDED_BY_PERSON}
    assert [sid for _c, _t, sid in _rows(_sessions_page(phone))] == [_sid_of(registry, phone)]


@BOTH_BACKENDS
def test_signing_out_everywhere_else_keeps_only_this_browser(
    registry: Registry, world: World, browser: Browser
) -> None:
    office = browser("citizen", FIREFOX_WINDOWS)
    tablet = browser("citizen", CHROME_ANDROID)
    phone = browser("citizen", SAFARI_IPHONE)
    for person in (office, tablet, phone):
        open_account(person)
    theirs = browser("resident", FIREFOX_WINDOWS)
    open_account(theirs)
    ended_sids = {_sid_of(registry, office), _sid_of(registry, tablet)}

    page = phone.get("/account/sessions")
    assert 'id="end-others"' in page.get_data(as_text=True)
    done = submit(phone, page, "/account/sessions/end-others")
    assert done.status_code == 303 and done.headers["Location"].endswith("/account/sessions?done=others")

    assert _signed_out(office) and _signed_out(tablet)
    assert not _signed_out(phone) and not _signed_out(theirs)
    events = audit_events(registry, "session.ended")
    assert {str(e["detail"]["sid"]) for e in events} == ended_sids
    assert {e["detail"]["reason"] for e in events} == {ENDED_BY_PERSON}
    html = _sessions_page(phone)
    assert [current for current, _t, _s in _rows(html)] == [True]
    assert 'id="end-others"' not in html  # nothing else left to end


def test_ending_sessions_needs_a_recent_sign_in_and_a_csrf_token(
    registry: Registry, browser: Browser, clock: FrozenClock
) -> None:
    office = browser("citizen", FIREFOX_WINDOWS)
    open_account(office)
    phone = browser("citizen", SAFARI_IPHONE)
    open_account(phone)
    office_sid = _sid_of(registry, office)
    page = phone.get("/account/sessions")

    assert phone.post("/account/sessions/end", {"sid": office_sid}).status_code == 400  # no CSRF token
    assert phone.post("/account/sessions/end-others", {}).status_code == 400
    clock.advance(registry.settings.reauth_max_age + 1)
    for action, fields in (
        ("/account/sessions/end", {"sid": office_sid}),
        ("/account/sessions/end-others", {}),
    ):
        stale = submit(phone, page, action, **fields)
        assert stale.status_code == 303 and stale.headers["Location"].endswith("/account/reauth")
    assert registry.sessions.is_live(office_sid)
    assert audit_events(registry, "session.ended") == []


def test_someone_elses_session_cannot_be_ended(registry: Registry, browser: Browser) -> None:
    theirs = browser("resident", FIREFOX_WINDOWS)
    open_account(theirs)
    their_sid = _sid_of(registry, theirs)
    phone = browser("citizen", SAFARI_IPHONE)
    open_account(phone)

    done = submit(phone, phone.get("/account/sessions"), "/account/sessions/end", sid=their_sid)
    assert done.status_code == 303 and done.headers["Location"].endswith("/account/sessions")
    assert registry.sessions.is_live(their_sid) and not _signed_out(theirs)
    assert audit_events(registry, "session.ended") == []


def test_ending_this_browsers_own_session_signs_out(registry: Registry, browser: Browser) -> None:
    phone = browser("citizen", SAFARI_IPHONE)
    open_account(phone)
    sid = _sid_of(registry, phone)

    done = submit(phone, phone.get("/account/sessions"), "/account/sessions/end", sid=sid)
    assert done.status_code == 303 and done.headers["Location"] == "/"
    assert _signed_out(phone)
    [event] = audit_events(registry, "session.ended")
    assert event["detail"] == {"sid": sid, "reason": "signout"}


def test_the_page_asks_to_sign_in_first_and_comes_back(browser: Browser) -> None:
    phone = browser("citizen", SAFARI_IPHONE)
    asked = phone.get("/account/sessions")
    assert asked.status_code == 303 and asked.headers["Location"].endswith("/signin")
    signin = phone.follow(asked)
    assert not isinstance(signin, str)
    back = phone.follow(phone.sign_in(signin))
    assert not isinstance(back, str)
    assert back.request.path == "/account/sessions" and back.status_code == 200
    assert [current for current, _t, _s in _rows(back.get_data(as_text=True))] == [True]


def test_ending_from_the_page_tells_the_listeners(
    registry: Registry, world: World, browser: Browser, ended: Ended, app: Flask
) -> None:
    live = registry.sessions
    registry.__dict__["sessions"] = SessionService(
        registry.store,
        registry.clock,
        registry.audit,
        timeouts={level: live.timeouts(level) for level in (LOA_LOW, LOA_SUBSTANTIAL, LOA_HIGH)},
        on_end=[ended],
    )
    office = browser("citizen", FIREFOX_WINDOWS)
    open_account(office)
    phone = browser("citizen", SAFARI_IPHONE)
    open_account(phone)
    office_sid = _sid_of(registry, office)

    submit(phone, phone.get("/account/sessions"), "/account/sessions/end", sid=office_sid)
    [(session, reason)] = ended.calls
    assert (session.sid, reason, session.user_agent) == (office_sid, ENDED_BY_PERSON, FIREFOX_WINDOWS)


def test_the_page_renders_right_to_left_in_arabic(browser: Browser) -> None:
    phone = browser("citizen", SAFARI_IPHONE)
    phone.headers["Accept-Language"] = "ar"
    open_account(phone)
    page = phone.get("/account/sessions")
    assert page.status_code == 200 and 'dir="rtl"' in page.get_data(as_text=True)
