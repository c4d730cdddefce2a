"""The JWS verification path (``hawiya_rp.jose.verify``): it parses each token once itself and
verifies with joserfc's algorithm and a key imported once per JWKS fetch, so these tests hold it
to joserfc's own decisions (same tokens accepted, nothing more), and check what is done once."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hawiya_rp import ClientConfig, IdTokenError, OpenIDClient, jwks
from hawiya_rp.http import Response
from hawiya_rp.jose import JoseFailure, VerificationKey, verify
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key
from rp_fakes import (
    CLIENT_ID,
    ISSUER,
    JWKS_URI,
    REDIRECT_URI,
    FakeClock,
    FakeHttp,
    Provider,
    b64,
    half_hash,
    public_jwk,
    sign,
    sign_raw,
    signing_key,
)

NONCE = "n-0S6_WzA2Mj"
ACCESS_TOKEN = "an-opaque-or-jwt-access-token"
ALGORITHMS = ("ES256", "RS256", "PS256")


@pytest.fixture
def rp(http: FakeHttp, clock: FakeClock, provider: Provider) -> OpenIDClient:
    return OpenIDClient(
        ClientConfig(issuer=ISSUER, client_id=CLIENT_ID, redirect_uri=REDIRECT_URI), http, clock
    )


def refused(rp: OpenIDClient, token: str, reason: str) -> None:
    with pytest.raises(IdTokenError) as caught:
        rp.validate_id_token(token, nonce=NONCE)
    assert caught.value.reason == reason, caught.value


def public(key: Key) -> Key:
    return type(key).import_key(key.as_dict(private=False))


def signed_as(claims: dict[str, Any], key: Key, alg: str, header: dict[str, Any]) -> str:
    """A compact JWS of ``claims`` with exactly ``header``, signed with ``key`` under ``alg``."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = jws.JWSRegistry.algorithms[alg].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(signature)}"


def ours(token: str, key: Key, alg: str) -> bool:
    try:
        verify(token, lambda kid, wanted: key, (alg,))
    except JoseFailure:
        return False
    return True


def joserfc_accepts(token: str, key: Key, alg: str) -> bool:
    """What joserfc itself decides (its strict header checks, this one algorithm, JSON claims)."""
    try:
        signed = jws.deserialize_compact(token, key, registry=jws.JWSRegistry(algorithms=[alg]))
        return isinstance(json.loads(signed.payload), dict)
    except (JoseError, ValueError, TypeError):
        return False


def segment_mutations(token: str) -> list[str]:
    """The token with each segment spoiled in the ways base64url decoders differ on."""
    parts = token.split(".")
    found: list[str] = []
    for index, segment in enumerate(parts):
        for spoiled in (
            segment + "=",
            segment + "==",
            segment + "A",
            segment[:-1],
            segment[:-1] + "+",
            segment[:-1] + "/",
            segment[:10] + " " + segment[10:],
            segment[:10] + "\n" + segment[10:],
            segment[:10] + "%" + segment[10:],
            segment[:10] + "\u00e9" + segment[10:],
            segment[:-1] + chr(ord(segment[-1]) + 1),  # unused bits no longer zero (or another value)
            "",
        ):
            found.append(".".join([*parts[:index], spoiled, *parts[index + 1 :]]))
    return found


