"""The resource-server helpers: RFC 9068 access tokens offline, RFC 7662 introspection."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from hawiya_rp import AccessTokenError, AccessTokenValidator, IntrospectionValidator, NetworkError
from hawiya_rp.http import Response
from hawiya_rp.keys import generate_private_jwk, public_jwk
from joserfc import jwt
from joserfc.jwk import KeySet
from rp_fakes import API, CLIENT_ID, ISSUER, FakeClock, FakeHttp, Provider, sign, unsigned

INTROSPECT = f"{ISSUER}/introspect"


@pytest.fixture
def provider(clock: FakeClock) -> Provider:
    return Provider(FakeHttp(), clock)


@pytest.fixture
def validator(provider: Provider, clock: FakeClock) -> AccessTokenValidator:
    return AccessTokenValidator(ISSUER, API, provider.http, clock)


def refused(validator: AccessTokenValidator, token: str, reason: str, **kwargs: Any) -> AccessTokenError:
    with pytest.raises(AccessTokenError) as caught:
        validator.validate(token, **kwargs)
    assert caught.value.reason == reason, caught.value
    return caught.value


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT", "Application/At+Jwt"])
def test_a_valid_access_token_is_accepted(
    validator: AccessTokenValidator, provider: Provider, typ: str
) -> None:
    claims = validator.validate(provider.access_token(typ=typ), scope="records:read")
    assert claims["client_id"] == CLIENT_ID


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "logout+jwt", "at+jwt+extra"])
def test_typ_missing_or_wrong_is_refused(
    validator: AccessTokenValidator, provider: Provider, typ: str | None
) -> None:
    error = refused(validator, provider.access_token(typ=typ), "wrong_type")
    assert (error.status, error.error) == (401, "invalid_token")


def test_an_id_token_is_not_an_access_token(validator: AccessTokenValidator, provider: Provider) -> None:
    refused(validator, provider.id_token(aud=API), "wrong_type")


def test_another_audience_is_refused(validator: AccessTokenValidator, provider: Provider) -> None:
    error = refused(validator, provider.access_token(aud="https://api.example.gov/other"), "wrong_audience")
    assert error.status == 401
    assert validator.validate(provider.access_token(aud=["https://x.example", API]))


def test_missing_scope_is_403_insufficient_scope(validator: AccessTokenValidator, provider: Provider) -> None:
    token = provider.access_token(scope="openid records:read")
    error = refused(validator, token, "insufficient_scope", scope="records:read records:write")
    assert (error.status, error.error) == (403, "insufficient_scope")
    assert error.www_authenticate(realm="records") == (
        'Bearer realm="records", error="insufficient_scope", '
        'error_description="the access token does not grant the scope this API needs", '
        'scope="records:read records:write"'
    )
    refused(validator, provider.access_token(scope=None), "insufficient_scope", scope=["records:read"])
    # A scope is a whole word: "records:read" does not grant "records".
    refused(validator, token, "insufficient_scope", scope="records")


def test_times_issuer_and_signature(
    validator: AccessTokenValidator, provider: Provider, clock: FakeClock
) -> None:
    now = int(clock())
    refused(validator, provider.access_token(exp=now - 120), "expired")
    refused(validator, provider.access_token(iat=now + 120), "issued_in_future")
    refused(validator, provider.access_token(iss="https://other.example"), "wrong_issuer")
    refused(validator, provider.access_token(jti=None), "missing_claim")
    claims = {"iss": ISSUER, "aud": API, "exp": now + 60}
    refused(validator, unsigned(claims, typ="at+jwt"), "alg_not_allowed")
    token = sign(claims, provider.keys["ES256"], "ES256", typ="at+jwt", kid="unknown")
    refused(validator, token, "unknown_key")


def test_a_jwks_uri_skips_discovery(provider: Provider, clock: FakeClock) -> None:
    validator = AccessTokenValidator(ISSUER, API, provider.http, clock, jwks_uri=f"{ISSUER}/jwks.json")
    validator.validate(provider.access_token())
    assert provider.http.count(f"{ISSUER}/.well-known/openid-configuration") == 0


# -- introspection ---------------------------------------------------------------------------------


def introspection(answer: dict[str, Any], status: int = 200) -> tuple[FakeHttp, IntrospectionValidator]:
    http = FakeHttp()
    http.routes[INTROSPECT] = Response(status, {}, answer)
    return http, IntrospectionValidator(
        INTROSPECT, client_id=CLIENT_ID, client_secret="s3cret/+=", issuer=ISSUER, audience=API, http=http
    )


def test_introspection_accepts_an_active_access_token_with_basic_auth() -> None:
    http, validator = introspection({"active": True, "token_type": "Bearer", "aud": API, "scope": "a b"})
    assert validator.validate("opaque", scope="a")["active"] is True
    call = http.calls[0]
    assert call.data == {"token": "opaque", "token_type_hint": "access_token"}
    assert call.auth is not None and unquote(call.auth[1]) == "s3cret/+="


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"active": False}, "inactive"),
        ({"active": "true", "aud": API}, "inactive"),
        ({"active": True, "token_type": "refresh_token", "aud": API}, "wrong_type"),
        ({"active": True, "aud": "https://another.example"}, "wrong_audience"),
        ({"active": True, "aud": API, "iss": "https://other.example"}, "wrong_issuer"),
        ({"active": True, "aud": API, "exp": 1}, "expired"),
        ({"active": True, "aud": API, "scope": "a"}, "insufficient_scope"),
    ],
)
def test_introspection_refusals(answer: dict[str, Any], reason: str) -> None:
    _, validator = introspection(answer)
    with pytest.raises(AccessTokenError) as caught:
        validator.validate("opaque", scope="b" if reason == "insufficient_scope" else None)
    assert caught.value.reason == reason


def test_an_unavailable_introspection_endpoint_is_not_the_tokens_fault() -> None:
    _, validator = introspection({"error": "server_error"}, status=500)
    with pytest.raises(NetworkError):
        validator.validate("opaque")


def test_introspection_with_private_key_jwt() -> None:
    private = generate_private_jwk("ES256")
    http = FakeHttp()
    http.routes[INTROSPECT] = Response(200, {}, {"active": True})
    validator = IntrospectionValidator(
        INTROSPECT, client_id=CLIENT_ID, private_jwk=private, issuer=ISSUER, http=http
    )
    validator.validate("opaque")
    call = http.calls[0]
    assert call.auth is None and call.data is not None
    assertion = jwt.decode(
        call.data["client_assertion"], KeySet.import_key_set({"keys": [public_jwk(private)]})
    )
    assert assertion.claims["iss"] == assertion.claims["sub"] == CLIENT_ID
    assert assertion.claims["aud"] == ISSUER
