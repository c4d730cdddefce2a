"""The OpenID Foundation's Basic OP certification plan (oidcc-basic-certification-test-plan),
mirrored: one test per module, named after its module id, checking what that module checks.
The plan runs again with ``response_mode=form_post``
(oidcc-formpost-basic-certification-test-plan): every module whose result is an authorization
response runs in both modes. Modules that store or look up what the client sent (codes, refresh
tokens, sessions, hints, client credentials, access tokens) run on both backends (SQLite + embedded
store, PostgreSQL + Redis), the others on the embedded default (docs/testing.md).
``test_oidcc_discovery_endpoint_verification`` mirrors the Config plan.

The suite's client is the world's confidential client: client_secret_basic, RS256 ID tokens, one
registered redirect URI, no PKCE unless the module asks for it.
"""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from flask import Flask

from idp.clock import FrozenClock
from idp.errors import InvalidInput
from idp.registry import Registry
from tests.conformance.rp import (
    DEFAULT_RESPONSE_MODE,
    EACH_RESPONSE_MODE,
    ISSUER,
    PRIVATE_JWK_MEMBERS,
    ConformanceRP,
    Flow,
    assert_error_page,
    path_of,
    person,
    signed_in_again,
    unsigned_jwt,
)
from tests.conftest import BOTH_BACKENDS, ONE_BACKEND, World
from tests.support.flask_person import pkce_pair

FULL_NAME = "Fatima Al-Sabah"
ADDRESS = {"formatted": "Block 1, Street 2, Kuwait City", "country": "KW"}


# -- 1-4: the happy path and the ID token -----------------------------------------------------------


@BOTH_BACKENDS
@EACH_RESPONSE_MODE
def test_oidcc_server(app: Flask, rp: ConformanceRP) -> None:
    flow = rp.flow(person(app))
    assert isinstance(flow.tokens["id_token"], str)
    assert "openid" in flow.tokens["scope"].split()
    # The ID token is the one the code was issued for: the nonce came back, and sub is stable.
    assert flow.id_token["nonce"] == flow.request["nonce"]
    assert flow.id_token["sub"] == rp.userinfo_claims(flow)["sub"]


@ONE_BACKEND
@EACH_RESPONSE_MODE
def test_oidcc_response_type_missing(app: Flask, rp: ConformanceRP) -> None:
    # client_id and redirect_uri are verified, so the error goes back to the client (RFC 6749 4.1.2.1).
    request = rp.request(response_type=None)
    browser = person(app)
    response = browser.authorize(rp.url(request))
    rp.expect_error(response, request, "unsupported_response_type", "invalid_request")
    assert not signed_in_again(browser, 0), "the person was asked to sign in for an invalid request"


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_idtoken_signature(app: Flask, rp: ConformanceRP) -> None:
    flow = rp.flow(person(app))
    token = flow.tokens["id_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    jwk = rp.signing_jwk(token)
    assert jwk["kty"] == "RSA" and not PRIVATE_JWK_MEMBERS & set(jwk)
    # The signature is what holds it together: one changed claim, or another published key, fails.
    head, _payload, signature = token.split(".")
    forged_payload = jwt.utils.base64url_encode(json.dumps({**flow.id_token, "sub": "someone-else"}).encode())
    forged = f"{head}.{forged_payload.decode()}.{signature}"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience=rp.client_id)
    others = [key for key in rp.jwks()["keys"] if key["kid"] != header["kid"]]
    assert others, "Hawiya publishes an ES256 key beside the RS256 one"
    for other in others:
        with pytest.raises(jwt.InvalidTokenError):
            jwt.decode(token, jwt.PyJWK(other).key, algorithms=[other["alg"]], audience=rp.client_id)


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_idtoken_unsigned(registry: Registry, rp: ConformanceRP) -> None:
    # The suite runs this module only when the OP offers alg "none"; Hawiya never does, so the
    # module is skipped there. Prove why: nothing advertises it, and no client can be registered with it.
    assert "none" not in rp.discovery()["id_token_signing_alg_values_supported"]
    assert all(key.get("alg") != "none" for key in rp.jwks()["keys"])
    with pytest.raises(InvalidInput):
        registry.clients.create(name="Unsigned", redirect_uris=[rp.redirect_uri], id_token_alg="none")
    assert [c.name for c in registry.clients.list()].count("Unsigned") == 0


# -- 5-7: UserInfo ----------------------------------------------------------------------------------


