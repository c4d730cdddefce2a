"""Token revocation (RFC 7009), token introspection (RFC 7662) and the client_credentials grant
(RFC 6749 4.4) with resource indicators (RFC 8707)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from idp.clock import FrozenClock
from idp.errors import InvalidInput
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, PASSWORD, World
from tests.support.agency import Agency, jwt_claims, userinfo_status
from tests.support.audit import audit_events
from tests.support.flask_person import FlaskPerson

OFFLINE = "openid email offline_access"
API = "https://api.example.test"


@pytest.fixture
def person(app: Flask, world: World) -> FlaskPerson:
    """The citizen at a browser."""
    return FlaskPerson(app, "citizen", PASSWORD)


@pytest.fixture
def agency(app: Flask, registry: Registry) -> Agency:
    """A confidential client with refresh tokens."""
    return Agency.register(app, registry, port=9301)


@pytest.fixture
def other(app: Flask, registry: Registry) -> Agency:
    """Another confidential client, which must learn nothing of the first one's tokens."""
    return Agency.register(app, registry, port=9302)


@pytest.fixture
def tokens(agency: Agency, person: FlaskPerson) -> dict[str, Any]:
    """A token response (access, refresh and ID token) for ``agency``."""
    return agency.sign_in(person, OFFLINE)


def assert_revoke_ok(response: TestResponse) -> None:
    # RFC 7009 2.2: 200 whether or not there was anything to revoke.
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"


