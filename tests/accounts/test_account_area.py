"""The account area (/account): signed-in only, lists authenticators and recovery codes, and every
change needs a recent authentication, a CSRF token, and passes the MFA policy."""

from __future__ import annotations

import re

from flask import Flask

from idp.clock import FrozenClock
from idp.registry import Registry
from tests.conftest import PASSWORD, World
from tests.support.audit import audit_events
from tests.support.mfa import MfaPerson, Rp, add_app_in_account, open_account, secured_submit, submit


def _factor_ids(html: str) -> list[str]:
    return re.findall(r'action="/account/authenticators/([^/"]+)/rename"', html)


def test_account_needs_a_sign_in_and_sign_in_returns_there(citizen: MfaPerson) -> None:
    first = citizen.get("/account")
    assert first.status_code == 302 and first.location == "/signin"
    page = citizen.open_page("/signin", "/signin")
    after = citizen.sign_in(page)
    assert after.status_code == 302 and after.location == "/account"
    html = citizen.get("/account").get_data(as_text=True)
    assert "Your account" in html and "Fatima Al-Sabah" in html


def test_home_page_links_to_the_account(app: Flask, citizen: MfaPerson) -> None:
    assert 'href="/account"' in app.test_client().get("/").get_data(as_text=True)
    open_account(citizen)
    assert 'href="/account"' in citizen.get("/").get_data(as_text=True)


def test_changes_need_a_recent_sign_in(citizen: MfaPerson, clock: FrozenClock, registry: Registry) -> None:
    account = open_account(citizen)
    clock.advance(registry.settings.reauth_max_age + 1)
    asked = submit(citizen, citizen.get("/account"), "/account/totp", label="Phone")
    assert asked.status_code == 303 and asked.location == "/account/reauth"
    reauth = citizen.get("/account/reauth")
    html = reauth.get_data(as_text=True)
    assert "Confirm your password" in html and 'name="password"' in html
    wrong = submit(citizen, reauth, "/account/reauth", password="not the password at all")
    assert wrong.status_code == 401 and "The password is not correct" in wrong.get_data(as_text=True)
    right = submit(citizen, reauth, "/account/reauth", password=PASSWORD)
    assert right.status_code == 303 and right.location == "/account"
    assert len(audit_events(registry, "session.reauthenticated")) == 1
    # Back on the account page the re-entry led to (its forms carry the new session's token). Her
    # first factor: a code mailed to her address comes first (tests/accounts/test_binding.py).
    started = submit(citizen, citizen.get(right.location), "/account/totp", label="Phone")
    assert started.status_code == 200 and 'id="first-factor-code"' in started.get_data(as_text=True)
    # A form opened before the re-entry is refused: the re-entry was an authentication step.
    assert submit(citizen, account, "/account/totp", label="Phone").status_code == 400


def test_every_change_is_guarded_by_recency(citizen: MfaPerson, clock: FrozenClock) -> None:
    add_app_in_account(citizen)
    account = citizen.get("/account")
    (ident,) = _factor_ids(account.get_data(as_text=True))
    clock.advance(301)
    for action, fields in (
        ("/account/totp", {"label": "x"}),
        ("/account/totp/confirm", {"authenticator": ident, "code": "123456"}),
        (f"/account/authenticators/{ident}/rename", {"label": "Renamed"}),
        (f"/account/authenticators/{ident}/remove", {}),
        ("/account/recovery-codes", {}),
    ):
        refused = (
            submit(citizen, account, action, **fields)
            if action != "/account/totp/confirm"
            else (citizen.post(action, {"csrf_token": _csrf(account), **fields}))
        )
        # Renaming needs a recent password; the rest a factor too (the account reaches substantial).
        expected = "/account/reauth" if action.endswith("/rename") else "/account/reauth?next=factor"
        assert refused.status_code == 303 and refused.location == expected, action
    html = citizen.get("/account").get_data(as_text=True)
    assert _factor_ids(html) == [ident] and "Renamed" not in html


def _csrf(page: object) -> str:
    from tests.support.person import hidden_fields

    return hidden_fields(page.get_data(as_text=True))["csrf_token"]  # type: ignore[attr-defined]


def test_forms_without_a_csrf_token_are_refused(citizen: MfaPerson, registry: Registry) -> None:
    add_app_in_account(citizen)
    html = citizen.get("/account").get_data(as_text=True)
    (ident,) = _factor_ids(html)
    for action in ("/account/totp", f"/account/authenticators/{ident}/remove", "/account/recovery-codes"):
        refused = citizen.post(action, {"label": "x"})
        assert refused.status_code == 400, action
        assert "This form has expired" in refused.get_data(as_text=True)
    bad_token = citizen.post(f"/account/authenticators/{ident}/remove", {"csrf_token": "forged"})
    assert bad_token.status_code == 400
    assert _factor_ids(citizen.get("/account").get_data(as_text=True)) == [ident]
    assert audit_events(registry, "authenticator.removed") == []