@BOTH_BACKENDS
@DEFAULT_RESPONSE_MODE
def test_oidcc_userinfo_get(app: Flask, rp: ConformanceRP) -> None:
    flow = rp.flow(person(app), scope="openid profile")
    assert rp.userinfo_claims(flow, how="get")["name"] == FULL_NAME
    assert rp.userinfo("not-a-token").status_code == 401


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_userinfo_post_header(app: Flask, rp: ConformanceRP) -> None:
    flow = rp.flow(person(app), scope="openid profile")
    assert rp.userinfo_claims(flow, how="post")["name"] == FULL_NAME
    assert rp.userinfo("not-a-token", how="post").status_code == 401


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_userinfo_post_body(app: Flask, rp: ConformanceRP) -> None:
    # Optional in the plan (a warning when refused); Hawiya accepts the form parameter (RFC 6750 2.2).
    flow = rp.flow(person(app), scope="openid profile")
    assert rp.userinfo_claims(flow, how="body")["name"] == FULL_NAME
    assert rp.userinfo("not-a-token", how="body").status_code == 401


# -- 8-14: nonce, scopes, ordering ------------------------------------------------------------------


@ONE_BACKEND
@EACH_RESPONSE_MODE
def test_oidcc_ensure_request_without_nonce_succeeds_for_code_flow(app: Flask, rp: ConformanceRP) -> None:
    flow = rp.flow(person(app), nonce=None)
    assert "nonce" not in flow.request
    assert "nonce" not in flow.id_token


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_scope_profile(app: Flask, rp: ConformanceRP) -> None:
    claims = rp.userinfo_claims(rp.flow(person(app), scope="openid profile"))
    assert claims["name"] == FULL_NAME
    assert claims["given_name"] == "Fatima"
    assert claims["family_name"] == "Al-Sabah"
    assert not {"email", "phone_number", "address"} & set(claims), "claims of scopes not asked for"


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_scope_email(app: Flask, rp: ConformanceRP) -> None:
    claims = rp.userinfo_claims(rp.flow(person(app), scope="openid email"))
    assert claims["email"] == "fatima@example.org"
    assert claims["email_verified"] is True
    assert "name" not in claims


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_scope_address(app: Flask, rp: ConformanceRP) -> None:
    claims = rp.userinfo_claims(rp.flow(person(app), scope="openid address"))
    assert claims["address"] == ADDRESS
    assert "email" not in claims


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_scope_phone(app: Flask, rp: ConformanceRP) -> None:
    claims = rp.userinfo_claims(rp.flow(person(app), scope="openid phone"))
    assert claims["phone_number"] == "+96550000001"
    assert isinstance(claims["phone_number_verified"], bool)
    assert "email" not in claims


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_scope_all(app: Flask, rp: ConformanceRP) -> None:
    flow = rp.flow(person(app), scope="openid profile email address phone")
    assert set(flow.tokens["scope"].split()) == {"openid", "profile", "email", "address", "phone"}
    claims = rp.userinfo_claims(flow)
    assert claims["name"] == FULL_NAME
    assert claims["email"] == "fatima@example.org"
    assert claims["address"] == ADDRESS
    assert claims["phone_number"] == "+96550000001"


@ONE_BACKEND
@EACH_RESPONSE_MODE
def test_oidcc_alternate_happy_flow(app: Flask, rp: ConformanceRP) -> None:
    # Scopes in reverse order and the parameters in reverse order: nothing may depend on ordering.
    request = rp.request(scope="phone address email profile openid")
    reordered = dict(reversed(list(request.items())))
    assert list(reordered) != list(request)
    response = person(app).authorize(rp.url(reordered))
    tokens = rp.tokens(rp.redeem(rp.expect_code(response, request)))
    id_token = rp.verify_id_token(
        tokens["id_token"], nonce=request["nonce"], access_token=tokens["access_token"]
    )
    assert set(tokens["scope"].split()) == {"openid", "profile", "email", "address", "phone"}
    claims = rp.userinfo_claims(Flow(request, response, tokens, id_token))
    assert {"name", "email", "address", "phone_number"} <= set(claims)


# -- 15-16: display ---------------------------------------------------------------------------------


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_display_page(app: Flask, rp: ConformanceRP) -> None:
    browser = person(app)
    rp.flow(browser, display="page")
    assert signed_in_again(browser, 0), "the sign-in page was shown"


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_display_popup(app: Flask, rp: ConformanceRP) -> None:
    browser = person(app)
    rp.flow(browser, display="popup")
    assert signed_in_again(browser, 0), "the sign-in page was shown"