def assert_error(response: TestResponse, status: int, error: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json is not None and response.json["error"] == error


# -- revocation (RFC 7009) -----------------------------------------------------------------------


def test_revocation_requires_client_authentication(
    app: Flask, agency: Agency, tokens: dict[str, Any]
) -> None:
    response = agency.post("/revoke", {"token": tokens["access_token"]}, secret="not-the-secret")
    assert_error(response, 401, "invalid_client")
    anonymous = app.test_client().post("/revoke", data={"token": tokens["access_token"]})
    assert_error(anonymous, 401, "invalid_client")
    assert userinfo_status(app, tokens["access_token"]) == 200


@BOTH_BACKENDS
def test_a_revoked_access_token_stops_working(
    app: Flask, registry: Registry, agency: Agency, tokens: dict[str, Any]
) -> None:
    assert agency.introspect(tokens["access_token"])["active"] is True
    assert_revoke_ok(agency.revoke(tokens["access_token"], "access_token"))
    assert userinfo_status(app, tokens["access_token"]) == 401
    assert agency.introspect(tokens["access_token"]) == {"active": False}
    revoked = audit_events(registry, "token.revoked")
    assert [event["client_id"] for event in revoked] == [agency.client_id]


@BOTH_BACKENDS
def test_a_revoked_refresh_token_takes_its_family_with_it(
    app: Flask, registry: Registry, agency: Agency, tokens: dict[str, Any]
) -> None:
    rotated = agency.refresh(tokens["refresh_token"]).json
    assert rotated is not None and "refresh_token" in rotated
    assert_revoke_ok(agency.revoke(rotated["refresh_token"], "refresh_token"))

    assert_error(agency.refresh(rotated["refresh_token"]), 400, "invalid_grant")
    assert userinfo_status(app, tokens["access_token"]) == 401
    assert userinfo_status(app, rotated["access_token"]) == 401
    assert agency.introspect(rotated["refresh_token"]) == {"active": False}
    # Revoked is not reused: presenting it afterwards is no alarm.
    assert audit_events(registry, "refresh_token.reused") == []


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
def test_another_clients_token_is_left_alone(
    app: Flask, agency: Agency, other: Agency, tokens: dict[str, Any], kind: str
) -> None:
    assert_revoke_ok(other.revoke(tokens[kind]))
    assert userinfo_status(app, tokens["access_token"]) == 200
    assert agency.refresh(tokens["refresh_token"]).status_code == 200


def test_an_unknown_token_is_200(agency: Agency) -> None:
    assert_revoke_ok(agency.revoke("no-such-token"))
    assert_revoke_ok(agency.revoke("no-such-token", "refresh_token"))


def test_the_token_parameter_is_required(agency: Agency) -> None:
    assert_error(agency.post("/revoke", {}), 400, "invalid_request")


@pytest.mark.parametrize(
    ("kind", "hint"),
    [("access_token", "access_token"), ("access_token", "refresh_token"), ("refresh_token", "access_token")],
)
def test_token_type_hint_is_a_hint(
    app: Flask, agency: Agency, tokens: dict[str, Any], kind: str, hint: str
) -> None:
    # RFC 7009 2.1: a wrong hint only costs the server a second lookup.
    assert_revoke_ok(agency.revoke(tokens[kind], hint))
    if kind == "access_token":
        assert userinfo_status(app, tokens["access_token"]) == 401
    else:
        assert_error(agency.refresh(tokens["refresh_token"]), 400, "invalid_grant")


@pytest.mark.parametrize("hint", ["id_token", "urn:example:unknown", "refresh_token"])
def test_an_unknown_or_wrong_token_type_hint_is_ignored(
    app: Flask, agency: Agency, tokens: dict[str, Any], hint: str
) -> None:
    # RFC 7009 2.1: the hint only helps the search; an unknown (or wrong) one is not an error.
    assert_revoke_ok(agency.revoke(tokens["access_token"], hint))
    assert userinfo_status(app, tokens["access_token"]) == 401


# -- one client authentication method per request (RFC 6749 2.3) ---------------------------------

ASSERTION = {
    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    "client_assertion": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
}


@pytest.mark.parametrize(
    ("body", "basic"),
    [
        ({"client_secret": "SECRET"}, True),
        (ASSERTION, True),
        ({"client_secret": "SECRET", **ASSERTION}, False),
    ],
    ids=["basic+post", "basic+assertion", "post+assertion"],
)
@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect"])
def test_two_authentication_methods_in_one_request_are_invalid_request(
    app: Flask, agency: Agency, tokens: dict[str, Any], path: str, body: dict[str, str], basic: bool
) -> None:
    # Each credential is the client's own and valid: using two at once is still refused.
    assert agency.secret is not None
    form = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "token": tokens["access_token"],
    }
    form |= {k: agency.secret if v == "SECRET" else v for k, v in body.items()}
    form |= {} if basic else {"client_id": agency.client_id}
    response = app.test_client().post(
        path, data=form, auth=(agency.client_id, agency.secret) if basic else None
    )
    assert_error(response, 400, "invalid_request")
    assert "one client authentication method" in response.json["error_description"]  # type: ignore[index]
    assert userinfo_status(app, tokens["access_token"]) == 200  # nothing was revoked
    assert agency.refresh(tokens["refresh_token"]).status_code == 200  # nor the refresh token spent


def test_a_public_client_may_revoke_its_own_tokens(app: Flask, world: World, person: FlaskPerson) -> None:
    public = Agency(app, world.public_id, None, world.public_redirect_uri)
    tokens = public.sign_in(person, "openid email")
    assert userinfo_status(app, tokens["access_token"]) == 200
    assert_revoke_ok(public.revoke(tokens["access_token"]))
    assert userinfo_status(app, tokens["access_token"]) == 401


def test_revocation_refuses_repeated_parameters(app: Flask, agency: Agency, tokens: dict[str, Any]) -> None:
    assert agency.secret is not None
    response = app.test_client().post(
        "/revoke",
        data=f"token={tokens['access_token']}&token=other",
        content_type="application/x-www-form-urlencoded",
        auth=(agency.client_id, agency.secret),
    )
    assert_error(response, 400, "invalid_request")
    assert userinfo_status(app, tokens["access_token"]) == 200


