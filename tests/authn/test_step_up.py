"""Step-up: an agency that needs more than the session's level gets the person asked for the missing
factor only (never the password again), or an error when it cannot be reached (OIDC Core 3.1.2.1,
5.5.1.1; OpenID Connect Core Error Code unmet_authentication_requirements)."""

from __future__ import annotations

import json

import pytest
from flask import Flask

from idp.clock import FrozenClock
from idp.oidc.acr import requirement
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, PASSWORD, World
from tests.support.audit import audit_events
from tests.support.mfa import MfaPerson, Rp, add_app_in_account

LOW = "urn:hawiya:loa:low"
SUBSTANTIAL = "urn:hawiya:loa:substantial"
HIGH = "urn:hawiya:loa:high"


def _paths(person: MfaPerson) -> list[str]:
    return [page.request.path for page in person.pages]


@pytest.fixture
def at_low(citizen: MfaPerson, rp: Rp, clock: FrozenClock) -> dict[str, object]:
    """The citizen signed in with her password only (level low) at the agency; then, in the same
    session, she adds an authenticator app in her account. Her session stays at low."""
    first = rp.id_token(citizen.go(rp.url("first")), "first")
    assert (first["acr"], first["amr"]) == (LOW, ["pwd"])
    add_app_in_account(citizen)
    clock.advance(120)
    citizen.pages.clear()
    return first


@BOTH_BACKENDS
def test_step_up_asks_only_for_the_code(
    citizen: MfaPerson, rp: Rp, at_low: dict[str, object], registry: Registry
) -> None:
    claims = rp.id_token(citizen.go(rp.url("up", acr_values=SUBSTANTIAL)), "up")
    assert _paths(citizen) == ["/signin/factor"]
    assert not any('name="password"' in page.get_data(as_text=True) for page in citizen.pages)
    assert claims["acr"] == SUBSTANTIAL
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["sid"] == at_low["sid"]  # the same session, raised in place
    assert claims["auth_time"] == at_low["auth_time"]  # still the password that started it
    (stepped,) = audit_events(registry, "session.stepped_up")
    assert stepped["detail"]["from"] == LOW and stepped["detail"]["to"] == SUBSTANTIAL
    # The session stays raised: the next agency request needs nothing more.
    citizen.pages.clear()
    again = rp.id_token(citizen.go(rp.url("again", acr_values=SUBSTANTIAL)), "again")
    assert citizen.pages == [] and again["acr"] == SUBSTANTIAL and again["sid"] == at_low["sid"]


def test_step_up_page_names_the_agency(citizen: MfaPerson, rp: Rp, at_low: dict[str, object]) -> None:
    page = citizen.open_page(rp.url("up", acr_values=SUBSTANTIAL), "/signin/factor")
    html = page.get_data(as_text=True)
    assert "Ministry of Health needs a stronger sign-in" in html
    assert 'name="password"' not in html


def test_essential_acr_claim_steps_up(citizen: MfaPerson, rp: Rp, at_low: dict[str, object]) -> None:
    claims_request = json.dumps({"id_token": {"acr": {"essential": True, "values": [SUBSTANTIAL, HIGH]}}})
    claims = rp.id_token(citizen.go(rp.url("up", claims=claims_request)), "up")
    assert _paths(citizen) == ["/signin/factor"]
    assert claims["acr"] == SUBSTANTIAL


def test_prompt_none_needing_a_step_up_is_interaction_required(
    citizen: MfaPerson, rp: Rp, at_low: dict[str, object]
) -> None:
    response = citizen.get(rp.url("up", acr_values=SUBSTANTIAL, prompt="none"))
    params = rp.back(response.location or "", "up")
    assert params["error"] == "interaction_required" and "code" not in params


@BOTH_BACKENDS
def test_high_cannot_be_reached_yet(citizen: MfaPerson, rp: Rp, at_low: dict[str, object]) -> None:
    response = citizen.get(rp.url("up", acr_values=HIGH))
    params = rp.back(response.location or "", "up")  # checks iss (RFC 9207) and state
    assert params["error"] == "unmet_authentication_requirements" and "code" not in params