# -- 17-21: prompt and max_age ----------------------------------------------------------------------


@ONE_BACKEND
@EACH_RESPONSE_MODE
def test_oidcc_prompt_login(app: Flask, rp: ConformanceRP, clock: FrozenClock) -> None:
    browser = person(app)
    first = rp.flow(browser)
    clock.advance(5)
    seen = len(browser.pages)
    second = rp.flow(browser, prompt="login")
    assert signed_in_again(browser, seen), "prompt=login must show the sign-in page despite the session"
    assert second.id_token["auth_time"] > first.id_token["auth_time"]
    assert second.id_token["auth_time"] == int(clock.now())
    assert second.id_token["sub"] == first.id_token["sub"]


@ONE_BACKEND
@EACH_RESPONSE_MODE
def test_oidcc_prompt_none_not_logged_in(app: Flask, rp: ConformanceRP) -> None:
    request = rp.request(prompt="none")
    browser = person(app)
    response = browser.authorize(rp.url(request))
    rp.expect_error(response, request, "login_required", "interaction_required")
    assert not signed_in_again(browser, 0), "prompt=none must not show a page"


@BOTH_BACKENDS
@EACH_RESPONSE_MODE
def test_oidcc_prompt_none_logged_in(app: Flask, rp: ConformanceRP, clock: FrozenClock) -> None:
    browser = person(app)
    first = rp.flow(browser)
    clock.advance(5)
    seen = len(browser.pages)
    second = rp.flow(browser, prompt="none")
    assert all(page.request.path not in ("/signin", "/consent") for page in browser.pages[seen:])
    assert second.id_token["sub"] == first.id_token["sub"]
    assert second.id_token["auth_time"] == first.id_token["auth_time"]


@ONE_BACKEND
@EACH_RESPONSE_MODE
def test_oidcc_max_age_1(app: Flask, rp: ConformanceRP, clock: FrozenClock) -> None:
    browser = person(app)
    first = rp.flow(browser)
    clock.advance(2)  # the suite waits 2 s
    seen = len(browser.pages)
    second = rp.flow(browser, max_age="1")
    assert signed_in_again(browser, seen), "an authentication older than max_age must be redone"
    assert second.id_token["auth_time"] > first.id_token["auth_time"]
    assert second.id_token["auth_time"] == int(clock.now())
    assert second.id_token["sub"] == first.id_token["sub"]


@ONE_BACKEND
@EACH_RESPONSE_MODE
def test_oidcc_max_age_10000(app: Flask, rp: ConformanceRP, clock: FrozenClock) -> None:
    browser = person(app)
    first = rp.flow(browser)
    clock.advance(60)
    seen = len(browser.pages)
    second = rp.flow(browser, max_age="10000")
    assert not signed_in_again(browser, seen), "an authentication younger than max_age is reused"
    assert second.id_token["auth_time"] == first.id_token["auth_time"]
    assert second.id_token["sub"] == first.id_token["sub"]


# -- 22-27: parameters that must be accepted ---------------------------------------------------------


@ONE_BACKEND
@EACH_RESPONSE_MODE
def test_oidcc_ensure_request_with_unknown_parameter_succeeds(app: Flask, rp: ConformanceRP) -> None:
    flow = rp.flow(person(app), extra="foobar")
    assert "extra" not in flow.response.params
    assert "extra" not in flow.id_token


@BOTH_BACKENDS
@EACH_RESPONSE_MODE
def test_oidcc_id_token_hint(app: Flask, rp: ConformanceRP) -> None:
    browser = person(app)
    first = rp.flow(browser)
    seen = len(browser.pages)
    second = rp.flow(browser, prompt="none", id_token_hint=first.tokens["id_token"])
    assert all(page.request.path not in ("/signin", "/consent") for page in browser.pages[seen:])
    assert second.id_token["sub"] == first.id_token["sub"]
    assert second.id_token["auth_time"] == first.id_token["auth_time"]


@BOTH_BACKENDS
@EACH_RESPONSE_MODE
def test_oidcc_login_hint(app: Flask, rp: ConformanceRP) -> None:
    browser = person(app)
    rp.flow(browser, login_hint="citizen")
    signin = next(page for page in browser.pages if page.request.path == "/signin")
    assert 'name="username" type="text" value="citizen"' in signin.get_data(as_text=True)


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_ui_locales(app: Flask, rp: ConformanceRP) -> None:
    browser = person(app)  # the browser asks for English; ui_locales wins (OIDC Core 3.1.2.1)
    rp.flow(browser, ui_locales="ar")
    signin = next(page for page in browser.pages if page.request.path == "/signin")
    html = signin.get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in html
    assert "<h1>تسجيل الدخول</h1>" in html  # "Sign in"


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_claims_locales(app: Flask, rp: ConformanceRP) -> None:
    flow = rp.flow(person(app), scope="openid profile", claims_locales="ar")
    assert rp.userinfo_claims(flow)["name"]


