"""Values that come in are checked before anything reads them (issue 17, "Inbound values").

- JSON from a request (``claims``, a client assertion's payload) is bounded in size and depth:
  a value nested 1,200 levels deep is ``invalid_request``, never a ``RecursionError``.
- Identifiers (client ids, usernames) that no client or account could have never reach a query: on
  PostgreSQL a NUL in one was a server error (psycopg refuses it).
- Scopes: a value outside RFC 6749 3.3's syntax, or a scope Hawiya knows that the client did not
  register, is ``invalid_scope``; values Hawiya does not understand are ignored (OIDC Core 3.1.2.1).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from idp.errors import InvalidInput, NotFound
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, PASSWORD, World
from tests.support.agency import Agency
from tests.support.flask_person import FlaskPerson, pkce_pair, query_of
from tests.support.person import hidden_fields

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
NUL = "moh\x00client"
DEEP_ARRAY = "[" * 1200 + "]" * 1200


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _assertion(payload: str) -> str:
    return _b64(b'{"alg":"RS256"}') + "." + _b64(payload.encode()) + "." + _b64(b"signature")


def _authorize(world: World, **params: str) -> dict[str, str]:
    _verifier, challenge = pkce_pair()
    return {
        "response_type": "code",
        "client_id": world.confidential_id,
        "redirect_uri": world.redirect_uri,
        "scope": "openid",
        "state": "st",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **params,
    }


def _redirected_error(response: TestResponse, world: World) -> dict[str, str]:
    """The error an /authorize response sent back to the (verified) redirect URI."""
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    location = response.headers["Location"]
    assert location.startswith(world.redirect_uri + "?"), location
    params = {key: values[0] for key, values in query_of(location).items()}
    assert params["state"] == "st"
    return params


def _json_error(response: TestResponse, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.json is not None and response.json["error"] == error, response.json
    return response.json


def _invalid_client(response: TestResponse) -> None:
    # RFC 6749 5.2: 401 where the client may authenticate with HTTP Basic, else 400.
    assert response.status_code in (400, 401), response.get_data(as_text=True)[:500]
    assert response.json is not None and response.json["error"] == "invalid_client", response.json


# -- deep JSON (item 1) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "claims",
    [DEEP_ARRAY, '{"userinfo": {"email": ' + DEEP_ARRAY + "}}", '{"id_token":' * 1200 + "{}" + "}" * 1200],
    ids=["array", "inside-a-claim", "objects"],
)
def test_a_deeply_nested_claims_parameter_is_invalid_request(app: Flask, world: World, claims: str) -> None:
    response = app.test_client().get("/authorize", query_string=_authorize(world, claims=claims))
    error = _redirected_error(response, world)
    assert error["error"] == "invalid_request"
    assert "nested too deeply" in error["error_description"]


def test_a_client_assertion_with_a_deeply_nested_payload_is_invalid_request(app: Flask, world: World) -> None:
    payload = '{"iss": "x", "n": ' + DEEP_ARRAY + "}"
    response = app.test_client().post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": _assertion(payload),
        },
    )
    body = _json_error(response, 400, "invalid_request")
    assert "nested too deeply" in body["error_description"]


def test_a_huge_client_assertion_is_invalid_request(app: Flask, world: World) -> None:
    response = app.test_client().post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": _assertion(json.dumps({"iss": "x", "pad": "a" * 40_000})),
        },
    )
    assert "too large" in _json_error(response, 400, "invalid_request")["error_description"]


def test_a_shallow_claims_request_still_works(app: Flask, world: World) -> None:
    claims = json.dumps({"userinfo": {"email": {"essential": True}}, "id_token": {"acr": {"values": ["x"]}}})
    response = app.test_client().get("/authorize", query_string=_authorize(world, claims=claims))
    assert response.status_code == 302 and "/signin" in response.headers["Location"]


# -- identifiers no client or account could have (item 2) ----------------------------------------


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@BOTH_BACKENDS
@pytest.mark.parametrize(
    "client_id", [NUL, "x" * 10_000, "moh client", "مرحبا", "moh\n"], ids=lambda value: repr(value[:12])
)
def test_a_client_id_no_client_could_have_is_refused_without_a_server_error(
    app: Flask, world: World, client_id: str
) -> None:
    client = app.test_client()
    for page in (
        client.get("/authorize", query_string=_authorize(world, client_id=client_id)),
        client.post("/authorize", data=_authorize(world, client_id=client_id)),
    ):
        assert page.status_code == 400 and "Location" not in page.headers, page.status_code
        assert "invalid_client" in page.get_data(as_text=True)
    cc = {"grant_type": "client_credentials"}
    _invalid_client(client.post("/token", data=cc, headers=_basic(client_id, "s")))
    _json_error(
        client.post("/token", data={**cc, "client_id": client_id, "client_secret": "s"}),
        400,
        "invalid_client",
    )
    code = {
        "grant_type": "authorization_code",
        "code": "c",
        "code_verifier": "v" * 43,
        "client_id": client_id,
    }
    _invalid_client(client.post("/token", data=code))
    assertion = {
        **cc,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": _assertion(json.dumps({"iss": client_id})),
    }
    _invalid_client(client.post("/token", data=assertion))
    for path in ("/revoke", "/introspect"):
        _invalid_client(client.post(path, data={"token": "t", "client_id": client_id}))
        _json_error(
            client.post(path, data={"token": "t"}, headers=_basic(client_id, "s")), 401, "invalid_client"
        )
    logout = client.get("/logout", query_string={"client_id": client_id})
    assert logout.status_code == 400


@BOTH_BACKENDS
@pytest.mark.parametrize(
    "username",
    ["citizen\x00", "a\x00b", "x" * 10_000, "citi zen", "citizen\u202e"],
    ids=lambda value: repr(value[:12]),
)
def test_a_username_no_account_could_have_is_a_clear_400_page(
    app: Flask, world: World, username: str
) -> None:
    person = FlaskPerson(app, "citizen", PASSWORD)
    page = person.browser.get("/signin")
    fields = hidden_fields(page.get_data(as_text=True))
    response = person.browser.post("/signin", data={**fields, "username": username, "password": PASSWORD})
    assert response.status_code == 400, response.status_code
    html = response.get_data(as_text=True)
    assert 'id="signin-error"' in html and ". _ @ + -" in html  # the message, in either language
    assert "\x00" not in html


# -- scopes (item 4) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "said"),
    [
        ("openid identity", "not registered for the scope identity"),
        ("openid offline_access", "not registered for the scope offline_access"),
        ("openid records:write", "not registered for the scope records:write"),
        ('openid "email', "RFC 6749 3.3"),
        ("openid\temail", "RFC 6749 3.3"),
        ("openid e\\mail", "RFC 6749 3.3"),
        ("openid émail", "RFC 6749 3.3"),
    ],
)
def test_a_scope_the_client_may_not_ask_for_is_invalid_scope_at_its_redirect_uri(
    app: Flask, world: World, scope: str, said: str
) -> None:
    # RFC 6749 4.1.2.1: the client and redirect URI are verified, so the error goes back there
    # (before anyone signs in): the agency learns its scope was refused instead of losing it.
    response = app.test_client().get("/authorize", query_string=_authorize(world, scope=scope))
    error = _redirected_error(response, world)
    assert error["error"] == "invalid_scope" and said in error["error_description"], error


def test_a_scope_value_hawiya_does_not_understand_is_ignored(app: Flask, world: World) -> None:
    # OIDC Core 3.1.2.1: scope values the server does not understand are ignored.
    person = FlaskPerson(app, "citizen", PASSWORD)
    agency = Agency(app, world.confidential_id, world.confidential_secret, world.redirect_uri)
    tokens = agency.sign_in(person, "openid email something_else")
    assert tokens["scope"].split() == ["openid", "email"]


@pytest.fixture
def machine(app: Flask, registry: Registry) -> Agency:
    """A client_credentials client registered for one API scope."""
    return Agency.register(
        app, registry, port=9501, grant_types=("client_credentials",), scope="records:read"
    )


@pytest.mark.parametrize(
    ("scope", "said"),
    [("records:write", "records:write"), ('records:read "x', "RFC 6749 3.3"), ("openid", "openid")],
)
def test_client_credentials_refuses_a_scope_it_did_not_register(
    machine: Agency, scope: str, said: str
) -> None:
    response = machine.post("/token", {"grant_type": "client_credentials", "scope": scope})
    assert said in _json_error(response, 400, "invalid_scope")["error_description"]


@pytest.mark.parametrize("scope", ["openid email offline_access phone", 'openid "email'])
def test_a_refresh_refuses_a_scope_not_granted_or_malformed(app: Flask, world: World, scope: str) -> None:
    agency = Agency.register(app, world.registry, port=9502)
    tokens = agency.sign_in(FlaskPerson(app, "citizen", PASSWORD), "openid email offline_access")
    _json_error(agency.refresh(tokens["refresh_token"], scope=scope), 400, "invalid_scope")
    assert agency.refresh(tokens["refresh_token"]).status_code == 200  # the refusal spent nothing


def test_the_error_page_url_never_carries_the_refused_scope_to_an_unverified_uri(
    app: Flask, world: World
) -> None:
    query = _authorize(world, scope="openid identity", redirect_uri="http://127.0.0.1:9999/evil")
    response = app.test_client().get("/authorize", query_string=query)
    assert response.status_code == 400 and "Location" not in response.headers


@BOTH_BACKENDS
@pytest.mark.parametrize("value", [NUL, "x" * 1000, "amal\n", "a b"], ids=lambda value: repr(value[:12]))
def test_every_service_look_up_names_nothing_by_a_value_no_identifier_could_be(
    registry: Registry, world: World, value: str
) -> None:
    # The services check before the query: the console, the CLI and the pages all go through them.
    assert registry.clients.active(value) is None
    assert registry.accounts.find(value) is None and registry.accounts.by_username(value) is None
    assert registry.accounts.signin_record(value) is None
    assert registry.organisations.find(value) is None
    for refused in (
        lambda: registry.clients.show(value),
        lambda: registry.clients.disable(value),
        lambda: registry.accounts.get(value),
        lambda: registry.organisations.get(value),
        lambda: registry.keystore.revoke(value, reason="test"),
    ):
        with pytest.raises(NotFound):
            refused()
    with pytest.raises(InvalidInput):
        registry.clients.create(name="Odd", redirect_uris=[world.redirect_uri], client_id=value)