def test_high_in_form_post_mode_carries_iss(citizen: MfaPerson, rp: Rp, at_low: dict[str, object]) -> None:
    answer = citizen.authorize(rp.url("up", acr_values=HIGH, response_mode="form_post"))
    assert answer.mode == "form_post"
    assert answer.params["error"] == ["unmet_authentication_requirements"]
    assert answer.params["iss"] == [rp.registry.settings.issuer]


def test_no_factor_means_substantial_is_unmet(citizen: MfaPerson, rp: Rp) -> None:
    location = citizen.go(rp.url(acr_values=SUBSTANTIAL))
    assert rp.back(location)["error"] == "unmet_authentication_requirements"


def test_a_listed_level_the_session_meets_needs_nothing(
    citizen: MfaPerson, rp: Rp, at_low: dict[str, object]
) -> None:
    # acr_values is a preference list: low is acceptable, and the session is at low.
    claims = rp.id_token(citizen.go(rp.url("pref", acr_values=f"{SUBSTANTIAL} {LOW}")), "pref")
    assert citizen.pages == [] and claims["acr"] == LOW


def test_essential_acr_naming_no_hawiya_level_is_unmet(citizen: MfaPerson, rp: Rp) -> None:
    claims_request = json.dumps({"id_token": {"acr": {"essential": True, "value": "urn:other:gold"}}})
    location = citizen.go(rp.url(claims=claims_request))
    assert rp.back(location)["error"] == "unmet_authentication_requirements"


@BOTH_BACKENDS
def test_client_minimum_is_enforced(app: Flask, registry: Registry, world: World, clock: FrozenClock) -> None:
    strict = registry.clients.create(
        name="Tax Authority",
        redirect_uris=["http://127.0.0.1:9050/callback"],
        min_acr=SUBSTANTIAL,
    )
    assert strict.client_secret is not None
    tax = Rp(app, registry, strict.client.client_id, strict.client_secret, "http://127.0.0.1:9050/callback")
    # A person with no factor cannot sign in there at all.
    resident = MfaPerson(app, "resident", PASSWORD, clock=clock)
    assert tax.back(resident.go(tax.url()))["error"] == "unmet_authentication_requirements"
    # A person with one is asked for it, even though the request itself asks for nothing.
    citizen = MfaPerson(app, "citizen", PASSWORD, clock=clock)
    citizen.go(Rp.of_world(app, world).url())
    add_app_in_account(citizen)
    clock.advance(120)
    citizen.pages.clear()
    claims = tax.id_token(citizen.go(tax.url()))
    assert _paths(citizen) == ["/signin/factor"]  # the code, and no password page
    assert claims["acr"] == SUBSTANTIAL


@pytest.mark.parametrize(
    ("acr_values", "essential", "minimums", "expected"),
    [
        (None, [], (), (None, True)),
        ("1 2", [], (), (None, True)),
        (LOW, [], (), (LOW, True)),
        (f"{HIGH} {SUBSTANTIAL}", [], (), (SUBSTANTIAL, True)),
        (f"{SUBSTANTIAL} {LOW}", [], (), (LOW, True)),
        (LOW, [], (SUBSTANTIAL,), (SUBSTANTIAL, True)),
        (None, [HIGH], (None, SUBSTANTIAL), (HIGH, True)),
        (None, ["gold"], (), (None, False)),
        (HIGH, [LOW, "gold"], (), (HIGH, True)),
    ],
)
def test_requirement_rules(
    acr_values: str | None,
    essential: list[str],
    minimums: tuple[str | None, ...],
    expected: tuple[object, bool],
) -> None:
    found = requirement(acr_values=acr_values, essential=essential, minimums=minimums)
    assert (found.level, found.satisfiable) == expected


# -- the factor page offers only what can reach the level asked -----------------------------------
