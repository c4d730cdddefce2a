"""Staff must use MFA: a staff member with no factor sets one up right after the password, and no
session exists (so no agency is reached) until that is done."""

from __future__ import annotations

from flask import Flask
from werkzeug.test import TestResponse

from idp.clock import FrozenClock
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, PASSWORD
from tests.support.audit import audit_events
from tests.support.identity import national_id
from tests.support.mfa import MfaPerson, Rp, mailed_code, qr_on, secret_on
from tests.support.outbox import about
from tests.support.person import hidden_fields

SUBSTANTIAL = "urn:hawiya:loa:substantial"


@BOTH_BACKENDS
def test_staff_without_a_factor_enrols_before_continuing(
    staff: MfaPerson, rp: Rp, registry: Registry
) -> None:
    claims = rp.id_token(staff.go(rp.url()))
    steps = [(page.request.method, page.request.path) for page in staff.pages]
    assert steps[:3] == [("GET", "/signin"), ("GET", "/signin/enrol"), ("GET", "/signin/enrol")]
    assert 'id="first-factor-code"' in staff.pages[1].get_data(as_text=True)  # the mailed code first
    enrol = staff.pages[2].get_data(as_text=True)
    assert qr_on(enrol) and secret_on(enrol) == staff.secret
    assert "Your account must use a second factor" in enrol
    assert len(staff.recovery_codes) == 10
    assert (claims["acr"], claims["amr"]) == (SUBSTANTIAL, ["pwd", "otp", "mfa"])
    assert audit_events(registry, "factor.succeeded")[0]["detail"]["enrolment"] is True


def test_leaving_enrolment_leaves_no_session(staff: MfaPerson, rp: Rp) -> None:
    page = staff.open_page(rp.url(), "/signin")
    enrol = staff.follow(staff.sign_in(page))
    assert not isinstance(enrol, str) and enrol.request.path == "/signin/enrol"
    # Straight back to the agency: nobody is signed in, so the sign-in page shows again.
    again = staff.follow(staff.get(rp.url("s-2")))
    assert not isinstance(again, str) and again.request.path == "/signin"
    silent = staff.get(rp.url("s-3", prompt="none"))
    assert rp.back(silent.location or "", "s-3")["error"] == "login_required"


def _at_enrolment(staff: MfaPerson, rp: Rp) -> TestResponse:
    """Sign in with the password and confirm the mailed code: the page that shows the app's key."""
    page = staff.open_page(rp.url(), "/signin")
    asked = staff.follow(staff.sign_in(page))
    assert not isinstance(asked, str) and asked.request.path == "/signin/enrol"
    enrol = staff.follow(staff.confirm_address(asked))
    assert not isinstance(enrol, str) and enrol.request.path == "/signin/enrol"
    return enrol


def test_reloading_enrolment_shows_the_same_key(staff: MfaPerson, rp: Rp) -> None:
    first = _at_enrolment(staff, rp)
    again = staff.get(first.request.full_path)
    assert secret_on(again.get_data(as_text=True)) == secret_on(first.get_data(as_text=True))


def test_a_wrong_code_keeps_the_staff_member_on_enrolment(
    staff: MfaPerson, rp: Rp, clock: FrozenClock
) -> None:
    enrol = _at_enrolment(staff, rp)
    staff.secret = secret_on(enrol.get_data(as_text=True))
    refused = staff.set_up_app(enrol, steps=5)
    assert refused.status_code == 401
    assert "That code is not correct" in refused.get_data(as_text=True)
    assert staff.get("/account").status_code == 302  # still not signed in


def test_next_sign_in_asks_for_the_code(app: Flask, staff: MfaPerson, rp: Rp, clock: FrozenClock) -> None:
    rp.id_token(staff.go(rp.url()))
    clock.advance(120)
    later = MfaPerson(app, "staff", PASSWORD, clock=clock, secret=staff.secret)
    claims = rp.id_token(later.go(rp.url("s-2")), "s-2")
    assert [page.request.path for page in later.pages][:2] == ["/signin", "/signin/factor"]
    assert claims["acr"] == SUBSTANTIAL