HEADER_VARIANTS: list[dict[str, Any]] = [
    {},
    {"typ": "JWT"},
    {"cty": "JWT"},
    {"x5t": "abc"},
    {"x5t#S256": "abc"},
    {"b64": True},
    {"jku": "https://attacker.example/jwks.json"},
    {"x5u": "https://attacker.example/cert.pem"},
    {"x5c": ["MIIB"]},
    {"jwk": {"kty": "EC"}},
    {"kid": 7},
    {"typ": 1},
    {"jku": "ftp://attacker.example/jwks.json"},
    {"jwk": "not-a-jwk"},
    {"x5c": "MIIB"},
    {"b64": False},
    {"b64": "false"},
    {"nonstandard": "value"},
    {"alg": None},
]


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_the_same_tokens_as_joserfc_are_accepted(alg: str) -> None:
    """A differential check: spoiled encodings and header parameters, one decision each."""
    key = signing_key(alg)
    verify_key = public(key)
    claims = {"iss": ISSUER, "sub": "s", "aud": CLIENT_ID, "iat": 1, "exp": 2}
    good = sign(claims, key, alg)
    tokens = [good, *segment_mutations(good)]
    for extra in HEADER_VARIANTS:
        header = {"kid": key.kid, **extra}
        if header.get("alg", alg) is None:
            del header["alg"]
            signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
            tokens.append(f"{signing_input}.{b64(b'x' * 64)}")
        else:
            tokens.append(sign_raw(claims, key, alg, **header))
    tokens.append(sign_raw(claims, key, alg) + "=")
    tokens.append(sign(["not", "an", "object"], key, alg))  # type: ignore[arg-type]
    accepted = 0
    for token in tokens:
        expected = joserfc_accepts(token, verify_key, alg)
        assert ours(token, verify_key, alg) is expected, token
        accepted += expected
    assert accepted >= 8  # the good token and the valid header variants


@pytest.mark.parametrize(
    "header", [{"crit": ["b64"], "b64": False}, {"crit": ["exp"], "exp": 1}, {"crit": []}]
)
def test_critical_extensions_are_refused_even_where_joserfc_would_accept(header: dict[str, Any]) -> None:
    key = signing_key("ES256")
    token = sign_raw({"iss": ISSUER}, key, "ES256", **header)
    with pytest.raises(JoseFailure) as caught:
        verify(token, lambda kid, alg: key, ("ES256",))
    assert caught.value.reason == "malformed"


@pytest.mark.parametrize(
    "alg", ["none", "None", "NONE", "HS256", "hs256", "HS512", "ES384", "RS512", "", "ES256 "]
)
def test_an_algorithm_outside_the_allow_list_is_refused_before_any_key_is_looked_up(
    rp: OpenIDClient, provider: Provider, alg: str
) -> None:
    header = {"alg": alg, "kid": provider.keys["ES256"].kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(provider.claims()).encode())}"
    refused(rp, f"{signing_input}.{b64(b'x' * 64)}", "alg_not_allowed")
    assert provider.jwks_fetches == 0


@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c"])
def test_a_key_named_by_the_header_is_never_used(rp: OpenIDClient, provider: Provider, member: str) -> None:
    """The attacker's key (or where to find it) in the header, the provider's kid: the provider's
    key is the one that verifies, and it does not."""
    attacker = signing_key("ES256", 9)
    offered = {
        "jwk": attacker.as_dict(private=False),
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
        "x5c": ["MIIBattacker"],
    }[member]
    kid = provider.keys["ES256"].kid
    token = sign_raw(provider.claims(), attacker, "ES256", kid=kid, **{member: offered})
    refused(rp, token, "bad_signature")
    assert rp.validate_id_token(provider.id_token(), nonce=NONCE)


def test_a_signature_by_another_key_with_the_same_kid_is_refused_once_the_key_is_prepared(
    rp: OpenIDClient, provider: Provider
) -> None:
    for alg in ("ES256", "RS256", "PS256"):
        assert rp.validate_id_token(provider.id_token(alg), nonce=NONCE)  # the key is now prepared
        impostor = signing_key(alg, 7)
        refused(rp, sign(provider.claims(), impostor, alg, kid=provider.keys[alg].kid), "bad_signature")
        assert rp.validate_id_token(provider.id_token(alg), nonce=NONCE)


def test_a_key_is_bound_to_its_alg_and_the_refusal_is_kept(rp: OpenIDClient, provider: Provider) -> None:
    """The PS256 key (its JWK says "alg": "PS256") signs RS256: a valid signature, refused."""
    token = sign(provider.claims(), provider.keys["PS256"], "RS256", kid=provider.keys["PS256"].kid)
    refused(rp, token, "key_mismatch")
    refused(rp, token, "key_mismatch")
    assert rp.validate_id_token(provider.id_token("PS256"), nonce=NONCE)


