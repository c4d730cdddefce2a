"""Visitors' self-registration: nothing is created until the emailed code (in the browser that
registered) or link (anywhere) confirms the address; a taken username is refused, but the pages
never tell whether an address has an account; wrong codes run out; codes, links and passwords
never reach the log, and the waiting request holds only a hash of the password."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from idp.clock import FrozenClock
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, World, initialised, make_settings
from tests.support.audit import audit_events
from tests.support.flask_person import FlaskPerson
from tests.support.outbox import body, messages, to
from tests.support.person import hidden_fields

PASSWORD = "seven green lanterns by the sea"
FORM = {
    "username": "anna.traveller",
    "email": "anna.t@example.net",
    "given_name": "Anna",
    "family_name": "Schmidt",
    "name_ar": "آنا شميت",
    "passport_number": "c01x 00t99",
    "nationality": "de",
}
_CODE = re.compile(r"\b([0-9]{6})\b")
_LINK = re.compile(r"(https?://\S+/register/verify\?code=\S+)")


def _register(browser: FlaskPerson, **changes: str) -> TestResponse:
    page = browser.get("/register")
    assert page.status_code == 200
    fields = hidden_fields(page.get_data(as_text=True))
    fields.update(FORM, password=PASSWORD, password_confirm=PASSWORD)
    fields.update(changes)
    return browser.post("/register", fields)


def _mailed(registry: Registry, address: str) -> tuple[str, str]:
    """The 6-digit code and the link (path and query) of the last mail to ``address``."""
    text = body(to(registry.settings.outbox_path, address)[-1])
    code, link = _CODE.search(text), _LINK.search(text)
    assert code and link, text
    parts = urlsplit(link.group(1))
    return code.group(1), f"{parts.path}?{parts.query}"


def _type_code(browser: FlaskPerson, code: str) -> TestResponse:
    page = browser.get("/register/verify")
    fields = hidden_fields(page.get_data(as_text=True))
    fields["code"] = code
    return browser.post("/register/verify", fields)


def _open_link(browser: FlaskPerson, link: str) -> TestResponse:
    """Open the mailed link and press the button that creates the account."""
    page = browser.get(link)
    assert page.status_code == 200, page.get_data(as_text=True)
    return browser.post("/register/verify", hidden_fields(page.get_data(as_text=True)))


@BOTH_BACKENDS
def test_a_visitor_registers_confirms_with_the_code_and_is_signed_in(
    app: Flask, registry: Registry, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="idp")
    browser = FlaskPerson(app)
    assert 'href="/register"' in browser.get("/signin").get_data(as_text=True)

    sent = _register(browser)
    assert sent.status_code == 303 and sent.location == "/register/verify"
    page = browser.get("/register/verify").get_data(as_text=True)
    assert "If anna.t@example.net can be used for a new account, we have sent it a 6-digit code" in page
    assert registry.accounts.by_username("anna.traveller") is None  # nothing until the address is proven
    code, link = _mailed(registry, "anna.t@example.net")
    mail = body(to(registry.settings.outbox_path, "anna.t@example.net")[-1])
    assert "anna.traveller" in mail and "Your code" in mail and "رمز التحقق" in mail

    done = _type_code(browser, code)
    assert done.status_code == 302 and done.location == "/account"
    account = browser.get("/account")
    assert account.status_code == 200 and "Anna Schmidt" in account.get_data(as_text=True)

    person = registry.accounts.by_username("anna.traveller")
    assert person is not None
    assert (person.account_type, person.email, person.email_verified) == (
        "visitor",
        "anna.t@example.net",
        True,
    )
    assert (person.passport_number, person.nationality, person.proofing_level) == (
        "C01X00T99",
        "DE",
        "self_asserted",
    )
    assert (person.given_name, person.family_name, person.name_ar) == ("Anna", "Schmidt", "آنا شميت")
    assert registry.passwords.authenticate("anna.traveller", PASSWORD).account_id == person.id
    (completed,) = audit_events(registry, "registration.completed")
    assert completed["subject"] == person.id and completed["detail"] == {"via": "code"}

    # The link in the same mail is spent with the request.
    assert browser.get(link).status_code == 410
    for secret in (code, link.split("code=")[1], PASSWORD):
        assert secret not in caplog.text


def test_the_link_works_from_another_browser_without_signing_it_in(
    app: Flask, registry: Registry, world: World
) -> None:
    registering = FlaskPerson(app)
    _register(registering)
    _code, link = _mailed(registry, "anna.t@example.net")

    phone = FlaskPerson(app)  # the mail app opens the link elsewhere
    confirm = phone.get(link)
    html = confirm.get_data(as_text=True)
    assert "Create the visitor account anna.traveller for anna.t@example.net?" in html
    assert registry.accounts.by_username("anna.traveller") is None  # opening the link creates nothing
    ready = _open_link(phone, link)
    assert ready.status_code == 200 and 'id="registered"' in ready.get_data(as_text=True)
    assert phone.get("/account").status_code == 302  # the link holder proved the address, not the password

    person = registry.accounts.by_username("anna.traveller")
    assert person is not None and person.email_verified
    assert audit_events(registry, "registration.completed")[0]["detail"] == {"via": "link"}
    again = phone.get(link)
    assert again.status_code == 410 and "expired or was already used" in again.get_data(as_text=True)


def test_the_link_signs_in_the_browser_that_registered(app: Flask, registry: Registry, world: World) -> None:
    browser = FlaskPerson(app)
    _register(browser)
    _code, link = _mailed(registry, "anna.t@example.net")
    done = _open_link(browser, link)
    assert done.status_code == 302 and done.location == "/account"
    assert browser.get("/account").status_code == 200


def test_a_taken_username_is_refused_and_nothing_is_mailed(
    app: Flask, registry: Registry, world: World
) -> None:
    for taken in ("visitor", "VISITOR"):
        refused = _register(FlaskPerson(app), username=taken)
        assert refused.status_code == 409
        assert "That username is taken" in refused.get_data(as_text=True)
    assert messages(registry.settings.outbox_path) == []


def test_a_taken_address_is_never_revealed_on_the_pages(app: Flask, registry: Registry, world: World) -> None:
    fresh, taken = FlaskPerson(app), FlaskPerson(app)
    first = _register(fresh)
    second = _register(taken, username="someone.else", email="fatima@example.org")  # the citizen's
    assert (first.status_code, first.location) == (second.status_code, second.location)

    def page(browser: FlaskPerson, address: str) -> str:
        html = browser.get("/register/verify").get_data(as_text=True)
        return re.sub(r'name="csrf_token" value="[^"]*"', "", html).replace(address, "ADDRESS")

    assert page(fresh, "anna.t@example.net") == page(taken, "fatima@example.org")

    # The owner of the address learns it, by mail: no code, a pointer to sign in instead.
    (notice,) = to(registry.settings.outbox_path, "fatima@example.org")
    text = body(notice)
    assert "already belongs to an account" in text and "/signin" in text
    assert not _CODE.search(text) and "register/verify" not in text

    # Wrong codes read the same, and run out after the same number of tries.
    for attempt in range(1, 6):
        one, other = _type_code(fresh, "000000"), _type_code(taken, "000000")
        assert one.status_code == other.status_code == 401
        expected = "Too many wrong codes" if attempt == 5 else "That code is not correct"
        assert expected in one.get_data(as_text=True) and expected in other.get_data(as_text=True)
    assert registry.accounts.by_username("someone.else") is None
    started = [event["detail"]["address_in_use"] for event in audit_events(registry, "registration.started")]
    assert sorted(started) == [False, True]


def test_five_wrong_codes_drop_the_registration(app: Flask, registry: Registry, world: World) -> None:
    browser = FlaskPerson(app)
    _register(browser)
    code, link = _mailed(registry, "anna.t@example.net")
    wrong = "999999" if code != "999999" else "111111"
    for _ in range(4):
        assert "That code is not correct" in _type_code(browser, wrong).get_data(as_text=True)
    assert "Too many wrong codes" in _type_code(browser, wrong).get_data(as_text=True)
    assert _type_code(browser, code).status_code == 401
    assert browser.get(link).status_code == 410
    assert registry.accounts.by_username("anna.traveller") is None
    reasons = [event["detail"]["reason"] for event in audit_events(registry, "registration.refused")]
    assert reasons.count("too_many") == 1


def test_the_code_only_works_in_the_browser_that_registered(
    app: Flask, registry: Registry, world: World
) -> None:
    _register(FlaskPerson(app))
    code, _link = _mailed(registry, "anna.t@example.net")
    elsewhere = _type_code(FlaskPerson(app), code)
    assert elsewhere.status_code == 401
    assert registry.accounts.by_username("anna.traveller") is None


def test_a_registration_waits_24_hours(
    app: Flask, registry: Registry, world: World, clock: FrozenClock
) -> None:
    browser = FlaskPerson(app)
    _register(browser)
    code, link = _mailed(registry, "anna.t@example.net")
    clock.advance(registry.settings.registration_ttl + 1)
    assert browser.get(link).status_code == 410
    assert _type_code(browser, code).status_code == 401
    assert registry.accounts.by_username("anna.traveller") is None


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"password": "fourteen chars", "password_confirm": "fourteen chars"}, "at least 15 characters"),
        ({"password_confirm": PASSWORD + "!"}, "The two passwords are not the same"),
        (
            {"password": "anna.traveller 2024 pw", "password_confirm": "anna.traveller 2024 pw"},
            "contain the username",
        ),
        ({"nationality": "Germany"}, "two-letter country code"),
        ({"passport_number": "x1"}, "5 to 20 letters and digits"),
        ({"email": "not-an-address"}, "valid email address"),
        ({"family_name": "  "}, "given name and your family name"),
        ({"username": "-x"}, "3 to 150 letters"),
    ],
)
def test_the_form_says_what_is_wrong_and_keeps_what_was_typed(
    app: Flask, registry: Registry, world: World, changes: dict[str, str], says: str
) -> None:
    refused = _register(FlaskPerson(app), **changes)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400 and says in html, html[:2000]
    assert 'value="Schmidt"' in html or changes.get("family_name") is not None
    assert PASSWORD not in html
    assert messages(registry.settings.outbox_path) == []


def test_the_waiting_request_holds_only_a_hash_of_the_password(
    app: Flask, registry: Registry, world: World, tmp_path: Path
) -> None:
    _register(FlaskPerson(app))
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("ephemeral.db*"))
    assert b"anna.traveller" in stored and b"$argon2id$" in stored  # the request is there ...
    assert PASSWORD.encode() not in stored  # ... without the password


def test_starts_and_codes_are_throttled(tmp_path: Path, clock: FrozenClock) -> None:
    from idp.app import create_app
    from tests.conftest import Backend

    backend = Backend("embedded", f"sqlite:///{tmp_path / 'hawiya.db'}", "embedded", "hawiya:")
    settings = make_settings(tmp_path, backend, signin_max_failures=2, factor_max_failures=3)
    registry = initialised(settings, clock)
    try:
        app = create_app(registry=registry)
        browser = FlaskPerson(app)
        assert _register(browser).status_code == 303
        assert _register(browser, username="anna.two").status_code == 303
        blocked = _register(browser, username="anna.three")  # the same address, a third time
        assert blocked.status_code == 429 and "Too many attempts" in blocked.get_data(as_text=True)
        for _ in range(3):
            assert _type_code(browser, "123456").status_code == 401
        assert _type_code(browser, "123456").status_code == 429
        assert len(messages(settings.outbox_path)) == 2
    finally:
        registry.close()


def test_registration_can_be_switched_off(tmp_path: Path, clock: FrozenClock) -> None:
    from idp.app import create_app
    from tests.conftest import Backend

    backend = Backend("embedded", f"sqlite:///{tmp_path / 'hawiya.db'}", "embedded", "hawiya:")
    registry = initialised(make_settings(tmp_path, backend, self_registration=False), clock)
    try:
        browser = FlaskPerson(create_app(registry=registry))
        assert browser.get("/register").status_code == 404
        assert browser.get("/register/verify").status_code == 404
        assert 'href="/register"' not in browser.get("/signin").get_data(as_text=True)
    finally:
        registry.close()
