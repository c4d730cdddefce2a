"""Changing the password in the account area (``/account/password``): it needs the account's
reachable level proven within ``reauth_max_age`` (a password re-entry is not enough for a factor
holder), and like every new password it evicts: every session ends (this browser's too), every
refresh family is revoked, and the person is mailed."""

from __future__ import annotations

from flask import Flask
from werkzeug.test import TestResponse

from idp.clock import FrozenClock
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, PASSWORD, World
from tests.support.audit import audit_events
from tests.support.mfa import MfaPerson, add_app_in_account, open_account, secured_submit, submit
from tests.support.outbox import about, body
from tests.support.person import hidden_fields
from tests.support.tokens import password_grant

NEW_PASSWORD = "a lantern by the old souq"
FATIMA = "fatima@example.org"


def _change(person: MfaPerson, password: str, confirm: str | None = None) -> TestResponse:
    form = secured_submit(person, "/account/password")
    assert form.status_code == 200, form.get_data(as_text=True)[:300]
    return submit(
        person,
        form,
        "/account/password/set",
        password=password,
        password_confirm=password if confirm is None else confirm,
    )


@BOTH_BACKENDS
def test_a_new_password_signs_out_everywhere_and_mails_the_person(
    app: Flask, citizen: MfaPerson, registry: Registry, world: World, clock: FrozenClock
) -> None:
    add_app_in_account(citizen)
    elsewhere = MfaPerson(app, "citizen", PASSWORD, clock=clock, secret=citizen.secret)
    clock.advance(30)
    open_account(elsewhere)
    offline = registry.refresh.issue(
        password_grant(registry, world.citizen_id, world.confidential_id, sid=None, offline=True)
    )

    done = _change(citizen, NEW_PASSWORD)
    assert done.status_code == 200 and 'id="password-changed"' in done.get_data(as_text=True)
    # Signed out here and elsewhere; the offline token is dead; the old password is refused.
    assert citizen.get("/account").status_code == 302
    assert elsewhere.get("/account").status_code == 302
    assert registry.refresh.consume(offline, world.confidential_id) is None
    assert audit_events(registry, "password.changed")[0]["detail"] == {"via": "account"}
    assert audit_events(registry, "account.evicted")[0]["detail"]["sessions"] == 2
    old = MfaPerson(app, "citizen", PASSWORD, clock=clock, secret=citizen.secret)
    assert old.sign_in(old.open_page("/account", "/signin")).status_code == 401
    new = MfaPerson(app, "citizen", NEW_PASSWORD, clock=clock, secret=citizen.secret)
    clock.advance(30)
    assert open_account(new).status_code == 200
    (mail,) = about(registry.settings.outbox_path, FATIMA, "password of your Hawiya account was changed")
    assert NEW_PASSWORD not in body(mail) and "/account/not-me?token=" in body(mail)


def test_a_password_re_entry_alone_does_not_change_a_factor_holders_password(
    citizen: MfaPerson, registry: Registry, clock: FrozenClock
) -> None:
    add_app_in_account(citizen)
    clock.advance(registry.settings.reauth_max_age + 1)
    reauth = citizen.get("/account/reauth")
    submit(citizen, reauth, "/account/reauth", password=PASSWORD)
    asked = submit(citizen, citizen.get("/account"), "/account/password")
    assert asked.status_code == 303 and asked.location == "/signin/factor?renew=1"
    # Posting the new password straight away, with a valid CSRF token, is sent the same way.
    token = hidden_fields(citizen.get("/account").get_data(as_text=True))["csrf_token"]
    fields = {"csrf_token": token, "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}
    direct = citizen.post("/account/password/set", fields)
    assert direct.status_code == 303 and direct.location == "/signin/factor?renew=1"
    assert audit_events(registry, "password.changed") == []


def test_a_weak_or_mistyped_password_changes_nothing(citizen: MfaPerson, registry: Registry) -> None:
    open_account(citizen)
    differ = _change(citizen, NEW_PASSWORD, confirm=NEW_PASSWORD + "!")
    assert differ.status_code == 400 and "not the same" in differ.get_data(as_text=True)
    short = _change(citizen, "too short")
    html = short.get_data(as_text=True)
    assert short.status_code == 400 and "at least 15 characters" in html
    assert audit_events(registry, "password.changed") == []
    assert citizen.get("/account").status_code == 200  # still signed in
