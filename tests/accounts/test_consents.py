"""The account area shows which services receive the person's information, in the consent page's
own words, and lets the person withdraw any consent: the record goes, the service's refresh tokens
(offline access included) and the access tokens they issued die, the withdrawal is audited, and the
service has to ask again."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from idp.clock import FrozenClock
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS
from tests.support.agency import Agency, userinfo_status
from tests.support.audit import audit_events
from tests.support.mfa import MfaPerson, open_account, submit
from tests.support.person import hidden_fields

OFFLINE = "openid profile email offline_access"


@pytest.fixture
def agency(app: Flask, registry: Registry) -> Agency:
    """A confidential client registered for authorization_code + refresh_token and offline_access."""
    return Agency.register(app, registry, port=9102)


def _consents_section(html: str) -> str:
    found = re.search(r'<ul class="consents" id="consents">(.*?)</ul>\s*<p class="muted">', html, re.S)
    assert found, "no consents listed"
    return found.group(1)


def test_a_person_without_consents_is_told_so(citizen: MfaPerson) -> None:
    html = open_account(citizen).get_data(as_text=True)
    assert "You have not allowed any service to receive your information." in html


@BOTH_BACKENDS
def test_withdrawing_a_consent_revokes_what_the_service_holds(
    app: Flask, registry: Registry, agency: Agency, citizen: MfaPerson
) -> None:
    tokens = agency.sign_in(citizen, OFFLINE)
    assert userinfo_status(app, tokens["access_token"]) == 200

    page = open_account(citizen)
    listed = _consents_section(page.get_data(as_text=True))
    assert "Your name, date of birth and language" in listed
    assert "Your email address" in listed
    assert "Access while you are signed out" in listed

    action = f"/account/consents/{agency.client_id}/withdraw"
    done = submit(citizen, page, action)
    assert done.status_code == 303 and done.headers["Location"].endswith("/account?done=withdrawn")

    after = citizen.get("/account").get_data(as_text=True)
    assert "You have not allowed any service to receive your information." in after
    assert agency.refresh(tokens["refresh_token"]).status_code == 400
    assert userinfo_status(app, tokens["access_token"]) == 401
    [event] = audit_events(registry, "consent.withdrawn")
    assert event["client_id"] == agency.client_id
    assert event["detail"]["refresh_families_revoked"] == 1

    # The service has to ask again.
    seen = len(citizen.pages)
    agency.sign_in(citizen, OFFLINE)
    assert "/consent" in [page.request.path for page in citizen.pages[seen:]]


def test_withdrawing_needs_a_recent_sign_in_and_a_csrf_token(
    app: Flask, registry: Registry, agency: Agency, citizen: MfaPerson, clock: FrozenClock
) -> None:
    agency.sign_in(citizen, OFFLINE)
    page = open_account(citizen)
    action = f"/account/consents/{agency.client_id}/withdraw"
    assert citizen.post(action, {}).status_code == 400  # no CSRF token
    clock.advance(registry.settings.reauth_max_age + 1)
    stale = submit(citizen, page, action)
    assert stale.status_code == 303 and stale.headers["Location"].endswith("/account/reauth")
    assert audit_events(registry, "consent.withdrawn") == []


def test_withdrawing_an_unknown_consent_changes_nothing(registry: Registry, citizen: MfaPerson) -> None:
    token = hidden_fields(open_account(citizen).get_data(as_text=True))["csrf_token"]
    done = citizen.post("/account/consents/no-such-client/withdraw", {"csrf_token": token})
    assert done.status_code == 303
    assert audit_events(registry, "consent.withdrawn") == []
