"""Refresh tokens (RFC 6749 6; RFC 9700 4.14): rotation on every use,
reuse detection that kills the whole family, client binding, scope narrowing, and the rule that a
token issued without ``offline_access`` lives only as long as the SSO session."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, PASSWORD, World
from tests.support.agency import Agency, sso_handle, userinfo_status
from tests.support.audit import audit_events
from tests.support.flask_person import FlaskPerson

OFFLINE = "openid profile email offline_access"


@pytest.fixture
def agency(app: Flask, registry: Registry) -> Agency:
    """A confidential client registered for authorization_code + refresh_token and offline_access."""
    return Agency.register(app, registry, port=9101)


@pytest.fixture
def person(app: Flask, world: World) -> FlaskPerson:
    """The citizen at a browser."""
    return FlaskPerson(app, "citizen", PASSWORD)


def assert_refused(response: TestResponse, error: str = "invalid_grant") -> None:
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json is not None and response.json["error"] == error
    assert "access_token" not in response.json and "refresh_token" not in response.json
    assert response.headers["Cache-Control"] == "no-store"


def refreshed(response: TestResponse) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json is not None
    return response.json


@BOTH_BACKENDS
def test_every_use_rotates_and_the_spent_token_is_refused(
    app: Flask, agency: Agency, person: FlaskPerson
) -> None:
    first = agency.sign_in(person, OFFLINE)
    seen = {first["refresh_token"]}
    current = first
    for _ in range(3):
        current = refreshed(agency.refresh(current["refresh_token"]))
        assert current["refresh_token"] not in seen, "a refresh must rotate the refresh token"
        assert current["token_type"] == "Bearer"
        assert set(current["scope"].split()) == set(OFFLINE.split())
        assert userinfo_status(app, current["access_token"]) == 200
        seen.add(current["refresh_token"])
    assert_refused(agency.refresh(first["refresh_token"]))


@BOTH_BACKENDS
def test_reuse_of_a_spent_token_revokes_the_whole_family(
    app: Flask, registry: Registry, agency: Agency, person: FlaskPerson
) -> None:
    first = agency.sign_in(person, OFFLINE)
    second = refreshed(agency.refresh(first["refresh_token"]))
    third = refreshed(agency.refresh(second["refresh_token"]))
    access_tokens = [first["access_token"], second["access_token"], third["access_token"]]
    assert [userinfo_status(app, token) for token in access_tokens] == [200, 200, 200]
    assert audit_events(registry, "refresh_token.reused") == []

    # The second token was rotated out; it coming back means someone kept a copy.
    assert_refused(agency.refresh(second["refresh_token"]))

    assert_refused(agency.refresh(third["refresh_token"]))  # the newest one dies with its family
    assert [userinfo_status(app, token) for token in access_tokens] == [401, 401, 401]
    assert [agency.introspect(token)["active"] for token in access_tokens] == [False, False, False]
    assert agency.introspect(third["refresh_token"], "refresh_token") == {"active": False}
    reused = audit_events(registry, "refresh_token.reused")
    assert len(reused) == 1
    assert reused[0]["client_id"] == agency.client_id


@BOTH_BACKENDS
def test_a_family_revoked_for_reuse_does_not_touch_other_families(
    app: Flask, agency: Agency, person: FlaskPerson
) -> None:
    stolen = agency.sign_in(person, OFFLINE)
    other = agency.sign_in(person, OFFLINE)
    refreshed(agency.refresh(stolen["refresh_token"]))
    assert_refused(agency.refresh(stolen["refresh_token"]))

    assert userinfo_status(app, other["access_token"]) == 200
    refreshed(agency.refresh(other["refresh_token"]))


def test_a_refresh_token_works_only_for_its_client(
    app: Flask, registry: Registry, agency: Agency, person: FlaskPerson
) -> None:
    tokens = agency.sign_in(person, OFFLINE)
    thief = Agency.register(app, registry, port=9102)
    assert_refused(thief.refresh(tokens["refresh_token"]))
    # The other client's attempt leaves the token untouched: its owner's next use is no "reuse".
    assert "refresh_token" in refreshed(agency.refresh(tokens["refresh_token"]))
    assert audit_events(registry, "refresh_token.reused") == []


def test_a_narrower_scope_may_be_asked_for_a_wider_one_is_refused(
    app: Flask, agency: Agency, person: FlaskPerson
) -> None:
    tokens = agency.sign_in(person, "openid email offline_access")

    narrower = refreshed(agency.refresh(tokens["refresh_token"], scope="openid"))
    assert narrower["scope"] == "openid"
    info = app.test_client().get("/userinfo", headers={"Authorization": f"Bearer {narrower['access_token']}"})
    assert info.json is not None and "email" not in info.json

    # RFC 6749 6: a scope not originally granted is refused, even one the client registered.
    assert_refused(agency.refresh(narrower["refresh_token"], scope="openid email profile"), "invalid_scope")

    # Omitting scope means the scope originally granted, not the narrowed one (RFC 6749 6).
    again = refreshed(agency.refresh(narrower["refresh_token"]))
    assert set(again["scope"].split()) == {"openid", "email", "offline_access"}


def test_a_refused_refresh_does_not_spend_the_token(
    app: Flask, registry: Registry, agency: Agency, person: FlaskPerson
) -> None:
    tokens = agency.sign_in(person, OFFLINE)
    assert_refused(agency.refresh(tokens["refresh_token"], scope="openid phone"), "invalid_scope")
    assert_refused(
        agency.refresh(tokens["refresh_token"], resource="https://elsewhere.test"), "invalid_target"
    )
    # Had either refusal spent it, this would be a reuse that kills the family.
    refreshed(agency.refresh(tokens["refresh_token"]))
    assert audit_events(registry, "refresh_token.reused") == []


@BOTH_BACKENDS
def test_without_offline_access_the_token_dies_with_the_sso_session(
    app: Flask, registry: Registry, agency: Agency, person: FlaskPerson
) -> None:
    session_bound = agency.sign_in(person, "openid email")
    offline = agency.sign_in(person, OFFLINE)
    assert "refresh_token" in session_bound, "the SSO session lives, so a refresh token is issued"
    session_bound = refreshed(agency.refresh(session_bound["refresh_token"]))

    registry.sessions.end(sso_handle(person))

    assert agency.introspect(session_bound["refresh_token"]) == {"active": False}
    assert_refused(agency.refresh(session_bound["refresh_token"]))
    survivor = refreshed(agency.refresh(offline["refresh_token"]))
    assert "refresh_token" in survivor
    refreshed(agency.refresh(survivor["refresh_token"]))


def test_no_refresh_token_without_offline_access_once_the_session_has_ended(
    registry: Registry, agency: Agency, person: FlaskPerson
) -> None:
    code, verifier = agency.authorize(person, "openid email")
    registry.sessions.end(sso_handle(person))
    response = agency.redeem(code, verifier)
    assert response.status_code == 200
    assert response.json is not None and "refresh_token" not in response.json


def test_no_refresh_token_for_a_client_without_the_refresh_token_grant(
    app: Flask, registry: Registry, person: FlaskPerson
) -> None:
    code_only = Agency.register(app, registry, port=9103, grant_types=("authorization_code",))
    tokens = code_only.sign_in(person, OFFLINE)
    assert "access_token" in tokens and "refresh_token" not in tokens
    assert_refused(code_only.refresh("whatever-it-may-be"), "unauthorized_client")


def test_unknown_refresh_token_is_invalid_grant_and_not_a_reuse(registry: Registry, agency: Agency) -> None:
    assert_refused(agency.refresh("no-such-refresh-token"))
    assert audit_events(registry, "refresh_token.reused") == []
