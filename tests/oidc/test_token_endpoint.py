"""The token endpoint (RFC 6749 3.2, 4.1.3, 5.2) and UserInfo (OIDC Core 5.3, RFC 6750 3)."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from idp.clock import FrozenClock
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, PASSWORD, World
from tests.support.agency import userinfo_status
from tests.support.audit import audit_events
from tests.support.flask_person import FlaskPerson, authorize_url, pkce_pair, query_of

OTHER_REDIRECT = "http://127.0.0.1:9003/callback"


def issue_code(app: Flask, client_id: str, redirect_uri: str, scope: str = "openid email") -> tuple[str, str]:
    """Sign in and consent for ``client_id``; return (code, code_verifier)."""
    verifier, challenge = pkce_pair()
    back = FlaskPerson(app, "citizen", PASSWORD).go(
        authorize_url(
            response_type="code",
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            state="s-1",
            code_challenge=challenge,
            code_challenge_method="S256",
        )
    )
    assert back.startswith(redirect_uri + "?"), back
    return query_of(back)["code"][0], verifier


def redeem(
    app: Flask,
    code: str,
    verifier: str,
    redirect_uri: str,
    *,
    auth: tuple[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> TestResponse:
    """POST the code to /token, authenticating with HTTP Basic (``auth``) and/or ``form`` fields."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        **(form or {}),
    }
    return app.test_client().post("/token", data=data, auth=auth)


def confidential_auth(world: World) -> tuple[str, str]:
    return (world.confidential_id, world.confidential_secret)