def test_a_key_of_another_curve_or_without_the_verify_operation_is_refused(
    http: FakeHttp, clock: FakeClock, rp: OpenIDClient
) -> None:
    p384 = ECKey.generate_key("P-384", private=True, auto_kid=True)
    p256 = signing_key("ES256")
    http.routes[JWKS_URI] = Response(
        200,
        {},
        {
            "keys": [
                {**p384.as_dict(private=False), "kid": "p384"},
                {**p256.as_dict(private=False), "kid": "sign-only", "key_ops": ["sign"]},
            ]
        },
    )
    claims = Provider(FakeHttp(), clock).claims()
    refused(rp, signed_as(claims, p384, "ES384", {"alg": "ES256", "kid": "p384"}), "key_mismatch")
    refused(rp, sign(claims, p256, "ES256", kid="sign-only"), "key_mismatch")


def test_keys_are_imported_once_per_jwks_fetch(
    rp: OpenIDClient, provider: Provider, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    imported: list[dict[str, Any]] = []
    real_import = jwks.import_key

    def counting(data: dict[str, Any]) -> Key:
        imported.append(data)
        return real_import(data)

    monkeypatch.setattr(jwks, "import_key", counting)
    for _ in range(3):
        for alg in ("ES256", "RS256", "PS256", "EdDSA"):
            token = provider.id_token(alg, access_token=ACCESS_TOKEN)
            assert rp.validate_id_token(token, nonce=NONCE, access_token=ACCESS_TOKEN)
    assert (provider.jwks_fetches, len(imported)) == (1, 4)
    clock.advance(301)  # the JWKS is stale: fetched and imported again, once
    assert rp.validate_id_token(provider.id_token(), nonce=NONCE)
    assert (provider.jwks_fetches, len(imported)) == (2, 8)


def test_a_kid_republished_with_other_key_material_verifies_only_the_new_key(
    http: FakeHttp, clock: FakeClock, rp: OpenIDClient
) -> None:
    old, new = signing_key("ES256", 0), signing_key("ES256", 1)
    published = {"key": old}
    http.routes[JWKS_URI] = lambda call: Response(
        200,
        {"cache-control": "max-age=60"},
        {"keys": [{**public_jwk(published["key"], "ES256"), "kid": "k1"}]},
    )
    claims = Provider(FakeHttp(), clock).claims()
    assert rp.validate_id_token(sign(claims, old, "ES256", kid="k1"), nonce=NONCE)
    published["key"] = new
    clock.advance(61)
    refused(rp, sign(claims, old, "ES256", kid="k1"), "bad_signature")
    assert rp.validate_id_token(sign(claims, new, "ES256", kid="k1"), nonce=NONCE)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("e30.e30.\u00e9", "malformed"),
        ("eyJhbGciOiJFUzI1NiJ9." + "A" * 128_001 + ".sig", "malformed"),
        ("eyJhbGciOiJFUzI1NiJ9.e30." + "A" * 1025, "malformed"),
        ("eyJhbGciOiJFUzI1NiJ9=.e30.sig", "malformed"),
        ("W10.e30.sig", "malformed"),  # a header that is not an object
    ],
)
def test_oversized_or_undecodable_tokens_are_malformed(rp: OpenIDClient, token: str, reason: str) -> None:
    refused(rp, token, reason)


def test_a_plain_key_lookup_still_works(provider: Provider) -> None:
    """``verify`` takes a lookup giving a joserfc key as well as a prepared one."""
    key = public(provider.keys["ES256"])
    token = provider.id_token()
    for found in (key, VerificationKey(key)):
        header, claims = verify(token, lambda kid, alg, found=found: found, ("ES256",))  # type: ignore[misc]
        assert header["alg"] == "ES256" and claims["nonce"] == NONCE


def test_at_hash_of_each_algorithm(rp: OpenIDClient, provider: Provider) -> None:
    for alg in ("ES256", "RS256", "PS256", "EdDSA"):
        token = provider.id_token(alg, access_token=ACCESS_TOKEN)
        assert rp.validate_id_token(token, nonce=NONCE, access_token=ACCESS_TOKEN)
        assert json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))["at_hash"] == half_hash(
            ACCESS_TOKEN, alg
        )
        with pytest.raises(IdTokenError) as caught:
            rp.validate_id_token(token, nonce=NONCE, access_token=ACCESS_TOKEN + "x")
        assert caught.value.reason == "at_hash_mismatch"
