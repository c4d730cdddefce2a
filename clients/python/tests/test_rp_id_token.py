"""ID token validation (OIDC Core 3.1.3.7): what is accepted, and every way a token is refused."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from hawiya_rp import ClientConfig, IdTokenError, OpenIDClient
from joserfc.jwk import RSAKey
from rp_fakes import (
    CLIENT_ID,
    ISSUER,
    REDIRECT_URI,
    FakeClock,
    FakeHttp,
    Provider,
    b64,
    hmac_signed,
    sign,
    sign_raw,
    signing_key,
    unsigned,
)

NONCE = "n-0S6_WzA2Mj"
ACCESS_TOKEN = "an-opaque-or-jwt-access-token"


def client(http: FakeHttp, clock: FakeClock, **config: object) -> OpenIDClient:
    return OpenIDClient(
        ClientConfig(issuer=ISSUER, client_id=CLIENT_ID, redirect_uri=REDIRECT_URI, **config),  # type: ignore[arg-type]
        http,
        clock,
    )


@pytest.fixture
def rp(http: FakeHttp, clock: FakeClock, provider: Provider) -> OpenIDClient:
    return client(http, clock)


def refused(rp: OpenIDClient, token: str, *, reason: str, **kwargs: object) -> IdTokenError:
    """Assert ``token`` is refused for ``reason``; the error never quotes the token."""
    kwargs.setdefault("nonce", NONCE)
    with pytest.raises(IdTokenError) as caught:
        rp.validate_id_token(token, **kwargs)  # type: ignore[arg-type]
    assert caught.value.reason == reason, caught.value
    for part in token.split("."):
        if len(part) > 8:
            assert part not in str(caught.value)
    return caught.value


def tamper(token: str, **changes: object) -> str:
    """The token with its payload changed and its signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    fresh = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{fresh}.{signature}"


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
def test_a_valid_id_token_of_each_algorithm_is_accepted(
    rp: OpenIDClient, provider: Provider, alg: str
) -> None:
    token = provider.id_token(alg, access_token=ACCESS_TOKEN)
    claims = rp.validate_id_token(token, nonce=NONCE, access_token=ACCESS_TOKEN)
    assert claims["sub"] == "pairwise-subject-1"
    assert claims["acr"] == "urn:hawiya:loa:low"


def test_tampered_payload_is_refused(rp: OpenIDClient, provider: Provider) -> None:
    refused(rp, tamper(provider.id_token(), sub="someone-else"), reason="bad_signature")


def test_signature_of_another_key_with_the_same_kid_is_refused(rp: OpenIDClient, provider: Provider) -> None:
    impostor = signing_key("ES256", 7)
    token = sign(provider.claims(), impostor, "ES256", kid=provider.keys["ES256"].kid)
    refused(rp, token, reason="bad_signature")


def test_wrong_audience_is_refused(rp: OpenIDClient, provider: Provider) -> None:
    refused(rp, provider.id_token(aud="another-agency", azp="another-agency"), reason="wrong_audience")


@pytest.mark.parametrize("iss", ["https://evil.example", ISSUER + "/", ISSUER.upper(), None])
def test_wrong_issuer_is_refused(rp: OpenIDClient, provider: Provider, iss: str | None) -> None:
    token = provider.id_token(iss=iss)
    refused(rp, token, reason="missing_claim" if iss is None else "wrong_issuer")


def test_expired_beyond_the_leeway_is_refused(rp: OpenIDClient, provider: Provider, clock: FakeClock) -> None:
    token = provider.id_token(exp=int(clock()) - 61)
    refused(rp, token, reason="expired")


def test_expired_within_the_leeway_is_accepted(
    rp: OpenIDClient, provider: Provider, clock: FakeClock
) -> None:
    assert rp.validate_id_token(provider.id_token(exp=int(clock()) - 59), nonce=NONCE)


def test_issued_in_the_future_is_refused(rp: OpenIDClient, provider: Provider, clock: FakeClock) -> None:
    refused(rp, provider.id_token(iat=int(clock()) + 120), reason="issued_in_future")