# -- introspection (RFC 7662) --------------------------------------------------------------------


def test_introspection_is_for_confidential_clients_only(
    app: Flask, world: World, agency: Agency, tokens: dict[str, Any]
) -> None:
    public = Agency(app, world.public_id, None, world.public_redirect_uri)
    assert_error(public.post("/introspect", {"token": tokens["access_token"]}), 401, "invalid_client")
    wrong = agency.post("/introspect", {"token": tokens["access_token"]}, secret="not-the-secret")
    assert_error(wrong, 401, "invalid_client")


def test_an_active_access_token_is_described(
    app: Flask, registry: Registry, agency: Agency, tokens: dict[str, Any]
) -> None:
    answer = agency.introspect(tokens["access_token"], "access_token")
    assert answer["active"] is True
    assert answer["token_type"] == "Bearer"
    assert set(answer["scope"].split()) == set(OFFLINE.split())
    assert answer["client_id"] == agency.client_id
    assert answer["sub"] == jwt_claims(tokens["id_token"])["sub"]
    assert answer["iss"] == registry.settings.issuer
    assert answer["exp"] - answer["iat"] == registry.settings.access_token_ttl
    assert answer["iat"] == int(registry.clock.now())


def test_an_expired_access_token_is_inactive(
    registry: Registry, agency: Agency, tokens: dict[str, Any], clock: FrozenClock
) -> None:
    clock.advance(registry.settings.access_token_ttl + 31)
    assert agency.introspect(tokens["access_token"]) == {"active": False}


def test_another_clients_token_is_inactive_to_it(other: Agency, tokens: dict[str, Any]) -> None:
    # RFC 7662 4: a client learns nothing about tokens that are none of its business.
    assert other.introspect(tokens["access_token"]) == {"active": False}
    assert other.introspect(tokens["refresh_token"], "refresh_token") == {"active": False}


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token"])
def test_a_refresh_token_is_described_to_its_client(
    registry: Registry, agency: Agency, tokens: dict[str, Any], hint: str | None
) -> None:
    answer = agency.introspect(tokens["refresh_token"], hint)
    assert answer["active"] is True
    assert answer["token_type"] == "refresh_token"
    assert answer["client_id"] == agency.client_id
    assert set(answer["scope"].split()) == set(OFFLINE.split())
    assert answer["iss"] == registry.settings.issuer
    assert answer["exp"] - answer["iat"] == registry.settings.offline_refresh_ttl


def test_a_rotated_out_refresh_token_is_inactive(agency: Agency, tokens: dict[str, Any]) -> None:
    assert agency.refresh(tokens["refresh_token"]).status_code == 200
    assert agency.introspect(tokens["refresh_token"]) == {"active": False}


@pytest.mark.parametrize("token", ["garbage", "a.b.c", ""])
def test_garbage_is_inactive_or_refused(agency: Agency, token: str) -> None:
    if token:
        assert agency.introspect(token) == {"active": False}
    else:
        assert_error(agency.post("/introspect", {"token": token}), 400, "invalid_request")


# -- client_credentials (RFC 6749 4.4, RFC 8707) -------------------------------------------------


@pytest.fixture
def api_client(app: Flask, registry: Registry) -> Agency:
    """An agency calling another agency's API as itself."""
    return Agency.register(
        app,
        registry,
        port=9310,
        grant_types=("client_credentials",),
        scope="records:read records:write",
        resources=(API,),
    )


def client_credentials(api_client: Agency, **extra: str) -> TestResponse:
    return api_client.post("/token", {"grant_type": "client_credentials", **extra})


