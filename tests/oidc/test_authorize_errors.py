"""Errors at the authorization endpoint (RFC 6749 4.1.2.1, RFC 7636, RFC 9207, OIDC Core 3.1.2.6).

The redirect rule: until the client and its redirect_uri are verified, the person sees an error
page and is never sent anywhere. Once they are, the error goes back to the client with ``state``
and ``iss``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from idp.errors import InvalidInput
from idp.registry import Registry
from tests.conftest import PASSWORD, World
from tests.support.audit import audit_events
from tests.support.flask_person import (
    FlaskPerson,
    authorize_url,
    is_same_origin,
    page_links,
    pkce_pair,
    query_of,
)

ISSUER = "http://localhost:8000"
AGENCY_REDIRECT = "https://agency.example.gov/oidc/callback"
FORM = "application/x-www-form-urlencoded"


def assert_error_page(response: TestResponse) -> None:
    """A 400 page for the person; no redirect anywhere."""
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "Location" not in response.headers
    assert "<html" in response.get_data(as_text=True)


def assert_error_redirect(
    response: TestResponse, redirect_uri: str, error: str, *, state: str | None = "s-1"
) -> dict[str, list[str]]:
    """A redirect to the registered redirect_uri carrying ``error``, ``iss`` and ``state``."""
    assert response.status_code == 302
    location = response.location
    assert location is not None
    assert location.split("?", 1)[0] == redirect_uri
    params = query_of(location)
    assert params["error"] == [error]
    assert params["iss"] == [ISSUER]
    assert "code" not in params
    if state is not None:
        assert params["state"] == [state]
    return params


def code_request(world: World, **overrides: str) -> dict[str, str]:
    """A valid request of the confidential client, with ``overrides`` applied."""
    _verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": world.confidential_id,
        "redirect_uri": world.redirect_uri,
        "scope": "openid email",
        "state": "s-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return params


def public_request(world: World, **overrides: str) -> dict[str, str]:
    """A request of the public client without PKCE, with ``overrides`` applied."""
    params = {
        "response_type": "code",
        "client_id": world.public_id,
        "redirect_uri": world.public_redirect_uri,
        "scope": "openid",
        "state": "s-1",
    }
    params.update(overrides)
    return params


# -- client and redirect_uri not verified: a page, never a redirect --------------------------------


def test_a_valid_request_goes_to_sign_in(app: Flask, world: World) -> None:
    response = FlaskPerson(app).get(authorize_url(**code_request(world)))
    assert response.status_code == 302
    assert response.location.startswith("/signin?")


def test_unknown_client_gets_an_error_page(app: Flask, world: World) -> None:
    response = FlaskPerson(app).get(authorize_url(**code_request(world, client_id="no-such-client")))
    assert_error_page(response)


def test_unknown_client_with_prompt_none_still_gets_a_page(app: Flask, world: World) -> None:
    response = FlaskPerson(app).get(
        authorize_url(**code_request(world, client_id="no-such-client", prompt="none"))
    )
    assert_error_page(response)


def test_unregistered_redirect_uri_gets_an_error_page(app: Flask, world: World) -> None:
    response = FlaskPerson(app).get(
        authorize_url(**code_request(world, redirect_uri="https://evil.example/callback"))
    )
    assert_error_page(response)
    # The page offers no way onwards to the unverified address (links stay on Hawiya).
    links = page_links(response.get_data(as_text=True))
    assert links and [link for link in links if not is_same_origin(link)] == []


def test_missing_redirect_uri_gets_an_error_page(app: Flask, world: World) -> None:
    params = code_request(world)
    del params["redirect_uri"]
    assert_error_page(FlaskPerson(app).get(authorize_url(**params)))


TRICKS = {
    "prefix": AGENCY_REDIRECT + "/extra",
    "query added": AGENCY_REDIRECT + "?x=1",
    "host case": AGENCY_REDIRECT.replace("agency.example.gov", "AGENCY.example.gov"),
    "path case": AGENCY_REDIRECT.replace("callback", "Callback"),
    "trailing slash": AGENCY_REDIRECT + "/",
    "other port": AGENCY_REDIRECT.replace("example.gov", "example.gov:8443"),
    "explicit default port": AGENCY_REDIRECT.replace("example.gov", "example.gov:443"),
    "fragment": AGENCY_REDIRECT + "#frag",
    "scheme downgrade": AGENCY_REDIRECT.replace("https://", "http://"),
    "subdomain": AGENCY_REDIRECT.replace("agency.", "evil.agency."),
    "userinfo": AGENCY_REDIRECT.replace("agency.example.gov", "agency.example.gov@evil.example"),
    "dot segment": AGENCY_REDIRECT.replace("/callback", "/x/../callback"),
    "encoded slash": AGENCY_REDIRECT.replace("oidc/callback", "oidc%2Fcallback"),
}


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_redirect_uri_must_match_exactly(app: Flask, registry: Registry, trick: str) -> None:
    client = registry.clients.create(name="Agency", redirect_uris=[AGENCY_REDIRECT]).client
    person = FlaskPerson(app)
    base = {"response_type": "code", "client_id": client.client_id, "scope": "openid", "state": "s-1"}
    _verifier, challenge = pkce_pair()
    base.update(code_challenge=challenge, code_challenge_method="S256")

    exact = person.get(authorize_url(**base, redirect_uri=AGENCY_REDIRECT))
    assert exact.status_code == 302 and exact.location.startswith("/signin?")

    tricked = person.get(authorize_url(**base, redirect_uri=TRICKS[trick]))
    assert_error_page(tricked)


# -- client and redirect_uri verified: errors go back to the client ---------------------------------


def test_missing_response_type_is_redirected_with_iss(app: Flask, world: World) -> None:
    params = code_request(world)
    del params["response_type"]
    response = FlaskPerson(app).get(authorize_url(**params))
    assert_error_redirect(response, world.redirect_uri, "unsupported_response_type")


@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", "none"])
def test_unsupported_response_type_is_redirected_with_iss(
    app: Flask, world: World, response_type: str
) -> None:
    response = FlaskPerson(app).get(authorize_url(**code_request(world, response_type=response_type)))
    assert_error_redirect(response, world.redirect_uri, "unsupported_response_type")


def test_public_client_without_pkce_is_refused(app: Flask, world: World) -> None:
    response = FlaskPerson(app).get(authorize_url(**public_request(world)))
    assert_error_redirect(response, world.public_redirect_uri, "invalid_request")


def without_pkce(params: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k not in ("code_challenge", "code_challenge_method")}


def test_confidential_client_without_pkce_is_refused(app: Flask, world: World) -> None:
    """RFC 9700 2.1.1: PKCE is required of confidential clients too, unless staff excused one."""
    response = FlaskPerson(app).get(authorize_url(**without_pkce(code_request(world))))
    params = assert_error_redirect(response, world.redirect_uri, "invalid_request")
    assert "code_challenge" in params["error_description"][0]


def test_an_exempt_confidential_client_may_leave_out_pkce_and_each_code_is_audited(
    app: Flask, registry: Registry, world: World
) -> None:
    registry.clients.update(world.confidential_id, pkce_exempt=True, actor="staff")
    updated = audit_events(registry, "client.updated")
    assert updated[0]["client_id"] == world.confidential_id
    assert updated[0]["detail"] == {"pkce_exempt": True}
    for round_ in (1, 2):
        code = signed_in_code(app, world, without_pkce(code_request(world)))
        response = redeem_confidential(app, world, code, None)
        assert response.status_code == 200, response.get_data(as_text=True)
        used = audit_events(registry, "code.issued_without_pkce")
        assert [event["client_id"] for event in used] == [world.confidential_id] * round_
        assert used[0]["subject"] == world.citizen_id
    # A code the exempt client asked for with PKCE is an ordinary one: nothing to report.
    verifier, challenge = pkce_pair()
    code = signed_in_code(app, world, code_request(world, code_challenge=challenge))
    assert redeem_confidential(app, world, code, verifier).status_code == 200
    assert len(audit_events(registry, "code.issued_without_pkce")) == 2


def test_a_withdrawn_exemption_requires_pkce_again(app: Flask, registry: Registry, world: World) -> None:
    registry.clients.update(world.confidential_id, pkce_exempt=True)
    registry.clients.update(world.confidential_id, pkce_exempt=False)
    assert registry.clients.show(world.confidential_id).pkce_exempt is False
    response = FlaskPerson(app).get(authorize_url(**without_pkce(code_request(world))))
    assert_error_redirect(response, world.redirect_uri, "invalid_request")


def test_only_confidential_clients_that_sign_people_in_can_be_exempt(
    registry: Registry, world: World
) -> None:
    with pytest.raises(InvalidInput, match="public"):
        registry.clients.update(world.public_id, pkce_exempt=True)
    with pytest.raises(InvalidInput, match="public"):
        registry.clients.create(
            name="Mobile", redirect_uris=[world.public_redirect_uri], auth_method="none", pkce_exempt=True
        )
    with pytest.raises(InvalidInput, match="authorization_code"):
        registry.clients.create(
            name="Batch",
            redirect_uris=[],
            grant_types=("client_credentials",),
            scope="records:read",
            pkce_exempt=True,
        )
    created = registry.clients.create(name="Legacy", redirect_uris=[world.redirect_uri], pkce_exempt=True)
    assert created.client.pkce_exempt is True
    assert registry.clients.create(name="New", redirect_uris=[world.redirect_uri]).client.pkce_exempt is False


@pytest.mark.parametrize("method", ["plain", None])
def test_pkce_needs_s256(app: Flask, world: World, method: str | None) -> None:
    verifier, _challenge = pkce_pair()
    # With "plain" (or no method, which RFC 7636 4.3 reads as "plain") the challenge is the verifier.
    params = public_request(world, code_challenge=verifier)
    if method is not None:
        params["code_challenge_method"] = method
    response = FlaskPerson(app).get(authorize_url(**params))
    assert_error_redirect(response, world.public_redirect_uri, "invalid_request")


def test_prompt_none_without_a_session_is_login_required(app: Flask, world: World) -> None:
    response = FlaskPerson(app).get(authorize_url(**code_request(world, prompt="none")))
    assert_error_redirect(response, world.redirect_uri, "login_required")


def test_prompt_none_without_consent_is_consent_required(app: Flask, world: World) -> None:
    person = FlaskPerson(app, "citizen", PASSWORD)
    page = person.open_page("/signin", "/signin")
    assert person.sign_in(page).status_code == 302
    response = person.get(authorize_url(**code_request(world, prompt="none", scope="openid email")))
    assert_error_redirect(response, world.redirect_uri, "consent_required")


def test_denied_consent_is_access_denied(app: Flask, world: World) -> None:
    person = FlaskPerson(app, "citizen", PASSWORD)
    back = person.go(authorize_url(**code_request(world)), consent="deny")
    assert back.split("?", 1)[0] == world.redirect_uri
    params = query_of(back)
    assert params["error"] == ["access_denied"]
    assert params["state"] == ["s-1"]
    assert params["iss"] == [ISSUER]
    assert "code" not in params


@pytest.mark.parametrize("prompt", ["none", ""], ids=["error", "success"])
def test_registered_query_is_kept_and_iss_still_added(
    app: Flask, registry: Registry, world: World, prompt: str
) -> None:
    # RFC 6749 3.1.2 keeps a registered query; RFC 9207 still needs Hawiya's own iss next to it.
    registered = "https://agency.example.gov/cb?dismiss=1"
    client = registry.clients.create(name="Agency", redirect_uris=[registered]).client
    _verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": registered,
        "scope": "openid",
        "state": "s-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if prompt:
        back = FlaskPerson(app).get(authorize_url(**params, prompt=prompt)).location
    else:
        back = FlaskPerson(app, "citizen", PASSWORD).go(authorize_url(**params))
    assert back.startswith(registered + "&")
    result = query_of(back)
    assert result["dismiss"] == ["1"]
    assert result["iss"] == [ISSUER]
    assert result["state"] == ["s-1"]
    assert ("error" in result) == bool(prompt)


# -- repeated parameters (RFC 6749 3.1) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "second"),
    [
        ("state", "s-2"),
        ("client_id", "another-client"),
        ("client_id", None),
        ("redirect_uri", None),
        ("response_type", None),
        ("scope", "openid"),
    ],
)
def test_repeated_parameters_are_refused(app: Flask, world: World, name: str, second: str | None) -> None:
    params: list[tuple[str, Any]] = list(code_request(world).items())
    first = dict(params)[name]
    params.append((name, second if second is not None else first))
    response = FlaskPerson(app).get("/authorize?" + urlencode(params))
    assert_error_page(response)


def test_repeated_parameters_are_refused_on_post(app: Flask, world: World) -> None:
    params = [*code_request(world).items(), ("state", "s-2")]
    person = FlaskPerson(app)
    response = person.browser.post("/authorize", data=urlencode(params), content_type=FORM)
    assert_error_page(response)


# -- PKCE at the token endpoint --------------------------------------------------------------------


def signed_in_code(app: Flask, world: World, params: dict[str, str]) -> str:
    """Play sign-in and consent for ``params``; return the code the client receives."""
    back = FlaskPerson(app, "citizen", PASSWORD).go(authorize_url(**params))
    codes = query_of(back).get("code")
    assert codes, back
    return codes[0]


def redeem_public(app: Flask, world: World, code: str, verifier: str | None) -> TestResponse:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": world.public_redirect_uri,
        "client_id": world.public_id,
    }
    if verifier is not None:
        data["code_verifier"] = verifier
    return app.test_client().post("/token", data=data)


def redeem_confidential(app: Flask, world: World, code: str, verifier: str | None) -> TestResponse:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": world.redirect_uri}
    if verifier is not None:
        data["code_verifier"] = verifier
    return app.test_client().post(
        "/token", data=data, auth=(world.confidential_id, world.confidential_secret)
    )


def test_public_client_with_the_right_verifier_gets_tokens(app: Flask, world: World) -> None:
    verifier, challenge = pkce_pair()
    code = signed_in_code(
        app, world, public_request(world, code_challenge=challenge, code_challenge_method="S256")
    )
    response = redeem_public(app, world, code, verifier)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json and response.json["token_type"] == "Bearer"


@pytest.mark.parametrize("confidential", [False, True], ids=["public", "confidential"])
def test_wrong_code_verifier_is_invalid_grant(app: Flask, world: World, confidential: bool) -> None:
    _verifier, challenge = pkce_pair()
    other_verifier, _ = pkce_pair()
    if confidential:
        code = signed_in_code(app, world, code_request(world, code_challenge=challenge))
        response = redeem_confidential(app, world, code, other_verifier)
    else:
        code = signed_in_code(
            app, world, public_request(world, code_challenge=challenge, code_challenge_method="S256")
        )
        response = redeem_public(app, world, code, other_verifier)
    assert response.status_code == 400
    assert response.json and response.json["error"] == "invalid_grant"
    assert "access_token" not in response.json


@pytest.mark.parametrize("confidential", [False, True], ids=["public", "confidential"])
def test_missing_code_verifier_is_refused(app: Flask, world: World, confidential: bool) -> None:
    _verifier, challenge = pkce_pair()
    if confidential:
        code = signed_in_code(app, world, code_request(world, code_challenge=challenge))
        response = redeem_confidential(app, world, code, None)
    else:
        code = signed_in_code(
            app, world, public_request(world, code_challenge=challenge, code_challenge_method="S256")
        )
        response = redeem_public(app, world, code, None)
    assert response.status_code == 400
    assert response.json and response.json["error"] in ("invalid_request", "invalid_grant")
    assert "access_token" not in response.json


def test_code_verifier_for_a_code_issued_without_challenge_is_refused(
    app: Flask, registry: Registry, world: World
) -> None:
    # RFC 9700 4.8.2: a code_verifier at /token for a request that had no code_challenge is refused
    # (otherwise an attacker who injects a stolen code could pass PKCE checks by adding a verifier).
    registry.clients.update(world.confidential_id, pkce_exempt=True)
    params = code_request(world)
    del params["code_challenge"], params["code_challenge_method"]
    code = signed_in_code(app, world, params)
    verifier, _challenge = pkce_pair()
    response = redeem_confidential(app, world, code, verifier)
    assert response.status_code == 400
    assert response.json and "access_token" not in response.json