def test_rename_is_audited_and_escaped(citizen: MfaPerson, registry: Registry) -> None:
    add_app_in_account(citizen, label="Phone")
    account = citizen.get("/account")
    (ident,) = _factor_ids(account.get_data(as_text=True))
    done = submit(citizen, account, f"/account/authenticators/{ident}/rename", label="<b>Work</b> phone")
    assert done.status_code == 303 and done.location == "/account?done=renamed"
    html = citizen.get(done.location).get_data(as_text=True)
    assert "&lt;b&gt;Work&lt;/b&gt; phone" in html and "<b>Work</b>" not in html
    assert "The authenticator was renamed." in html
    assert audit_events(registry, "authenticator.renamed")[0]["detail"] == {"authenticator": ident}


def test_staff_cannot_remove_their_last_factor(
    staff: MfaPerson, registry: Registry, clock: FrozenClock
) -> None:
    account = open_account(staff)  # signs in, enrolling the required app on the way
    html = account.get_data(as_text=True)
    (ident,) = _factor_ids(html)
    assert f"/account/authenticators/{ident}/remove" not in html  # no button offered
    refused = submit(staff, account, "/account/totp", label="x")  # a valid form to take a token from
    assert refused.status_code == 200
    blocked = staff.post(f"/account/authenticators/{ident}/remove", {"csrf_token": _csrf(account)})
    assert blocked.status_code == 403
    assert "You cannot remove your last second factor" in blocked.get_data(as_text=True)
    assert _factor_ids(staff.get("/account").get_data(as_text=True)) == [ident]
    assert audit_events(registry, "authenticator.removal_refused")[0]["detail"]["reason"] == "last_factor"
    # With a second one, the first may go.
    clock.advance(60)
    add_app_in_account(staff, label="Spare phone")
    html = staff.get("/account").get_data(as_text=True)
    assert len(_factor_ids(html)) == 2
    removed = submit(staff, staff.get("/account"), f"/account/authenticators/{ident}/remove")
    assert removed.status_code == 303
    assert _factor_ids(staff.get("/account").get_data(as_text=True)) != [ident]
    assert len(audit_events(registry, "authenticator.removed")) == 1


def test_a_citizen_may_remove_her_only_factor(
    app: Flask, citizen: MfaPerson, rp: Rp, registry: Registry, clock: FrozenClock, world: World
) -> None:
    add_app_in_account(citizen)
    account = citizen.get("/account")
    (ident,) = _factor_ids(account.get_data(as_text=True))
    removed = secured_submit(citizen, f"/account/authenticators/{ident}/remove")
    assert removed.status_code == 303 and removed.location == "/account?done=removed"
    html = citizen.get(removed.location).get_data(as_text=True)
    assert "The authenticator was removed." in html and "You have no second factor yet" in html
    # The recovery codes went with it, and the next sign-in asks only for the password.
    assert registry.recovery_codes.status(world.citizen_id).total == 0
    later = MfaPerson(app, "citizen", PASSWORD, clock=clock)
    claims = rp.id_token(later.go(rp.url()))
    assert [p.request.path for p in later.pages] == ["/signin"]
    assert claims["acr"] == "urn:hawiya:loa:low"


def test_someone_elses_authenticator_cannot_be_touched(
    app: Flask, citizen: MfaPerson, staff: MfaPerson
) -> None:
    open_account(staff)
    (staff_factor,) = _factor_ids(staff.get("/account").get_data(as_text=True))
    account = open_account(citizen)
    for action in (
        f"/account/authenticators/{staff_factor}/rename",
        f"/account/authenticators/{staff_factor}/remove",
    ):
        refused = citizen.post(action, {"csrf_token": _csrf(account), "label": "mine now"})
        assert refused.status_code == 404, action
    assert _factor_ids(staff.get("/account").get_data(as_text=True)) == [staff_factor]


def test_recovery_codes_need_a_factor(citizen: MfaPerson) -> None:
    account = open_account(citizen)
    html = account.get_data(as_text=True)
    assert "Recovery codes come with your first second factor." in html
    refused = citizen.post("/account/recovery-codes", {"csrf_token": _csrf(account)})
    assert refused.status_code == 403


def test_account_pages_speak_arabic(app: Flask, world: World, clock: FrozenClock) -> None:
    person = MfaPerson(app, "citizen", PASSWORD, clock=clock)
    person.headers = {"Accept-Language": "ar"}
    html = open_account(person).get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in html and "حسابك" in html
