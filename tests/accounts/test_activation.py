"""Activation codes: the first credential of people created by staff or import. A code is mailed or
printed, sets the first password once, expires, is replaced by a newer one, is throttled, and every
refusal is audited with its reason; a staff member then enrols a second factor before the sign-in
finishes. Codes and passwords never reach the log."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from idp.accounts.activation import ActivationRefused
from idp.accounts.service import Person
from idp.clock import FrozenClock
from idp.errors import AuthenticationFailed, TooManyAttempts, WeakPassword
from idp.registry import Registry
from idp.storage.models import ActivationCode
from tests.conftest import BOTH_BACKENDS, World
from tests.support.audit import audit_events
from tests.support.flask_person import FlaskPerson
from tests.support.identity import national_id
from tests.support.mfa import MfaPerson, continue_link
from tests.support.outbox import body, to
from tests.support.person import hidden_fields

NEW_PASSWORD = "a quiet harbour at dawn"
CODE = re.compile(r"\b[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}\b")


def _citizen(registry: Registry, username: str = "amal", email: str | None = "amal@example.org") -> Person:
    return registry.accounts.create(
        account_type="citizen",
        username=username,
        password=None,
        email=email,
        name="Amal Al-Rashid",
        name_ar="أمل الراشد",
        national_id=national_id(21 + len(username)),
        proofing_level="counter",
    )


def _refusals(registry: Registry) -> list[object]:
    return [event["detail"]["reason"] for event in audit_events(registry, "activation_code.refused")]


def _activate(person: FlaskPerson, code: str, password: str, confirm: str | None = None) -> TestResponse:
    page = person.get("/activate")
    assert page.status_code == 200
    fields = hidden_fields(page.get_data(as_text=True))
    fields.update(code=code, password=password, password_confirm=password if confirm is None else confirm)
    return person.post("/activate", fields)


# -- the service --------------------------------------------------------------------------------------


@BOTH_BACKENDS
def test_a_mailed_code_sets_the_first_password_once(registry: Registry) -> None:
    person = _citizen(registry)
    with pytest.raises(AuthenticationFailed):  # no password yet: nothing signs in
        registry.passwords.authenticate("amal", NEW_PASSWORD)

    issued = registry.activation_codes.issue(person.id, actor="operator", send=True)
    assert CODE.fullmatch(issued.code) and issued.sent_to == "amal@example.org"
    (mail,) = to(registry.settings.outbox_path, "amal@example.org")
    text = body(mail)
    assert issued.code in text and f"{registry.settings.issuer}/activate" in text
    assert "رمز تفعيل حسابك" in text and "Your Hawiya activation code" in text  # both languages
    assert "أمل الراشد" in text and "Amal Al-Rashid" in text

    # Typed the way people type: lower case, no hyphens, stray spaces.
    typed = " " + issued.code.replace("-", "").lower() + " "
    assert registry.activation_codes.use(typed, new_password=NEW_PASSWORD).id == person.id
    assert registry.passwords.authenticate("amal", NEW_PASSWORD).account_id == person.id

    with pytest.raises(ActivationRefused) as again:
        registry.activation_codes.use(issued.code, new_password="another long passphrase")
    assert again.value.reason == "used"
    assert registry.passwords.authenticate("amal", NEW_PASSWORD).account_id == person.id
    assert _refusals(registry) == ["used"]
    (issued_event,) = audit_events(registry, "activation_code.issued")
    assert issued_event["subject"] == person.id and issued_event["detail"]["sent"] is True
    assert len(audit_events(registry, "activation_code.used")) == 1


@BOTH_BACKENDS
def test_only_an_hmac_of_the_code_is_stored(registry: Registry) -> None:
    person = _citizen(registry)
    issued = registry.activation_codes.issue(person.id, actor="operator", send=False)
    normal = issued.code.replace("-", "")
    with registry.db.transaction() as s:
        (row,) = s.scalars(select(ActivationCode).where(ActivationCode.account_id == person.id)).all()
        stored = [str(getattr(row, column.name)) for column in ActivationCode.__table__.columns]
    key = registry.keystore.instance_secret("activation_code_key")
    assert row.code_hash == hmac.new(key, normal.encode(), hashlib.sha256).hexdigest()
    assert not any(normal in value or issued.code in value for value in stored)
    assert row.code_hash != hashlib.sha256(normal.encode()).hexdigest()
    assert issued.code not in str(audit_events(registry, "activation_code.issued"))


@BOTH_BACKENDS
def test_a_code_works_once_when_two_requests_race(registry: Registry) -> None:
    person = _citizen(registry)
    code = registry.activation_codes.issue(person.id, actor="operator", send=False).code
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(password: str) -> None:
        barrier.wait(timeout=10)
        try:
            registry.activation_codes.use(code, new_password=password)
            outcomes.append("activated")
        except ActivationRefused as refused:
            outcomes.append(refused.reason)

    racers = [threading.Thread(target=attempt, args=(p,)) for p in (NEW_PASSWORD, "another long passphrase")]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=30)
    assert sorted(outcomes) == ["activated", "used"]


def test_expired_and_replaced_codes_are_refused(registry: Registry, clock: FrozenClock) -> None:
    person = _citizen(registry)
    first = registry.activation_codes.issue(person.id, actor="operator", send=False).code
    second = registry.activation_codes.issue(person.id, actor="operator", send=False).code
    with pytest.raises(ActivationRefused) as replaced:
        registry.activation_codes.use(first, new_password=NEW_PASSWORD)
    assert replaced.value.reason == "expired"

    clock.advance(registry.settings.activation_ttl + 1)
    with pytest.raises(ActivationRefused) as expired:
        registry.activation_codes.use(second, new_password=NEW_PASSWORD)
    assert expired.value.reason == "expired"
    with pytest.raises(AuthenticationFailed):
        registry.passwords.authenticate("amal", NEW_PASSWORD)

    third = registry.activation_codes.issue(person.id, actor="operator", send=False).code
    registry.activation_codes.use(third, new_password=NEW_PASSWORD)
    assert _refusals(registry) == ["expired", "expired"]


def test_a_refused_password_does_not_spend_the_code(registry: Registry) -> None:
    person = _citizen(registry)
    code = registry.activation_codes.issue(person.id, actor="operator", send=False).code
    for weak, reason in (("too short", "password_too_short"), ("passwordpassword", "password_common")):
        with pytest.raises(WeakPassword) as refused:
            registry.activation_codes.use(code, new_password=weak)
        assert refused.value.code == reason
    registry.activation_codes.use(code, new_password=NEW_PASSWORD)
    assert registry.passwords.authenticate("amal", NEW_PASSWORD).account_id == person.id


def test_wrong_codes_are_throttled_per_address(registry: Registry) -> None:
    person = _citizen(registry)
    code = registry.activation_codes.issue(person.id, actor="operator", send=False).code
    for wrong in ["ABCD-EFGH-JKMN"] * 5 + ["not a code at all"] * 5:
        with pytest.raises(ActivationRefused) as refused:
            registry.activation_codes.use(wrong, new_password=NEW_PASSWORD, ip="203.0.113.9")
        assert refused.value.reason == "unknown"
    with pytest.raises(TooManyAttempts):  # even the right code, from that address, for now
        registry.activation_codes.use(code, new_password=NEW_PASSWORD, ip="203.0.113.9")
    assert len(audit_events(registry, "activation.throttled")) == 1
    # Another address is not blocked by the first one's guesses.
    registry.activation_codes.use(code, new_password=NEW_PASSWORD, ip="198.51.100.4")
    assert _refusals(registry) == ["unknown"] * 10


def test_a_code_without_an_address_is_for_the_counter(registry: Registry) -> None:
    person = _citizen(registry, email=None)
    issued = registry.activation_codes.issue(person.id, actor="operator", send=True)
    assert issued.sent_to is None and CODE.fullmatch(issued.code)
    assert not registry.settings.outbox_path.exists() or not any(registry.settings.outbox_path.iterdir())


# -- the page ---------------------------------------------------------------------------------------


def test_a_citizen_activates_and_is_signed_in(
    app: Flask, registry: Registry, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="idp")
    person = _citizen(registry)
    code = registry.activation_codes.issue(person.id, actor="operator", send=True).code
    browser = FlaskPerson(app)
    signin = browser.get("/signin").get_data(as_text=True)
    assert 'href="/activate"' in signin

    done = _activate(browser, code, NEW_PASSWORD)
    assert done.status_code == 302 and done.location == "/account"
    account = browser.get("/account")
    assert account.status_code == 200 and "Amal Al-Rashid" in account.get_data(as_text=True)
    assert registry.passwords.authenticate("amal", NEW_PASSWORD).account_id == person.id
    assert code not in caplog.text and code.replace("-", "") not in caplog.text
    assert NEW_PASSWORD not in caplog.text


def test_the_page_says_what_went_wrong(app: Flask, registry: Registry, world: World) -> None:
    person = _citizen(registry)
    code = registry.activation_codes.issue(person.id, actor="operator", send=False).code
    browser = FlaskPerson(app)

    unknown = _activate(browser, "ABCD-EFGH-JKMN", NEW_PASSWORD)
    assert unknown.status_code == 401
    assert "That activation code is not correct" in unknown.get_data(as_text=True)

    differ = _activate(browser, code, NEW_PASSWORD, confirm=NEW_PASSWORD + "!")
    assert differ.status_code == 400 and "The two passwords are not the same" in differ.get_data(as_text=True)

    short = _activate(browser, code, "fourteen chars")
    html = short.get_data(as_text=True)
    assert short.status_code == 400 and "at least 15 characters" in html
    assert f'value="{code}"' in html and "fourteen chars" not in html  # the code stays, the password not

    assert _activate(browser, code, NEW_PASSWORD).status_code == 302
    used = _activate(FlaskPerson(app), code, NEW_PASSWORD)
    assert used.status_code == 401 and "already used" in used.get_data(as_text=True)
    assert _refusals(registry) == ["used", "unknown"]  # newest first


def test_staff_choose_a_shorter_password_and_must_enrol_a_second_factor(
    app: Flask, registry: Registry, world: World, clock: FrozenClock
) -> None:
    staff = registry.accounts.create(
        account_type="staff",
        username="noura",
        password=None,
        national_id=national_id(31),
        agency="Ministry of Justice",
        roles=("helpdesk",),
    )
    code = registry.activation_codes.issue(staff.id, actor="operator", send=False).code
    browser = MfaPerson(app, "noura", "", clock=clock)

    too_short = _activate(browser, code, "seven77")
    assert too_short.status_code == 400 and "at least 8 characters" in too_short.get_data(as_text=True)
    started = _activate(browser, code, "ten chars!")  # 8 suffice where a second factor is required
    assert started.status_code == 302 and started.location.startswith("/signin/enrol")
    assert browser.get("/account").status_code == 302  # not signed in before the factor is set up

    enrolment = browser.get(started.location)
    assert 'id="secret"' in enrolment.get_data(as_text=True)
    codes_page = browser.set_up_app(enrolment, label="Phone")
    assert codes_page.status_code == 200 and 'id="recovery-codes"' in codes_page.get_data(as_text=True)
    assert browser.get(continue_link(codes_page.get_data(as_text=True))).status_code == 200
    assert browser.get("/account").status_code == 200
    assert registry.mfa.next_step(staff.id) == "factor"