@ONE_BACKEND
@EACH_RESPONSE_MODE
def test_oidcc_ensure_request_with_acr_values_succeeds(app: Flask, rp: ConformanceRP) -> None:
    # The suite asks for every advertised value; the acr SHOULD be one of them (a warning otherwise).
    requested = rp.discovery()["acr_values_supported"]
    flow = rp.flow(person(app), acr_values=" ".join(requested))
    assert flow.id_token["acr"] in requested
    # Values Hawiya does not know must not break the request either (OIDC Core 15.1).
    assert rp.flow(person(app), acr_values="1 2").id_token["acr"] in requested


# -- 28-31: codes and redirect URIs -----------------------------------------------------------------


@BOTH_BACKENDS
@DEFAULT_RESPONSE_MODE
def test_oidcc_codereuse(app: Flask, rp: ConformanceRP) -> None:
    request = rp.request()
    code = rp.expect_code(person(app).authorize(rp.url(request)), request)
    rp.tokens(rp.redeem(code))
    rp.expect_token_error(rp.redeem(code), "invalid_grant")


@BOTH_BACKENDS
@DEFAULT_RESPONSE_MODE
def test_oidcc_codereuse_30seconds(app: Flask, rp: ConformanceRP, clock: FrozenClock) -> None:
    request = rp.request()
    code = rp.expect_code(person(app).authorize(rp.url(request)), request)
    tokens = rp.tokens(rp.redeem(code))
    assert rp.userinfo(tokens["access_token"]).status_code == 200
    clock.advance(30)
    rp.expect_token_error(rp.redeem(code), "invalid_grant")
    # RFC 6749 4.1.2: the replay revokes what the code issued, though the token has not expired.
    refused = rp.userinfo(tokens["access_token"])
    assert refused.status_code == 401
    assert refused.json is not None and refused.json["error"] == "invalid_token"


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_ensure_registered_redirect_uri(app: Flask, rp: ConformanceRP) -> None:
    request = rp.request(redirect_uri="https://evil.example/callback")
    assert_error_page(person(app).get(rp.url(request)))


@ONE_BACKEND
@EACH_RESPONSE_MODE
def test_oidcc_ensure_post_request_succeeds(app: Flask, rp: ConformanceRP) -> None:
    # A cross-site POST carries no SameSite=Lax cookie: Hawiya parks it and continues with a GET.
    parked = person(app).post("/authorize", rp.request())
    assert parked.status_code == 303
    assert parked.location.startswith("/authorize/resume?")
    browser = person(app)
    flow = rp.flow(browser, post=True)
    assert signed_in_again(browser, 0)
    assert flow.id_token["nonce"] == flow.request["nonce"]


@BOTH_BACKENDS
@DEFAULT_RESPONSE_MODE
def test_oidcc_server_client_secret_post(
    app: Flask, registry: Registry, world: World, clock: FrozenClock, response_mode: str
) -> None:
    redirect_uri = "http://127.0.0.1:9003/callback"
    new = registry.clients.create(
        name="Secret post",
        redirect_uris=[redirect_uri],
        auth_method="client_secret_post",
        id_token_alg="RS256",
        pkce_exempt=True,  # the plan's modules send no PKCE
    )
    rp = ConformanceRP(
        app,
        clock,
        client_id=new.client.client_id,
        secret=new.client_secret,
        redirect_uri=redirect_uri,
        response_mode=response_mode,
        auth_method="client_secret_post",
    )
    flow = rp.flow(person(app))
    assert flow.id_token["aud"] == new.client.client_id
    assert rp.userinfo_claims(flow)["sub"] == flow.id_token["sub"]


# -- 33-36: request objects and claims --------------------------------------------------------------


@ONE_BACKEND
@EACH_RESPONSE_MODE
def test_oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported(
    app: Flask, rp: ConformanceRP
) -> None:
    assert rp.discovery()["request_uri_parameter_supported"] is False
    request = rp.request(request_uri="https://rp.example/requests/1.jwt")
    browser = person(app)
    rp.expect_error(browser.authorize(rp.url(request)), request, "request_uri_not_supported")
    assert not signed_in_again(browser, 0)