def test_client_credentials_token_for_a_registered_scope(
    app: Flask, registry: Registry, api_client: Agency
) -> None:
    response = client_credentials(api_client, scope="records:read")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.json
    assert body is not None and body["scope"] == "records:read" and body["token_type"] == "Bearer"
    assert "refresh_token" not in body and "id_token" not in body
    claims = jwt_claims(body["access_token"])
    assert claims["sub"] == api_client.client_id == claims["client_id"]
    assert claims["scope"] == "records:read"
    assert claims["aud"] == registry.settings.issuer
    # No openid, no person: userinfo has nothing to say.
    assert userinfo_status(app, body["access_token"]) == 401


def test_client_credentials_without_scope_gets_the_registered_api_scopes(api_client: Agency) -> None:
    response = client_credentials(api_client)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json is not None
    assert set(response.json["scope"].split()) == {"records:read", "records:write"}
    assert set(jwt_claims(response.json["access_token"])["scope"].split()) == {
        "records:read",
        "records:write",
    }


@pytest.mark.parametrize("scope", ["records:delete", "records:read records:delete", "openid", "email"])
def test_client_credentials_refuses_unregistered_or_personal_scopes(api_client: Agency, scope: str) -> None:
    assert_error(client_credentials(api_client, scope=scope), 400, "invalid_scope")


def test_client_credentials_for_a_registered_resource(app: Flask, api_client: Agency) -> None:
    response = client_credentials(api_client, scope="records:write", resource=API)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json is not None
    access_token = response.json["access_token"]
    assert jwt_claims(access_token)["aud"] == API
    answer = api_client.introspect(access_token)
    assert answer["active"] is True and answer["aud"] == API and answer["sub"] == api_client.client_id
    assert userinfo_status(app, access_token) == 401


@pytest.mark.parametrize(
    "resource", ["https://other.example.test", "https://api.example.test/sub", "nonsense"]
)
def test_client_credentials_refuses_an_unregistered_resource(api_client: Agency, resource: str) -> None:
    response = client_credentials(api_client, scope="records:read", resource=resource)
    assert_error(response, 400, "invalid_target")
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "resource",
    [
        "http://localhost:8000",
        "http://localhost:8000/",
        "http://localhost:8000/introspect",
        "http://localhost:8000/userinfo",
        "HTTP://LOCALHOST:8000/token",
    ],
)
def test_a_resource_on_the_idp_itself_is_refused_at_registration(registry: Registry, resource: str) -> None:
    """Tokens for userinfo carry the issuer as ``aud``: a client registered with the issuer (or any
    IdP URL) as its resource could introspect every other client's access tokens."""
    with pytest.raises(InvalidInput, match="identity provider"):
        registry.clients.create(
            name="Introspector", redirect_uris=[], grant_types=("client_credentials",), scope="records:read",
            resources=[resource],
        )  # fmt: skip
    assert registry.clients.list() == []


def test_an_api_beside_the_idp_on_another_origin_is_a_resource(registry: Registry) -> None:
    for resource in ("http://localhost:8001", "https://localhost:8000", "https://api.example.test/v1"):
        registry.clients.create(
            name="Records", redirect_uris=[], grant_types=("client_credentials",), scope="records:read",
            resources=[resource],
        )  # fmt: skip


def test_client_credentials_needs_the_grant_and_a_secret(agency: Agency, api_client: Agency) -> None:
    assert_error(client_credentials(agency), 400, "unauthorized_client")
    response = api_client.post("/token", {"grant_type": "client_credentials"}, secret="not-the-secret")
    assert_error(response, 401, "invalid_client")


def test_a_public_client_cannot_be_registered_for_client_credentials(registry: Registry) -> None:
    with pytest.raises(InvalidInput):
        registry.clients.create(
            name="Public Robot", redirect_uris=[], auth_method="none", grant_types=["client_credentials"]
        )


def test_a_client_credentials_token_can_be_revoked(app: Flask, api_client: Agency) -> None:
    response = client_credentials(api_client, resource=API)
    assert response.json is not None
    access_token = response.json["access_token"]
    assert_revoke_ok(api_client.revoke(access_token))
    assert api_client.introspect(access_token) == {"active": False}