@pytest.mark.parametrize("nonce", ["another-nonce", None])
def test_nonce_mismatch_is_refused(rp: OpenIDClient, provider: Provider, nonce: str | None) -> None:
    refused(rp, provider.id_token(nonce=nonce), reason="nonce_mismatch")


def test_at_hash_of_another_access_token_is_refused(rp: OpenIDClient, provider: Provider) -> None:
    token = provider.id_token(access_token="the-real-access-token")
    refused(rp, token, reason="at_hash_mismatch", access_token="a-substituted-access-token")


def test_at_hash_for_eddsa_is_the_sha512_half(rp: OpenIDClient, provider: Provider) -> None:
    """Hawiya (idp/oidc/tokens.py half_hash) hashes with SHA-512 for EdDSA; SHA-256 is refused."""
    good = provider.id_token("EdDSA", access_token=ACCESS_TOKEN)
    assert rp.validate_id_token(good, nonce=NONCE, access_token=ACCESS_TOKEN)
    sha256_half = b64(hashlib.sha256(ACCESS_TOKEN.encode()).digest()[:16])
    bad = provider.id_token("EdDSA", at_hash=sha256_half)
    refused(rp, bad, reason="at_hash_mismatch", access_token=ACCESS_TOKEN)


def test_alg_none_is_refused(rp: OpenIDClient, provider: Provider) -> None:
    refused(rp, unsigned(provider.claims(), kid=provider.keys["ES256"].kid), reason="alg_not_allowed")


def test_hs256_signed_with_the_rsa_public_key_is_refused(rp: OpenIDClient, provider: Provider) -> None:
    """Algorithm confusion: the "secret" is the provider's public key, which everyone has."""
    rsa = provider.keys["RS256"]
    assert isinstance(rsa, RSAKey)
    pem = rsa.as_pem(private=False)
    for secret in (pem, json.dumps(provider.jwks_response().json["keys"][1]).encode()):
        token = hmac_signed(provider.claims(), secret, kid=provider.keys["RS256"].kid)
        refused(rp, token, reason="alg_not_allowed")


@pytest.mark.parametrize("alg", ["none", "HS256", "HS512", "hs384"])
def test_none_and_hmac_cannot_even_be_configured(http: FakeHttp, clock: FakeClock, alg: str) -> None:
    with pytest.raises(ValueError, match="never accepted"):
        client(http, clock, algorithms=("ES256", alg))


def test_an_algorithm_outside_the_allow_list_is_refused(
    http: FakeHttp, clock: FakeClock, provider: Provider
) -> None:
    narrow = client(http, clock, algorithms=("ES256",))
    refused(narrow, provider.id_token("RS256"), reason="alg_not_allowed")


def test_a_key_of_the_wrong_type_for_the_alg_is_refused(rp: OpenIDClient, provider: Provider) -> None:
    """An RS256 header naming the kid of the EC key: the key is never used with another algorithm."""
    token = sign(provider.claims(), provider.keys["RS256"], "RS256", kid=provider.keys["ES256"].kid)
    refused(rp, token, reason="key_mismatch")


def test_several_audiences_need_azp(http: FakeHttp, clock: FakeClock, provider: Provider) -> None:
    trusting = client(http, clock, trusted_audiences=("agency-portal",))
    both = [CLIENT_ID, "agency-portal"]
    refused(trusting, provider.id_token(aud=both, azp=None), reason="wrong_azp")
    refused(trusting, provider.id_token(aud=both, azp="agency-portal"), reason="wrong_azp")
    assert trusting.validate_id_token(provider.id_token(aud=both, azp=CLIENT_ID), nonce=NONCE)


def test_an_untrusted_extra_audience_is_refused(rp: OpenIDClient, provider: Provider) -> None:
    refused(rp, provider.id_token(aud=[CLIENT_ID, "stranger"], azp=CLIENT_ID), reason="wrong_audience")