@ONE_BACKEND
@EACH_RESPONSE_MODE
def test_oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(
    app: Flask, rp: ConformanceRP
) -> None:
    assert rp.discovery()["request_parameter_supported"] is False
    request = rp.request()
    request["request"] = unsigned_jwt({**request, "iss": rp.client_id, "aud": ISSUER})
    browser = person(app)
    rp.expect_error(browser.authorize(rp.url(request)), request, "request_not_supported")
    assert not signed_in_again(browser, 0)


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_claims_essential(app: Flask, rp: ConformanceRP) -> None:
    claims_request = {"userinfo": {"name": {"essential": True}}}
    browser = person(app)
    flow = rp.flow(browser, scope="openid", claims=json.dumps(claims_request))
    consent = [page for page in browser.pages if page.request.path == "/consent"]
    assert consent and "Your name" in consent[0].get_data(as_text=True), "the person was asked for the name"
    claims = rp.userinfo_claims(flow)
    assert claims["name"] == FULL_NAME
    assert not {"given_name", "email"} & set(claims), "only the claim asked for is released"
    assert "name" not in flow.id_token, "name was asked for in userinfo only"


@ONE_BACKEND
@EACH_RESPONSE_MODE
def test_oidcc_ensure_request_object_with_redirect_uri(app: Flask, rp: ConformanceRP) -> None:
    # Hawiya does not process request objects (request_not_supported), so a redirect_uri inside one is
    # never used. The suite's shape: the registered URI inside the object, an unregistered one
    # (``..._invalid``) in the query. Nothing verified remains, so the person sees the redirect URI
    # error page; redirecting to the object's URI would be the failure the module looks for.
    request = rp.request(redirect_uri=rp.redirect_uri + "_invalid")
    inside = {**request, "redirect_uri": rp.redirect_uri, "iss": rp.client_id, "aud": ISSUER}
    request["request"] = unsigned_jwt(inside)
    assert_error_page(person(app).get(rp.url(request)))

    # The other way round: the query's registered URI is the verified one, and the refusal goes there.
    request = rp.request()
    inside = {**request, "redirect_uri": "https://evil.example/callback", "iss": rp.client_id, "aud": ISSUER}
    request["request"] = unsigned_jwt(inside)
    response = person(app).authorize(rp.url(request))
    rp.expect_error(response, request, "request_not_supported")
    assert response.uri.startswith(rp.redirect_uri)


# -- 37-38: refresh tokens and PKCE -----------------------------------------------------------------


def _refreshing_client(
    app: Flask, registry: Registry, clock: FrozenClock, response_mode: str, port: int
) -> ConformanceRP:
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    new = registry.clients.create(
        name=f"Refreshing {port}",
        redirect_uris=[redirect_uri],
        grant_types=["authorization_code", "refresh_token"],
        scope="openid profile email offline_access",
        id_token_alg="RS256",
        pkce_exempt=True,  # the plan's modules send no PKCE
    )
    return ConformanceRP(
        app,
        clock,
        client_id=new.client.client_id,
        secret=new.client_secret,
        redirect_uri=redirect_uri,
        response_mode=response_mode,
    )


def _refresh(rp: ConformanceRP, refresh_token: str) -> Any:
    return rp.token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})


@BOTH_BACKENDS
@DEFAULT_RESPONSE_MODE
def test_oidcc_refresh_token(
    app: Flask, registry: Registry, world: World, clock: FrozenClock, response_mode: str
) -> None:
    rp = _refreshing_client(app, registry, clock, response_mode, 9004)
    first = rp.flow(person(app), scope="openid email offline_access", prompt="consent")
    refresh_token = first.tokens.get("refresh_token")
    assert isinstance(refresh_token, str) and refresh_token

    clock.advance(10)
    refreshed = rp.tokens(_refresh(rp, refresh_token))
    assert refreshed["access_token"] != first.access_token
    assert refreshed["refresh_token"] != refresh_token, "refresh tokens rotate on every use"
    if "id_token" in refreshed:  # OIDC Core 12.2: same person, same authentication
        again = rp.verify_id_token(refreshed["id_token"], nonce=None, access_token=refreshed["access_token"])
        for claim in ("iss", "sub", "aud", "auth_time"):
            assert again[claim] == first.id_token[claim], claim
    userinfo = rp.userinfo(refreshed["access_token"])
    assert userinfo.status_code == 200 and userinfo.json is not None
    assert userinfo.json["sub"] == first.id_token["sub"]
    assert userinfo.json["email"] == "fatima@example.org"

    # Bound to its client: another client allowed to refresh, with valid credentials, cannot use it.
    other = _refreshing_client(app, registry, clock, response_mode, 9005)
    other.expect_token_error(_refresh(other, refreshed["refresh_token"]), "invalid_grant")
    # Rotated: the spent token no longer works.
    rp.expect_token_error(_refresh(rp, refresh_token), "invalid_grant")