# -- a password alone never binds the first factor (issue: a stolen password became a takeover) ---


def _signed_in_with_password(person: MfaPerson, rp: Rp) -> TestResponse:
    page = person.open_page(rp.url(), "/signin")
    asked = person.follow(person.sign_in(page))
    assert not isinstance(asked, str) and asked.request.path == "/signin/enrol"
    return asked


def _code_mails(registry: Registry) -> list[object]:
    outbox = registry.settings.outbox_path
    return list(about(outbox, "yousef@health.example", "Confirm adding a second factor"))


def _code_form_token(page: TestResponse) -> str:
    form = page.get_data(as_text=True).split('id="first-factor-code"', 1)[1]
    return form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


@BOTH_BACKENDS
def test_a_password_alone_shows_no_key_and_binds_nothing(
    staff: MfaPerson, rp: Rp, registry: Registry
) -> None:
    """Whoever holds only the password reaches the page that asks for the code mailed to the
    verified address: no key is shown, no enrolment begins, a reload mails no other code, and a
    guessed code binds nothing."""
    asked = _signed_in_with_password(staff, rp)
    html = asked.get_data(as_text=True)
    assert 'id="first-factor-code"' in html and 'id="secret"' not in html
    assert "yousef@health.example" in html
    person = registry.accounts.by_username("staff")
    assert person is not None
    assert len(_code_mails(registry)) == 1
    assert 'id="secret"' not in staff.get(asked.request.full_path).get_data(as_text=True)
    assert len(_code_mails(registry)) == 1
    wrong = staff.post(asked.request.full_path, {"csrf_token": _code_form_token(asked), "code": "000000"})
    assert wrong.status_code == 401 and 'id="secret"' not in wrong.get_data(as_text=True)
    assert registry.authenticators.factors(person.id) == []
    assert registry.authenticators.confirmed_kinds(person.id) == set()
    assert staff.get("/account").status_code == 302  # no session either
    assert audit_events(registry, "first_factor.refused")[0]["detail"] == {"reason": "wrong_code"}


def test_the_mailed_code_confirms_only_the_sign_in_that_asked(
    app: Flask, staff: MfaPerson, rp: Rp, clock: FrozenClock
) -> None:
    """The owner's confirmation is hers: a second browser with the same password is still asked,
    and the owner's spent code does nothing there."""
    asked = _signed_in_with_password(staff, rp)
    code = mailed_code(staff)
    enrol = staff.follow(staff.confirm_address(asked))
    assert not isinstance(enrol, str) and 'id="secret"' in enrol.get_data(as_text=True)

    intruder = MfaPerson(app, "staff", PASSWORD, clock=clock)
    still_asked = _signed_in_with_password(intruder, rp)
    assert 'id="secret"' not in still_asked.get_data(as_text=True)
    replayed = intruder.post(
        still_asked.request.full_path, {"csrf_token": _code_form_token(still_asked), "code": code}
    )
    assert replayed.status_code == 401 and 'id="secret"' not in replayed.get_data(as_text=True)


def test_without_a_verified_address_the_staff_member_is_told_to_ask_for_an_activation_code(
    app: Flask, rp: Rp, registry: Registry, clock: FrozenClock
) -> None:
    registry.accounts.create(
        account_type="staff",
        username="hamad",
        password=PASSWORD,
        national_id=national_id(41),
        agency="Ministry of Health",
        roles=("helpdesk",),
    )
    person = MfaPerson(app, "hamad", PASSWORD, clock=clock)
    refused = _signed_in_with_password(person, rp)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 403 and 'id="first-factor-refused"' in html
    assert "ask your administrator for an activation code" in html and 'id="secret"' not in html
    found = registry.accounts.by_username("hamad")
    assert found is not None and registry.authenticators.factors(found.id) == []
    token = hidden_fields(person.get("/signin").get_data(as_text=True))["csrf_token"]  # this session's
    again = person.post(refused.request.full_path, {"csrf_token": token, "code": "123456"})
    assert again.status_code == 403 and 'id="secret"' not in again.get_data(as_text=True)
    assert registry.authenticators.factors(found.id) == []
