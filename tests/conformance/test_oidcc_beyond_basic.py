"""Modules of the OpenID Foundation's other OP plans (Dynamic, comprehensive) that apply to
Hawiya's code flow and are worth mirroring early (the "Beyond Basic" modules): redirect
URI handling, fragment-free registration, private_key_jwt with the issuer as audience, and key
rotation. A module runs in both response modes where its result is an authorization response, and
on both backends where it stores or looks up what the client sent (assertions' jti, keys).
"""

from __future__ import annotations

import secrets
import time

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.clock import FrozenClock
from idp.errors import InvalidInput
from idp.registry import Registry
from tests.conformance.rp import (
    DEFAULT_RESPONSE_MODE,
    EACH_RESPONSE_MODE,
    ISSUER,
    ConformanceRP,
    assert_error_page,
    person,
)
from tests.conftest import BOTH_BACKENDS, ONE_BACKEND, World

QUERY_REDIRECT = "http://127.0.0.1:9007/callback?foo=bar"


def _client(
    app: Flask, registry: Registry, clock: FrozenClock, response_mode: str, redirect_uris: list[str]
) -> ConformanceRP:
    new = registry.clients.create(
        name="Beyond basic",
        redirect_uris=redirect_uris,
        id_token_alg="RS256",
        pkce_exempt=True,  # the plan's modules send no PKCE
    )
    return ConformanceRP(
        app,
        clock,
        client_id=new.client.client_id,
        secret=new.client_secret,
        redirect_uri=redirect_uris[0],
        response_mode=response_mode,
    )


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_ensure_redirect_uri_in_authorization_request(
    app: Flask, registry: Registry, world: World, clock: FrozenClock, response_mode: str
) -> None:
    uris = ["http://127.0.0.1:9006/callback", "http://127.0.0.1:9006/other-callback"]
    rp = _client(app, registry, clock, response_mode, uris)
    # Two registered URIs and none sent: there is no verified place to send anything (OIDC Core 3.1.2.1).
    assert_error_page(person(app).get(rp.url(rp.request(redirect_uri=None))))
    # With either of them, the same request goes on to sign-in.
    for uri in uris:
        onwards = person(app).get(rp.url(rp.request(redirect_uri=uri)))
        assert onwards.status_code == 302 and onwards.location.startswith("/signin?")


@ONE_BACKEND
@EACH_RESPONSE_MODE
def test_oidcc_redirect_uri_query_ok(
    app: Flask, registry: Registry, world: World, clock: FrozenClock, response_mode: str
) -> None:
    rp = _client(app, registry, clock, response_mode, [QUERY_REDIRECT])
    flow = rp.flow(person(app))  # delivery to the registered URI, iss and state are checked there
    if response_mode == "query":
        # RFC 6749 3.1.2: the registered query is kept, once, beside the response parameters.
        assert flow.response.uri.startswith(QUERY_REDIRECT + "&")
        assert flow.response.params["foo"] == ["bar"]
    else:
        # The form posts to the registered URI, query included; the fields are the response only.
        assert flow.response.uri == QUERY_REDIRECT
        assert "foo" not in flow.response.params
    assert rp.userinfo_claims(flow)["sub"] == flow.id_token["sub"]


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_redirect_uri_query_mismatch(
    app: Flask, registry: Registry, world: World, clock: FrozenClock, response_mode: str
) -> None:
    rp = _client(app, registry, clock, response_mode, [QUERY_REDIRECT])
    mismatched = QUERY_REDIRECT.replace("foo=bar", "foo=zot")
    assert_error_page(person(app).get(rp.url(rp.request(redirect_uri=mismatched))))


@ONE_BACKEND
@DEFAULT_RESPONSE_MODE
def test_oidcc_redirect_uri_query_added(
    app: Flask, world: World, clock: FrozenClock, response_mode: str
) -> None:
    rp = ConformanceRP.of(app, world, clock, response_mode)
    added = world.redirect_uri + "?foo=bar"
    assert_error_page(person(app).get(rp.url(rp.request(redirect_uri=added))))


@ONE_BACKEND
def test_oidcc_redirect_uri_regfrag(registry: Registry) -> None:
    # OIDC Registration 2 / RFC 6749 3.1.2: a redirect URI must not contain a fragment.
    before = len(registry.clients.list())
    with pytest.raises(InvalidInput):
        registry.clients.create(name="Fragment", redirect_uris=["http://127.0.0.1:9008/callback#frag"])
    with pytest.raises(InvalidInput):
        registry.clients.create(name="Empty fragment", redirect_uris=["http://127.0.0.1:9008/callback#"])
    assert len(registry.clients.list()) == before


@BOTH_BACKENDS
@DEFAULT_RESPONSE_MODE
def test_oidcc_ensure_client_assertion_with_iss_aud_succeeds(
    app: Flask, registry: Registry, world: World, clock: FrozenClock, response_mode: str
) -> None:
    key = ECKey.generate_key("P-256", private=True, parameters={"kid": "agency-1"})
    public = {**key.as_dict(private=False), "alg": "ES256", "use": "sig"}
    redirect_uri = "http://127.0.0.1:9009/callback"
    new = registry.clients.create(
        name="Assertions",
        redirect_uris=[redirect_uri],
        auth_method="private_key_jwt",
        jwks={"keys": [public]},
        id_token_alg="ES256",
        pkce_exempt=True,  # the plan's modules send no PKCE
    )
    client_id = new.client.client_id
    assert new.client_secret is None

    def assertion() -> str:
        # RFC 7523 3 and OIDC Core 9, with the issuer identifier (not the token endpoint) as audience.
        now = int(clock.now())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": ISSUER,
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
        }
        return jwt.encode({"alg": "ES256", "kid": "agency-1"}, claims, key)

    rp = ConformanceRP(
        app,
        clock,
        client_id=client_id,
        secret=None,
        redirect_uri=redirect_uri,
        response_mode=response_mode,
        auth_method="private_key_jwt",
        alg="ES256",
        assertion=assertion,
    )
    flow = rp.flow(person(app), scope="openid email")
    assert rp.userinfo_claims(flow)["email"] == "fatima@example.org"


@BOTH_BACKENDS
@DEFAULT_RESPONSE_MODE
def test_oidcc_server_rotate_keys(
    app: Flask, registry: Registry, clock: FrozenClock, rp: ConformanceRP
) -> None:
    """After rotation jwks_uri publishes the new key and keeps the old one; new ID tokens carry the
    new kid and verify; tokens signed before it still verify against the same jwks_uri."""
    before = rp.flow(person(app), scope="openid")
    old_kid = rp.signing_jwk(before.tokens["id_token"])["kid"]
    clock.advance(registry.settings.jwks_max_age)
    rotation = registry.keystore.rotate(rp.alg)
    assert rotation.retired == old_kid
    published = {key["kid"] for key in rp.jwks()["keys"]}
    assert {old_kid, rotation.current, rotation.next} <= published
    after = rp.flow(person(app), scope="openid")
    # A signing process of its own (HAWIYA_TEST_SIGNER=remote) sees the rotation within a second
    # (idp/storage/generation.py); the process that rotated sees it at once.
    deadline = time.monotonic() + 3
    while rp.signing_jwk(after.tokens["id_token"])["kid"] != rotation.current and time.monotonic() < deadline:
        time.sleep(0.2)
        after = rp.flow(person(app), scope="openid")
    assert rp.signing_jwk(after.tokens["id_token"])["kid"] == rotation.current
    rp.verify_id_token(before.tokens["id_token"], nonce=before.request.get("nonce"), access_token=None)