@BOTH_BACKENDS
@DEFAULT_RESPONSE_MODE
def test_oidcc_ensure_request_with_valid_pkce_succeeds(app: Flask, rp: ConformanceRP) -> None:
    verifier, challenge = pkce_pair()
    flow = rp.flow(person(app), verifier=verifier, code_challenge=challenge, code_challenge_method="S256")
    assert rp.userinfo_claims(flow)["sub"] == flow.id_token["sub"]
    # The same request with the wrong verifier is refused: the challenge is really checked.
    wrong, _ = pkce_pair()
    request = rp.request(code_challenge=challenge, code_challenge_method="S256")
    code = rp.expect_code(person(app).authorize(rp.url(request)), request)
    rp.expect_token_error(rp.redeem(code, verifier=wrong), "invalid_grant")


# -- the Config plan --------------------------------------------------------------------------------

REQUIRED_METADATA = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "scopes_supported",
    "response_types_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
    "claims_supported",
    "token_endpoint_auth_methods_supported",
    "code_challenge_methods_supported",
)


@BOTH_BACKENDS
def test_oidcc_discovery_endpoint_verification(app: Flask) -> None:
    http = app.test_client()
    response = http.get("/.well-known/openid-configuration")
    assert response.status_code == 200 and response.mimetype == "application/json"
    metadata = response.json
    assert isinstance(metadata, dict)
    missing = [name for name in REQUIRED_METADATA if not metadata.get(name)]
    assert not missing, f"missing metadata {missing}"
    assert metadata["issuer"] == ISSUER

    # Every endpoint is the issuer's and answers in its own protocol (none is a 404 or a 500).
    assert http.get(path_of(metadata["authorization_endpoint"])).status_code == 400
    token = http.post(path_of(metadata["token_endpoint"]), data={"grant_type": "authorization_code"})
    assert token.status_code in (400, 401) and token.json is not None and "error" in token.json
    userinfo = http.get(path_of(metadata["userinfo_endpoint"]))
    assert userinfo.status_code == 401 and userinfo.headers["WWW-Authenticate"].startswith("Bearer")
    for name in ("revocation_endpoint", "introspection_endpoint"):
        if name in metadata:
            refused = http.post(path_of(metadata[name]), data={"token": "x"})
            assert refused.status_code == 401 and refused.json is not None, name
            assert refused.json["error"] == "invalid_client", name

    jwks = http.get(path_of(metadata["jwks_uri"]))
    assert jwks.status_code == 200 and jwks.json is not None
    keys = jwks.json["keys"]
    assert keys and all(key.get("kid") and key.get("alg") and key.get("use") == "sig" for key in keys)
    assert len({key["kid"] for key in keys}) == len(keys), "kids are unique"
    assert not any(PRIVATE_JWK_MEMBERS & set(key) for key in keys), "a private key member is published"
    for key in keys:
        jwt.PyJWK(key)  # each is a well-formed public JWK

    assert "code" in metadata["response_types_supported"]
    assert set(metadata["response_modes_supported"]) >= {"query", "form_post"}
    assert "authorization_code" in metadata["grant_types_supported"]
    assert set(metadata["subject_types_supported"]) <= {"public", "pairwise"}
    algs = metadata["id_token_signing_alg_values_supported"]
    assert "RS256" in algs and "none" not in algs
    assert all(any(key["alg"] == alg for key in keys) for alg in algs), "an advertised alg has no key"
    assert "openid" in metadata["scopes_supported"]
    assert {"sub", "iss", "aud", "exp", "iat", "name", "email"} <= set(metadata["claims_supported"])
    assert "preferred_username" not in metadata["claims_supported"], "never released, so not advertised"
    assert metadata["request_parameter_supported"] is False
    assert metadata["request_uri_parameter_supported"] is False
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert "client_secret_basic" in metadata["token_endpoint_auth_methods_supported"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) <= {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    }
    assert metadata["code_challenge_methods_supported"] == ["S256"]