def assert_token_error(response: TestResponse, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.json
    assert body is not None and body["error"] == error
    assert "access_token" not in body and "id_token" not in body
    assert response.headers["Cache-Control"] == "no-store"
    return body


@pytest.fixture
def tokens(app: Flask, world: World) -> dict[str, Any]:
    """A token response for the confidential client."""
    code, verifier = issue_code(app, world.confidential_id, world.redirect_uri)
    response = redeem(app, code, verifier, world.redirect_uri, auth=confidential_auth(world))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json is not None
    return response.json


# -- client authentication -------------------------------------------------------------------------


def test_confidential_client_gets_tokens_with_no_store(app: Flask, world: World) -> None:
    code, verifier = issue_code(app, world.confidential_id, world.redirect_uri)
    response = redeem(app, code, verifier, world.redirect_uri, auth=confidential_auth(world))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body is not None
    assert body["token_type"] == "Bearer"
    assert {"access_token", "id_token", "expires_in"} <= body.keys()


def test_wrong_client_secret_is_401_with_basic_challenge(
    app: Flask, registry: Registry, world: World
) -> None:
    code, verifier = issue_code(app, world.confidential_id, world.redirect_uri)
    response = redeem(app, code, verifier, world.redirect_uri, auth=(world.confidential_id, "wrong-secret"))
    assert_token_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    failures = audit_events(registry, "client.auth_failed")
    assert len(failures) == 1 and "wrong-secret" not in repr(failures)


def test_unknown_client_is_invalid_client(app: Flask, world: World) -> None:
    code, verifier = issue_code(app, world.confidential_id, world.redirect_uri)
    response = redeem(app, code, verifier, world.redirect_uri, auth=("no-such-client", "whatever"))
    assert_token_error(response, 401, "invalid_client")


def test_confidential_client_without_credentials_is_refused(app: Flask, world: World) -> None:
    code, verifier = issue_code(app, world.confidential_id, world.redirect_uri)
    # Only the client_id, as a public client would send it: a confidential client must authenticate.
    response = redeem(app, code, verifier, world.redirect_uri, form={"client_id": world.confidential_id})
    body = response.json
    assert response.status_code in (400, 401)
    assert body is not None and body["error"] == "invalid_client"


def test_client_secret_post_works_for_a_client_registered_with_it(
    app: Flask, registry: Registry, world: World
) -> None:
    new = registry.clients.create(
        name="Post Agency", redirect_uris=[OTHER_REDIRECT], auth_method="client_secret_post"
    )
    assert new.client_secret is not None
    client_id = new.client.client_id
    code, verifier = issue_code(app, client_id, OTHER_REDIRECT)
    response = redeem(
        app, code, verifier, OTHER_REDIRECT, form={"client_id": client_id, "client_secret": new.client_secret}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json and "access_token" in response.json


def test_client_secret_post_client_cannot_use_basic(app: Flask, registry: Registry, world: World) -> None:
    new = registry.clients.create(
        name="Post Agency", redirect_uris=[OTHER_REDIRECT], auth_method="client_secret_post"
    )
    assert new.client_secret is not None
    code, verifier = issue_code(app, new.client.client_id, OTHER_REDIRECT)
    response = redeem(app, code, verifier, OTHER_REDIRECT, auth=(new.client.client_id, new.client_secret))
    assert response.status_code == 401
    assert response.json and response.json["error"] == "invalid_client"


def test_basic_client_cannot_use_post(app: Flask, world: World) -> None:
    code, verifier = issue_code(app, world.confidential_id, world.redirect_uri)
    response = redeem(
        app,
        code,
        verifier,
        world.redirect_uri,
        form={"client_id": world.confidential_id, "client_secret": world.confidential_secret},
    )
    assert response.status_code in (400, 401)
    assert response.json and response.json["error"] == "invalid_client"
    assert "access_token" not in response.json


def test_disabled_client_cannot_get_tokens(app: Flask, registry: Registry, world: World) -> None:
    code, verifier = issue_code(app, world.confidential_id, world.redirect_uri)
    registry.clients.disable(world.confidential_id)
    response = redeem(app, code, verifier, world.redirect_uri, auth=confidential_auth(world))
    assert response.status_code in (400, 401)
    assert response.json and response.json["error"] == "invalid_client"
    assert "access_token" not in response.json


def test_disabled_client_cannot_start_a_sign_in(app: Flask, registry: Registry, world: World) -> None:
    registry.clients.disable(world.confidential_id)
    _verifier, challenge = pkce_pair()
    response = FlaskPerson(app).get(
        authorize_url(
            response_type="code",
            client_id=world.confidential_id,
            redirect_uri=world.redirect_uri,
            scope="openid",
            code_challenge=challenge,
            code_challenge_method="S256",
        )
    )
    assert response.status_code == 400
    assert "Location" not in response.headers


# -- codes -----------------------------------------------------------------------------------------


def test_code_replay_is_refused_and_audited(app: Flask, registry: Registry, world: World) -> None:
    code, verifier = issue_code(app, world.confidential_id, world.redirect_uri)
    first = redeem(app, code, verifier, world.redirect_uri, auth=confidential_auth(world))
    assert first.status_code == 200
    assert audit_events(registry, "code.replayed") == []

    second = redeem(app, code, verifier, world.redirect_uri, auth=confidential_auth(world))
    assert_token_error(second, 400, "invalid_grant")
    replays = audit_events(registry, "code.replayed")
    assert len(replays) == 1
    assert replays[0]["client_id"] == world.confidential_id


@pytest.mark.parametrize(("wait", "status"), [(59, 200), (61, 400)])
def test_code_lives_sixty_seconds(
    app: Flask, world: World, clock: FrozenClock, wait: int, status: int
) -> None:
    code, verifier = issue_code(app, world.confidential_id, world.redirect_uri)
    clock.advance(wait)
    response = redeem(app, code, verifier, world.redirect_uri, auth=confidential_auth(world))
    assert response.status_code == status, response.get_data(as_text=True)
    if status == 400:
        assert_token_error(response, 400, "invalid_grant")


@BOTH_BACKENDS
def test_another_public_client_presenting_a_code_does_not_burn_it(
    app: Flask, registry: Registry, world: World
) -> None:
    """A public client that got hold of another client's code is refused, and the code stays its
    rightful client's: its redemption works, nothing is revoked, and only a real replay revokes."""
    intruder = registry.clients.create(
        name="Other Mobile App", redirect_uris=[world.public_redirect_uri], auth_method="none"
    ).client.client_id
    code, verifier = issue_code(app, world.public_id, world.public_redirect_uri)

    stolen = redeem(app, code, verifier, world.public_redirect_uri, form={"client_id": intruder})
    assert_token_error(stolen, 400, "invalid_grant")
    assert audit_events(registry, "code.replayed") == []

    rightful = redeem(app, code, verifier, world.public_redirect_uri, form={"client_id": world.public_id})
    assert rightful.status_code == 200, rightful.get_data(as_text=True)
    assert rightful.json is not None
    access_token = rightful.json["access_token"]
    assert userinfo_status(app, access_token) == 200

    replay = redeem(app, code, verifier, world.public_redirect_uri, form={"client_id": world.public_id})
    assert_token_error(replay, 400, "invalid_grant")
    assert [event["client_id"] for event in audit_events(registry, "code.replayed")] == [world.public_id]
    assert userinfo_status(app, access_token) == 401, "a replay revokes what the code issued"


@BOTH_BACKENDS
def test_a_confidential_client_presenting_another_clients_code_does_not_burn_it(
    app: Flask, registry: Registry, world: World
) -> None:
    other = registry.clients.create(name="Other Agency", redirect_uris=[world.redirect_uri])
    assert other.client_secret is not None
    code, verifier = issue_code(app, world.confidential_id, world.redirect_uri)
    stolen = redeem(
        app, code, verifier, world.redirect_uri, auth=(other.client.client_id, other.client_secret)
    )
    assert_token_error(stolen, 400, "invalid_grant")
    rightful = redeem(app, code, verifier, world.redirect_uri, auth=confidential_auth(world))
    assert rightful.status_code == 200, rightful.get_data(as_text=True)
    assert audit_events(registry, "code.replayed") == []


def test_a_wrong_redirect_uri_leaves_the_code_to_the_right_request(app: Flask, world: World) -> None:
    code, verifier = issue_code(app, world.confidential_id, world.redirect_uri)
    wrong = redeem(app, code, verifier, OTHER_REDIRECT, auth=confidential_auth(world))
    assert_token_error(wrong, 400, "invalid_grant")
    right = redeem(app, code, verifier, world.redirect_uri, auth=confidential_auth(world))
    assert right.status_code == 200, right.get_data(as_text=True)


@pytest.mark.parametrize("redirect_uri", ["http://127.0.0.1:9001/callback/other", ""])
def test_redirect_uri_must_match_the_authorization_request(
    app: Flask, world: World, redirect_uri: str
) -> None:
    code, verifier = issue_code(app, world.confidential_id, world.redirect_uri)
    response = redeem(app, code, verifier, redirect_uri, auth=confidential_auth(world))
    assert_token_error(response, 400, "invalid_grant")


@pytest.mark.parametrize(
    "grant_type",
    ["password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"],
)
def test_unsupported_grant_type(app: Flask, world: World, grant_type: str) -> None:
    response = app.test_client().post(
        "/token",
        data={"grant_type": grant_type, "username": "citizen", "password": PASSWORD, "scope": "openid"},
        auth=confidential_auth(world),
    )
    assert_token_error(response, 400, "unsupported_grant_type")


def test_grant_type_not_registered_for_the_client(app: Flask, world: World) -> None:
    response = app.test_client().post(
        "/token", data={"grant_type": "client_credentials"}, auth=confidential_auth(world)
    )
    assert_token_error(response, 400, "unauthorized_client")


@pytest.mark.parametrize("name", ["code", "grant_type", "redirect_uri", "code_verifier"])
def test_repeated_parameters_are_refused(app: Flask, world: World, name: str) -> None:
    # RFC 6749 3.2: a parameter sent twice is refused, whichever copy would have been read.
    code, verifier = issue_code(app, world.confidential_id, world.redirect_uri)
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": world.redirect_uri,
        "code_verifier": verifier,
    }
    pairs = [*fields.items(), (name, fields[name])]
    response = app.test_client().post(
        "/token",
        data=urlencode(pairs),
        content_type="application/x-www-form-urlencoded",
        auth=confidential_auth(world),
    )
    assert_token_error(response, 400, "invalid_request")


def test_garbage_code_is_invalid_grant(app: Flask, world: World) -> None:
    response = redeem(app, "not-a-code", "x" * 43, world.redirect_uri, auth=confidential_auth(world))
    assert_token_error(response, 400, "invalid_grant")


# -- userinfo --------------------------------------------------------------------------------------


def test_userinfo_with_bearer_header_on_get(app: Flask, tokens: dict[str, Any]) -> None:
    response = app.test_client().get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status_code == 200
    assert response.json and response.json["email"] == "fatima@example.org"
    assert response.headers["Cache-Control"] == "no-store"


def test_userinfo_with_bearer_header_on_post(app: Flask, tokens: dict[str, Any]) -> None:
    response = app.test_client().post(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status_code == 200
    assert response.json and response.json["email"] == "fatima@example.org"


def test_userinfo_with_form_access_token(app: Flask, tokens: dict[str, Any]) -> None:
    response = app.test_client().post("/userinfo", data={"access_token": tokens["access_token"]})
    assert response.status_code == 200
    assert response.json and response.json["email"] == "fatima@example.org"


def test_userinfo_sub_matches_the_id_token(app: Flask, tokens: dict[str, Any]) -> None:
    payload = tokens["id_token"].split(".")[1]
    id_claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    response = app.test_client().get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.json and response.json["sub"] == id_claims["sub"]


def test_userinfo_without_a_token_is_401_with_challenge(app: Flask) -> None:
    response = app.test_client().get("/userinfo")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = claims["scope"] + " phone address"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize("kind", ["garbage", "tampered", "unsigned", "truncated"])
def test_userinfo_refuses_bad_tokens(app: Flask, tokens: dict[str, Any], kind: str) -> None:
    access_token = tokens["access_token"]
    header, payload, _signature = access_token.split(".")
    bad = {
        "garbage": "this-is-not-a-token",
        "tampered": _tampered(access_token),
        "unsigned": base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}').decode().rstrip("=")
        + f".{payload}.",
        "truncated": f"{header}.{payload}",
    }[kind]
    response = app.test_client().get("/userinfo", headers={"Authorization": f"Bearer {bad}"})
    assert response.status_code == 401
    assert response.json and response.json["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_id_token_is_not_an_access_token(app: Flask, tokens: dict[str, Any]) -> None:
    response = app.test_client().get("/userinfo", headers={"Authorization": f"Bearer {tokens['id_token']}"})
    assert response.status_code == 401
    assert response.json and response.json["error"] == "invalid_token"


def test_userinfo_refuses_an_expired_token(
    app: Flask, registry: Registry, tokens: dict[str, Any], clock: FrozenClock
) -> None:
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    ttl = registry.settings.access_token_ttl
    clock.advance(ttl)
    assert app.test_client().get("/userinfo", headers=headers).status_code == 200
    clock.advance(31)
    response = app.test_client().get("/userinfo", headers=headers)
    assert response.status_code == 401
    assert response.json and response.json["error"] == "invalid_token"


def test_userinfo_refuses_tokens_of_a_disabled_client(
    app: Flask, registry: Registry, world: World, tokens: dict[str, Any]
) -> None:
    registry.clients.disable(world.confidential_id)
    response = app.test_client().get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status_code == 401
    assert response.json and response.json["error"] == "invalid_token"
