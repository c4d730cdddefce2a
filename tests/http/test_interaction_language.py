"""Every page of one authorization request speaks its language: the agency's ``ui_locales``, or the
language the person picks on one of its pages, whatever the browser's Accept-Language says. A
wrong password, the mailed-code and enrolment pages, the second-factor page (a wrong code too), the
organisation picker and the consent page all keep it (the request is parked: its ``ix`` names it
on every page and form)."""

from __future__ import annotations

import re

from flask import Flask
from werkzeug.test import TestResponse

from idp.clock import FrozenClock
from idp.registry import Registry
from tests.conftest import PASSWORD, World
from tests.support.agency import Agency
from tests.support.mfa import MfaPerson
from tests.support.person import hidden_fields

_HTML = re.compile(r"<html\b[^>]*>")
ARABIC = '<html lang="ar" dir="rtl">'
ENGLISH = '<html lang="en" dir="ltr">'


def html_tag(response: TestResponse) -> str:
    found = _HTML.search(response.get_data(as_text=True))
    assert found, f"{response.request.path} answered {response.status_code} without a page"
    return found.group(0)


class OrganisationPerson(MfaPerson):
    """Also picks the first organisation on the organisation picker."""

    def _next_step(self, reached: TestResponse, html: str, consent: str) -> TestResponse | None:
        if reached.request.path == "/authorize/organisation" and reached.status_code == 200:
            fields = hidden_fields(html)
            choice = re.search(r'<input type="radio" name="organisation" id="[^"]*" value="([^"]+)"', html)
            assert choice, "no organisation offered"
            fields.update(decision="choose", organisation=choice.group(1))
            return self.post("/authorize/organisation", fields)
        return super()._next_step(reached, html, consent)


def request_url(app: Flask, registry: Registry, scope: str, *, port: int, **extra: str) -> tuple[str, str]:
    """An authorization request of a new agency (on ``port``) for ``scope``: (its URL, its redirect
    URI)."""
    agency = Agency.register(app, registry, port=port, scope=scope)
    url, _verifier = agency.request_url(scope, nonce="n", **extra)
    return url, agency.redirect_uri


def test_every_step_keeps_the_agencys_language(
    app: Flask, registry: Registry, world: World, clock: FrozenClock
) -> None:
    url, redirect_uri = request_url(app, registry, "openid profile", port=9471, ui_locales="ar")
    staff = MfaPerson(app, "staff", PASSWORD, clock=clock)  # an English browser
    assert staff.headers["Accept-Language"] == "en"

    signin = staff.open_page(url, "/signin")
    assert html_tag(signin) == ARABIC
    fields = hidden_fields(signin.get_data(as_text=True))
    wrong = staff.post("/signin", {**fields, "username": "staff", "password": "not the password"})
    assert wrong.status_code == 401 and html_tag(wrong) == ARABIC  # the sign-in page, with its error

    right = staff.post(
        "/signin", {**hidden_fields(wrong.get_data(as_text=True)), "username": "staff", "password": PASSWORD}
    )
    # The mailed code, the enrolment of an authenticator app, the recovery codes, the consent.
    location = staff._walk(right, "approve")
    assert isinstance(location, str) and location.startswith(redirect_uri), location
    steps = {page.request.path for page in staff.pages}
    assert {"/signin/enrol", "/consent"} <= steps, steps
    for page in staff.pages:
        assert html_tag(page) == ARABIC, f"{page.request.method} {page.request.path} is not in Arabic"


def test_the_second_factor_and_organisation_pages_keep_it_too(
    app: Flask, registry: Registry, world: World, clock: FrozenClock
) -> None:
    staff = MfaPerson(app, "staff", PASSWORD, clock=clock)
    url, _ = request_url(app, registry, "openid profile", port=9472)
    staff.go(url)  # enrols an authenticator app (in English)
    assert staff.secret
    organisations = registry.organisations
    account = registry.accounts.by_username("staff")
    assert account is not None
    org = organisations.create(registration_number="CR-1", name="Clinic", name_ar="عيادة", actor="test")
    organisations.grant(org.id, account.id, "owner", by=None, operator="test")

    person = OrganisationPerson(app, "staff", PASSWORD, clock=clock, secret=staff.secret)
    clock.advance(60)  # a new code
    business, _ = request_url(app, registry, "openid profile business", port=9473, ui_locales="ar")
    factor = person.open_page(business, "/signin")
    factor = person.follow(person.sign_in(factor), stop_at="/signin/factor")
    assert not isinstance(factor, str) and factor.request.path == "/signin/factor"
    assert html_tag(factor) == ARABIC
    wrong = person.type_code(factor, "000000" if person.answer() != "000000" else "111111")
    assert wrong.status_code in (400, 401) and html_tag(wrong) == ARABIC

    person.pages.clear()
    location = person._walk(person.answer_factor(wrong), "approve")
    assert isinstance(location, str)
    steps = [page.request.path for page in person.pages]
    assert "/authorize/organisation" in steps and "/consent" in steps, steps
    for page in person.pages:
        assert html_tag(page) == ARABIC, f"{page.request.method} {page.request.path} is not in Arabic"


def test_the_persons_choice_on_a_page_wins_for_the_rest_of_the_request(
    app: Flask, registry: Registry, world: World, clock: FrozenClock
) -> None:
    url, _ = request_url(app, registry, "openid profile", port=9474, ui_locales="ar")
    person = MfaPerson(
        app,
        "citizen",
        PASSWORD,
        clock=clock,
    )
    person.headers["Accept-Language"] = "ar"
    signin = person.open_page(url, "/signin")
    assert html_tag(signin) == ARABIC
    switched = person.follow(person.get(f"/lang/en?next={signin.request.full_path.replace('&', '%26')}"))
    assert not isinstance(switched, str) and html_tag(switched) == ENGLISH

    person.pages.clear()
    person._walk(person.sign_in(switched), "approve")
    assert [page.request.path for page in person.pages] == ["/consent"]
    assert html_tag(person.pages[0]) == ENGLISH
