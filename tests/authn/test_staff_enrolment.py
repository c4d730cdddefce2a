"""Staff must use MFA: a staff member with no factor sets one up right after the password, and no
session exists (so no agency is reached) until that is done."""

from __future__ import annotations

from flask import Flask

from idp.clock import FrozenClock
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, PASSWORD
from tests.support.audit import audit_events
from tests.support.mfa import MfaPerson, Rp, qr_on, secret_on

SUBSTANTIAL = "urn:hawiya:loa:substantial"


@BOTH_BACKENDS
def test_staff_without_a_factor_enrols_before_continuing(
    staff: MfaPerson, rp: Rp, registry: Registry
) -> None:
    claims = rp.id_token(staff.go(rp.url()))
    paths = [page.request.path for page in staff.pages]
    assert paths[:2] == ["/signin", "/signin/enrol"]
    enrol = staff.pages[1].get_data(as_text=True)
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


def test_reloading_enrolment_shows_the_same_key(staff: MfaPerson, rp: Rp) -> None:
    page = staff.open_page(rp.url(), "/signin")
    first = staff.follow(staff.sign_in(page))
    assert not isinstance(first, str)
    again = staff.get(first.request.full_path)
    assert secret_on(again.get_data(as_text=True)) == secret_on(first.get_data(as_text=True))


def test_a_wrong_code_keeps_the_staff_member_on_enrolment(
    staff: MfaPerson, rp: Rp, clock: FrozenClock
) -> None:
    page = staff.open_page(rp.url(), "/signin")
    enrol = staff.follow(staff.sign_in(page))
    assert not isinstance(enrol, str)
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