def test_azp_of_another_party_is_refused_even_with_one_audience(rp: OpenIDClient, provider: Provider) -> None:
    refused(rp, provider.id_token(azp="another-agency"), reason="wrong_azp")


def test_unknown_kid_is_refused_after_one_jwks_refetch(
    rp: OpenIDClient, provider: Provider, clock: FakeClock
) -> None:
    rp.validate_id_token(provider.id_token(), nonce=NONCE)
    assert provider.jwks_fetches == 1
    clock.advance(10)
    token = sign(provider.claims(), signing_key("ES256", 3), "ES256", kid="never-published")
    refused(rp, token, reason="unknown_key")
    assert provider.jwks_fetches == 2
    refused(rp, token, reason="unknown_key")
    assert provider.jwks_fetches == 2  # no second refetch within the interval


def test_a_new_key_after_rotation_validates_through_one_refetch(
    rp: OpenIDClient, provider: Provider, clock: FakeClock
) -> None:
    rp.validate_id_token(provider.id_token(), nonce=NONCE)
    clock.advance(10)
    provider.rotate("ES256")
    assert rp.validate_id_token(provider.id_token(), nonce=NONCE)
    assert provider.jwks_fetches == 2


def test_max_age_needs_a_recent_auth_time(rp: OpenIDClient, provider: Provider, clock: FakeClock) -> None:
    recent = provider.id_token(auth_time=int(clock()) - 100)
    assert rp.validate_id_token(recent, nonce=NONCE, max_age=300)
    refused(rp, provider.id_token(auth_time=int(clock()) - 1000), reason="auth_too_old", max_age=300)
    refused(rp, provider.id_token(auth_time=None), reason="missing_claim", max_age=300)


@pytest.mark.parametrize("claim", ["sub", "exp", "iat", "aud"])
def test_a_required_claim_missing_is_refused(rp: OpenIDClient, provider: Provider, claim: str) -> None:
    refused(rp, provider.id_token("ES256", **{claim: None}), reason="missing_claim")


def test_non_numeric_times_are_refused(rp: OpenIDClient, provider: Provider) -> None:
    refused(rp, provider.id_token(exp="tomorrow"), reason="malformed")
    refused(rp, provider.id_token(exp=True), reason="malformed")


@pytest.mark.parametrize(
    "token",
    ["", "not-a-jwt", "a.b", "a.b.c.d.e", "e30.e30.", "!!!.e30.sig"],
)
def test_garbage_is_malformed(rp: OpenIDClient, token: str) -> None:
    refused(rp, token, reason="malformed")


def test_critical_header_extensions_are_refused(rp: OpenIDClient, provider: Provider) -> None:
    token = sign_raw(provider.claims(), provider.keys["ES256"], "ES256", crit=["urn:example:extension"])
    refused(rp, token, reason="malformed")


def test_a_key_offered_in_the_header_is_never_used(rp: OpenIDClient, provider: Provider) -> None:
    attacker = signing_key("ES256", 9)
    token = sign(provider.claims(), attacker, "ES256", kid="attacker", jwk=attacker.as_dict(private=False))
    refused(rp, token, reason="unknown_key")


def test_access_and_logout_tokens_never_pass_for_id_tokens(rp: OpenIDClient, provider: Provider) -> None:
    """Same keys, same issuer: a logout token (no nonce) would otherwise pass where no nonce is
    expected, as on refresh."""
    logout = provider.logout_token(aud=CLIENT_ID, exp=int(provider.clock()) + 60)
    refused(rp, logout, reason="wrong_type", nonce=None)
    untyped = provider.logout_token(typ=None)
    refused(rp, untyped, reason="wrong_type", nonce=None)
    access = provider.access_token(aud=CLIENT_ID)
    refused(rp, access, reason="wrong_type", nonce=None)


def test_an_oversized_header_is_refused_before_decoding(rp: OpenIDClient) -> None:
    refused(rp, "e" * 5000 + ".e30.sig", reason="malformed")
