"""The code flow against a fake provider: the request, the response checks (state, RFC 9207 iss,
errors), client authentication, the level reached, refresh, userinfo, logout URL and discovery."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hawiya_rp import (
    AssuranceTooLow,
    AuthorizationError,
    AuthorizationRequest,
    ClientConfig,
    DiscoveryError,
    IdTokenError,
    IssuerMismatch,
    OpenIDClient,
    StateMismatch,
    TokenEndpointError,
    TokenSet,
    UserinfoError,
    generate_private_jwk,
    public_jwk,
)
from hawiya_rp.http import Response
from joserfc import jwt
from joserfc.jwk import KeySet
from rp_fakes import (
    CLIENT_ID,
    ISSUER,
    REDIRECT_URI,
    TOKEN_ENDPOINT,
    WELL_KNOWN,
    Call,
    FakeClock,
    FakeHttp,
    Provider,
)

SECRET = "a secret: with/odd+chars"
ACCESS_TOKEN = "access-token-1"


def make_client(http: FakeHttp, clock: FakeClock, **config: Any) -> OpenIDClient:
    config.setdefault("client_secret", SECRET)
    return OpenIDClient(
        ClientConfig(issuer=ISSUER, client_id=CLIENT_ID, redirect_uri=REDIRECT_URI, **config), http, clock
    )


@pytest.fixture
def rp(http: FakeHttp, clock: FakeClock, provider: Provider) -> OpenIDClient:
    return make_client(http, clock, scope="openid profile")


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def token_endpoint(provider: Provider, request: AuthorizationRequest | None = None, **id_claims: Any) -> None:
    """The provider's token endpoint answers with an ID token for ``request``'s nonce."""

    def answer(call: Call) -> Response:
        nonce = request.nonce if request is not None else None
        id_token = provider.id_token(access_token=ACCESS_TOKEN, nonce=nonce, **id_claims)
        return Response(
            200,
            {},
            {
                "access_token": ACCESS_TOKEN,
                "token_type": "Bearer",
                "expires_in": 300,
                "refresh_token": "refresh-1",
                "id_token": id_token,
                "scope": "openid profile",
            },
        )

    provider.http.routes[TOKEN_ENDPOINT] = answer


def success(request: AuthorizationRequest, **overrides: str) -> dict[str, str]:
    params = {"code": "code-1", "state": request.state, "iss": ISSUER}
    params.update(overrides)
    return {name: value for name, value in params.items() if value}


# -- the request -------------------------------------------------------------------------------------


def test_every_request_has_state_nonce_and_pkce_s256(rp: OpenIDClient) -> None:
    request = rp.authorization_request(acr="substantial", login_hint="fatima")
    params = query(request.url)
    assert request.url.startswith(f"{ISSUER}/authorize?")
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT_ID and params["redirect_uri"] == REDIRECT_URI
    assert params["scope"] == "openid profile"
    assert params["state"] == request.state and len(base64.urlsafe_b64decode(request.state + "=")) == 32
    assert params["nonce"] == request.nonce and len(request.nonce) >= 43
    assert params["code_challenge_method"] == "S256"
    digest = hashlib.sha256(request.code_verifier.encode()).digest()
    assert params["code_challenge"] == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert 43 <= len(request.code_verifier) <= 128
    assert params["acr_values"] == request.acr == "urn:hawiya:loa:substantial"
    assert params["login_hint"] == "fatima"
    other = rp.authorization_request()
    assert (other.state, other.nonce, other.code_verifier) != (
        request.state,
        request.nonce,
        request.code_verifier,
    )
    assert "acr_values" not in query(other.url)


def test_openid_is_always_in_the_scope_and_extra_cannot_override_security(rp: OpenIDClient) -> None:
    assert query(rp.authorization_request(scope="email").url)["scope"] == "openid email"
    assert query(rp.authorization_request(extra={"ui_locales": "ar"}).url)["ui_locales"] == "ar"
    for name in ("state", "nonce", "code_challenge_method", "redirect_uri"):
        with pytest.raises(ValueError, match=name):
            rp.authorization_request(extra={name: "x"})


def test_the_request_survives_json(rp: OpenIDClient) -> None:
    request = rp.authorization_request(acr="high", max_age=600)
    again = AuthorizationRequest.from_dict(json.loads(json.dumps(request.to_dict())))
    assert again == request
    assert request.state not in repr(request) and request.code_verifier not in repr(request)


# -- the response ------------------------------------------------------------------------------------


def test_a_full_code_flow_with_client_secret_basic(
    rp: OpenIDClient, provider: Provider, http: FakeHttp
) -> None:
    request = rp.authorization_request()
    token_endpoint(provider, request)
    tokens = rp.complete(success(request), request)
    assert tokens.sub == "pairwise-subject-1" and tokens.sid == "sso-session-1"
    assert tokens.acr == "urn:hawiya:loa:low" and tokens.amr == ["pwd"]
    assert tokens.expires_at == int(provider.clock()) + 300
    call = next(call for call in http.calls if call.url == TOKEN_ENDPOINT)
    assert call.data == {
        "grant_type": "authorization_code",
        "code": "code-1",
        "redirect_uri": REDIRECT_URI,
        "code_verifier": request.code_verifier,
    }
    # RFC 6749 2.3.1: form-urlencoded before Basic.
    assert call.auth == (CLIENT_ID, "a%20secret%3A%20with%2Fodd%2Bchars")
    assert unquote(call.auth[1]) == SECRET
    assert TokenSet.from_dict(json.loads(json.dumps(tokens.to_dict()))) == tokens
    assert ACCESS_TOKEN not in repr(tokens)


def test_state_mismatch_stops_before_the_token_endpoint(rp: OpenIDClient, provider: Provider) -> None:
    request = rp.authorization_request()
    token_endpoint(provider, request)
    for state in ("forged", "", request.state[:-1]):
        with pytest.raises(StateMismatch):
            rp.complete(success(request, state=state), request)
    assert provider.http.count(TOKEN_ENDPOINT) == 0


def test_mix_up_another_issuer_is_refused(rp: OpenIDClient, provider: Provider) -> None:
    request = rp.authorization_request()
    token_endpoint(provider, request)
    with pytest.raises(IssuerMismatch) as caught:
        rp.complete(success(request, iss="https://attacker-idp.example"), request)
    assert caught.value.reason == "issuer_mismatch"
    # Even an error response from another issuer is a mix-up, not the provider's answer.
    with pytest.raises(IssuerMismatch):
        rp.complete({"error": "access_denied", "state": request.state, "iss": "https://x.example"}, request)
    assert provider.http.count(TOKEN_ENDPOINT) == 0


def test_iss_is_required_when_the_provider_advertises_it(rp: OpenIDClient, provider: Provider) -> None:
    request = rp.authorization_request()
    token_endpoint(provider, request)
    with pytest.raises(IssuerMismatch) as caught:
        rp.complete(success(request, iss=""), request)
    assert caught.value.reason == "missing_iss"
    provider.metadata.pop("authorization_response_iss_parameter_supported")
    provider.clock.advance(3601)  # the cached discovery document expires
    assert rp.complete(success(request, iss=""), request).sub


def test_an_error_response_is_an_authorization_error(rp: OpenIDClient, provider: Provider) -> None:
    request = rp.authorization_request(acr="substantial")
    response = {
        "error": "unmet_authentication_requirements",
        "error_description": "a second factor is needed",
        "state": request.state,
        "iss": ISSUER,
    }
    with pytest.raises(AuthorizationError) as caught:
        rp.complete(response, request)
    assert caught.value.error == "unmet_authentication_requirements"
    assert caught.value.description == "a second factor is needed"
    with pytest.raises(AuthorizationError) as missing:
        rp.complete({"state": request.state, "iss": ISSUER}, request)
    assert missing.value.reason == "missing_code"


def test_a_lower_level_than_demanded_starts_a_step_up(rp: OpenIDClient, provider: Provider) -> None:
    request = rp.authorization_request(acr="high")
    token_endpoint(provider, request, acr="urn:hawiya:loa:substantial")
    with pytest.raises(AssuranceTooLow) as caught:
        rp.complete(success(request), request)
    error = caught.value
    assert error.required == "urn:hawiya:loa:high" and error.actual == "urn:hawiya:loa:substantial"
    assert query(error.request.url)["acr_values"] == "urn:hawiya:loa:high"
    assert error.request.state != request.state


def test_a_higher_level_than_demanded_is_fine(rp: OpenIDClient, provider: Provider) -> None:
    request = rp.authorization_request(acr="substantial")
    token_endpoint(provider, request, acr="urn:hawiya:loa:high")
    assert rp.complete(success(request), request).acr == "urn:hawiya:loa:high"


def test_the_id_token_must_carry_this_requests_nonce(rp: OpenIDClient, provider: Provider) -> None:
    request = rp.authorization_request()
    token_endpoint(provider, rp.authorization_request())  # the nonce of another request
    with pytest.raises(IdTokenError) as caught:
        rp.complete(success(request), request)
    assert caught.value.reason == "nonce_mismatch"


def test_token_endpoint_errors(rp: OpenIDClient, provider: Provider, http: FakeHttp) -> None:
    request = rp.authorization_request()
    http.routes[TOKEN_ENDPOINT] = Response(400, {}, {"error": "invalid_grant", "error_description": "used"})
    with pytest.raises(TokenEndpointError) as caught:
        rp.complete(success(request), request)
    assert (caught.value.error, caught.value.description) == ("invalid_grant", "used")
    http.routes[TOKEN_ENDPOINT] = Response(200, {}, {"access_token": "x", "token_type": "DPoP"})
    with pytest.raises(TokenEndpointError) as odd:
        rp.complete(success(request), request)
    assert odd.value.reason == "unsupported_token_type"
    http.routes[TOKEN_ENDPOINT] = Response(200, {}, {"access_token": "x", "token_type": "bearer"})
    with pytest.raises(IdTokenError) as no_id:
        rp.complete(success(request), request)
    assert no_id.value.reason == "missing_id_token"


def test_private_key_jwt_sends_a_short_lived_assertion(
    http: FakeHttp, clock: FakeClock, provider: Provider
) -> None:
    private = generate_private_jwk("ES256")
    rp = make_client(http, clock, client_secret=None, private_jwk=private)
    assert rp.config.auth_method == "private_key_jwt"
    request = rp.authorization_request()
    token_endpoint(provider, request)
    rp.complete(success(request), request)
    rp.complete(success(request), request)
    calls = [call for call in http.calls if call.url == TOKEN_ENDPOINT]
    keys = KeySet.import_key_set({"keys": [public_jwk(private)]})
    jtis = set()
    for call in calls:
        assert call.auth is None and call.data is not None
        assert call.data["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        assertion = jwt.decode(call.data["client_assertion"], keys, algorithms=["ES256"])
        claims = assertion.claims
        assert assertion.header["kid"] == private["kid"]
        assert claims["iss"] == claims["sub"] == CLIENT_ID
        assert claims["aud"] == ISSUER  # one string, the issuer (never the token endpoint URL)
        assert 0 < claims["exp"] - claims["iat"] <= 60 and claims["iat"] == int(clock())
        jtis.add(claims["jti"])
    assert len(jtis) == 2
    assert private["d"] not in repr(rp.config)


def test_config_refuses_ambiguous_or_insecure_settings() -> None:
    with pytest.raises(ValueError, match="https"):
        ClientConfig(issuer="http://id.example.gov", client_id=CLIENT_ID, redirect_uri=REDIRECT_URI)
    ClientConfig(issuer="http://localhost:8000", client_id=CLIENT_ID, redirect_uri=REDIRECT_URI)
    with pytest.raises(ValueError, match="not both"):
        ClientConfig(
            issuer=ISSUER,
            client_id=CLIENT_ID,
            redirect_uri=REDIRECT_URI,
            client_secret="s",
            private_jwk=generate_private_jwk(),
        )
    public = public_jwk(generate_private_jwk())
    with pytest.raises(ValueError, match="private"):
        ClientConfig(issuer=ISSUER, client_id=CLIENT_ID, redirect_uri=REDIRECT_URI, private_jwk=public)
    assert SECRET not in repr(ClientConfig(ISSUER, CLIENT_ID, REDIRECT_URI, client_secret=SECRET))


# -- after sign-in -----------------------------------------------------------------------------------


def test_refresh_keeps_the_person_and_the_refresh_token(
    rp: OpenIDClient, provider: Provider, http: FakeHttp
) -> None:
    previous = provider.claims()
    http.routes[TOKEN_ENDPOINT] = Response(
        200, {}, {"access_token": "a2", "token_type": "Bearer", "expires_in": 60}
    )
    tokens = rp.refresh("refresh-1", previous_claims=previous)
    assert tokens.access_token == "a2" and tokens.refresh_token == "refresh-1"
    assert tokens.id_token is None and tokens.claims == previous
    assert http.calls[-1].data == {"grant_type": "refresh_token", "refresh_token": "refresh-1"}

    same = provider.id_token(access_token="a3", nonce=None)
    http.routes[TOKEN_ENDPOINT] = Response(
        200, {}, {"access_token": "a3", "token_type": "Bearer", "refresh_token": "r2", "id_token": same}
    )
    refreshed = rp.refresh("refresh-1", previous_claims=previous)
    assert refreshed.refresh_token == "r2" and refreshed.id_token == same

    other = provider.id_token(access_token="a4", nonce=None, sub="someone-else")
    http.routes[TOKEN_ENDPOINT] = Response(
        200, {}, {"access_token": "a4", "token_type": "Bearer", "id_token": other}
    )
    with pytest.raises(IdTokenError) as caught:
        rp.refresh("r2", previous_claims=previous)
    assert caught.value.reason == "sub_changed"


def test_userinfo_checks_the_subject(rp: OpenIDClient, http: FakeHttp) -> None:
    http.routes[f"{ISSUER}/userinfo"] = Response(200, {}, {"sub": "pairwise-subject-1", "name": "Fatima"})
    assert rp.userinfo("at", expected_sub="pairwise-subject-1")["name"] == "Fatima"
    assert http.calls[-1].headers == {"Authorization": "Bearer at"}
    with pytest.raises(UserinfoError) as other:
        rp.userinfo("at", expected_sub="another-subject")
    assert other.value.reason == "sub_mismatch"
    http.routes[f"{ISSUER}/userinfo"] = Response(
        401, {"www-authenticate": 'Bearer error="invalid_token"'}, None
    )
    with pytest.raises(UserinfoError) as refused:
        rp.userinfo("at", expected_sub="pairwise-subject-1")
    assert refused.value.reason == "invalid_token"


def test_logout_url(rp: OpenIDClient, provider: Provider, clock: FakeClock) -> None:
    with pytest.raises(DiscoveryError) as caught:
        rp.logout_url()
    assert caught.value.reason == "no_end_session_endpoint"
    assert "end_session_endpoint" in caught.value.message
    provider.metadata["end_session_endpoint"] = f"{ISSUER}/logout"
    clock.advance(3601)
    url = rp.logout_url(
        id_token_hint="idt", post_logout_redirect_uri="https://permits.example.gov/bye", state="s"
    )
    assert url.startswith(f"{ISSUER}/logout?")
    assert query(url) == {
        "client_id": CLIENT_ID,
        "id_token_hint": "idt",
        "post_logout_redirect_uri": "https://permits.example.gov/bye",
        "state": "s",
    }


def test_discovery_must_be_for_the_configured_issuer(
    rp: OpenIDClient, provider: Provider, http: FakeHttp
) -> None:
    provider.metadata["issuer"] = ISSUER + "/"
    with pytest.raises(DiscoveryError) as caught:
        rp.metadata()
    assert caught.value.reason == "wrong_issuer"
    http.routes[WELL_KNOWN] = Response(200, {}, {"issuer": ISSUER})
    with pytest.raises(DiscoveryError) as incomplete:
        rp.metadata()
    assert incomplete.value.reason == "incomplete"


def test_discovery_is_cached_and_survives_an_outage(
    rp: OpenIDClient, provider: Provider, http: FakeHttp
) -> None:
    rp.metadata()
    rp.authorization_request()
    assert http.count(WELL_KNOWN) == 1
    http.routes[WELL_KNOWN] = Response(503, {}, None)
    provider.clock.advance(3601)
    assert rp.metadata()["issuer"] == ISSUER
    assert http.count(WELL_KNOWN) == 2


def test_the_flask_default_scope_is_openid_alone() -> None:
    # Hawiya answers invalid_scope for a scope it knows that the agency is not registered for: the
    # default assumes none (``profile`` included); the agency adds what it registered.
    from hawiya_rp.flask import config_from_app

    base = {
        "HAWIYA_ISSUER": "https://hawiya.example",
        "HAWIYA_CLIENT_ID": "permits",
        "HAWIYA_REDIRECT_URI": "https://permits.example/auth/callback",
    }
    assert config_from_app(base).scope == "openid"
    assert config_from_app({**base, "HAWIYA_SCOPE": "openid profile"}).scope == "openid profile"
