"""hawiya_rp (clients/python) against the real Hawiya IdP on a real port: discovery, the code flow
through Hawiya's real pages, userinfo, refresh, private_key_jwt, an unmet level of assurance, and
key rotation and revocation in the middle of a relying party's life.

The library talks to the IdP over HTTP only (its own urllib client); the test reaches into the
registry only to register clients and to rotate or revoke keys, as an operator would.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hawiya_rp import (
    AccessTokenError,
    AccessTokenValidator,
    AuthorizationError,
    ClientConfig,
    IdTokenError,
    IntrospectionValidator,
    OpenIDClient,
    TokenEndpointError,
    TokenSet,
    generate_private_jwk,
    public_jwk,
)
from hawiya_rp.http import Response, UrllibClient
from hawiya_rp.jose import unverified_header

from idp.registry import Registry
from tests.conftest import PASSWORD, LiveServer
from tests.support.person import Person

SCOPE = "openid profile email"
LOW = "urn:hawiya:loa:low"


class Clock:
    """Real time, which the test can move forward (to step past the library's refetch interval
    and the JWKS max-age without sleeping; well within the ID tokens' lifetime)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class CountingHttp(UrllibClient):
    """The library's own HTTP client, counting the JWKS fetches."""

    def __init__(self) -> None:
        super().__init__(timeout=10)
        self.gets: list[str] = []

    def get_json(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        self.gets.append(url)
        return super().get_json(url, headers=headers)

    @property
    def jwks_fetches(self) -> int:
        return sum(1 for url in self.gets if url.endswith("/jwks.json"))


@dataclass
class Agency:
    """A relying party built on the library, with the test's hooks into it."""

    rp: OpenIDClient
    http: CountingHttp
    clock: Clock


def register(
    registry: Registry,
    port: int,
    *,
    signing_alg: str = "ES256",
    private_jwk: dict[str, Any] | None = None,
) -> tuple[str, str | None, str]:
    """A client with refresh tokens: its id, its secret (None with a key) and its redirect URI."""
    redirect_uri = f"http://127.0.0.1:{port}/auth/callback"
    new = registry.clients.create(
        name=f"Agency {port}",
        redirect_uris=[redirect_uri],
        auth_method="private_key_jwt" if private_jwk else "client_secret_basic",
        jwks={"keys": [public_jwk(private_jwk)]} if private_jwk else None,
        grant_types=("authorization_code", "refresh_token"),
        scope=SCOPE,
        id_token_alg=signing_alg,
    )
    return new.client.client_id, new.client_secret, redirect_uri


def agency(live_server: LiveServer, port: int = 9301, **options: Any) -> Agency:
    private_jwk = options.get("private_jwk")
    client_id, secret, redirect_uri = register(live_server.world.registry, port, **options)
    http, clock = CountingHttp(), Clock()
    config = ClientConfig(
        issuer=live_server.url,
        client_id=client_id,
        redirect_uri=redirect_uri,
        client_secret=secret,
        private_jwk=private_jwk,
        scope=SCOPE,
    )
    return Agency(OpenIDClient(config, http, clock), http, clock)


def sign_in(agency: Agency, person: Person, **request: Any) -> TokenSet:
    """The library builds the request, the person signs in on Hawiya's pages, the library completes
    the callback."""
    auth = agency.rp.authorization_request(**request)
    back = person.go(auth.url)
    assert back.split("?", 1)[0] == agency.rp.config.redirect_uri
    return agency.rp.complete(dict(parse_qsl(urlsplit(back).query)), auth)


def kid_of(token: str) -> str:
    """The kid in a JWS header (read, not verified)."""
    return str(unverified_header(token)["kid"])


@pytest.fixture
def citizen(live_server: LiveServer) -> Person:
    return Person(live_server.url, "citizen", PASSWORD)


def test_discovery_code_flow_userinfo_and_refresh(live_server: LiveServer, citizen: Person) -> None:
    agent = agency(live_server, signing_alg="RS256")
    metadata = agent.rp.metadata()
    assert metadata["issuer"] == live_server.url
    assert metadata["authorization_response_iss_parameter_supported"] is True

    tokens = sign_in(agent, citizen)
    assert tokens.acr == LOW and tokens.amr == ["pwd"] and tokens.sid
    assert tokens.claims["aud"] == agent.rp.config.client_id
    assert tokens.refresh_token and tokens.expires_at and tokens.expires_at > time.time()

    info = agent.rp.userinfo(tokens.access_token, expected_sub=tokens.sub)
    assert info["email"] == "fatima@example.org" and info["name"] == "Fatima Al-Sabah"

    refreshed = agent.rp.refresh(tokens.refresh_token, previous_claims=tokens.claims)
    assert refreshed.access_token != tokens.access_token
    assert refreshed.refresh_token and refreshed.refresh_token != tokens.refresh_token  # rotated
    assert refreshed.sub == tokens.sub
    assert agent.rp.userinfo(refreshed.access_token, expected_sub=tokens.sub)["sub"] == tokens.sub

    # The same access token, offline (RFC 9068) and by introspection (RFC 7662).
    offline = AccessTokenValidator(live_server.url, live_server.url, agent.http)
    assert offline.validate(refreshed.access_token, scope="openid email")["sub"] == tokens.sub
    introspection = IntrospectionValidator(
        metadata["introspection_endpoint"],
        client_id=agent.rp.config.client_id,
        client_secret=agent.rp.config.client_secret,
        issuer=live_server.url,
        http=agent.http,
    )
    assert introspection.validate(refreshed.access_token, scope="openid")["active"] is True

    # The spent refresh token is refused (RFC 9700 reuse detection), and the IdP revokes the family:
    # introspection knows at once; offline validation only when the token expires.
    with pytest.raises(TokenEndpointError) as reused:
        agent.rp.refresh(tokens.refresh_token, previous_claims=tokens.claims)
    assert reused.value.error == "invalid_grant"
    with pytest.raises(AccessTokenError) as revoked:
        introspection.validate(refreshed.access_token)
    assert revoked.value.reason == "inactive"
    assert offline.validate(refreshed.access_token)

    # A second sign-in in the same browser session: SSO, no password page, same subject.
    pages_before = len(citizen.pages)
    again = sign_in(agent, citizen)
    assert again.sub == tokens.sub and again.sid == tokens.sid
    assert not any('name="password"' in page for page in citizen.pages[pages_before:])


def test_private_key_jwt_client(live_server: LiveServer, citizen: Person) -> None:
    private = generate_private_jwk("ES256")
    agent = agency(live_server, port=9311, private_jwk=private)
    assert agent.rp.config.auth_method == "private_key_jwt"
    tokens = sign_in(agent, citizen)
    assert tokens.sub and tokens.acr == LOW
    assert tokens.refresh_token
    assert agent.rp.refresh(tokens.refresh_token, previous_claims=tokens.claims).sub == tokens.sub


def test_a_level_the_person_cannot_reach_is_an_authorization_error(
    live_server: LiveServer, citizen: Person
) -> None:
    """The citizen has no second factor: "substantial" cannot be met, and Hawiya says so."""
    agent = agency(live_server, port=9321)
    with pytest.raises(AuthorizationError) as caught:
        sign_in(agent, citizen, acr="substantial")
    assert caught.value.error == "unmet_authentication_requirements"
    assert "code" not in str(caught.value)


def test_key_rotation_mid_session_and_a_revoked_key(live_server: LiveServer, citizen: Person) -> None:
    registry = live_server.world.registry
    agent = agency(live_server, port=9331, signing_alg="ES256")
    first = sign_in(agent, citizen)
    assert first.id_token is not None
    old_kid = kid_of(first.id_token)
    assert agent.http.jwks_fetches == 1

    # Rotation as planned: the next key was already published, so the relying party has it.
    registry.keystore.rotate("ES256", force=True)
    agent.clock.advance(10)
    second = sign_in(agent, citizen)
    assert second.id_token is not None and kid_of(second.id_token) != old_kid
    assert agent.http.jwks_fetches == 1

    # An emergency rotation: the signing key is one the relying party never saw. One refetch.
    registry.keystore.rotate("ES256", force=True)
    agent.clock.advance(10)
    third = sign_in(agent, citizen)
    assert third.id_token is not None
    new_kid = kid_of(third.id_token)
    assert new_kid not in (old_kid, kid_of(second.id_token))
    assert agent.http.jwks_fetches == 2
    # The first token's (now retired) key still verifies: it is still published.
    assert agent.rp.validate_id_token(first.id_token, nonce=first.claims["nonce"])

    # Revocation: once the relying party asks for the keys again, the revoked key's tokens die.
    registry.key_admin.revoke(new_kid, reason="test: key compromised")
    assert agent.rp.validate_id_token(third.id_token, nonce=third.claims["nonce"])  # cached set
    agent.clock.advance(registry.settings.jwks_max_age + 1)  # the cached JWKS expires
    with pytest.raises(IdTokenError) as refused:
        agent.rp.validate_id_token(third.id_token, nonce=third.claims["nonce"])
    assert refused.value.reason == "unknown_key"
    assert agent.http.jwks_fetches == 3
    # ... while a sign-in now is signed by the key that took over, and validates.
    fourth = sign_in(agent, citizen)
    assert fourth.id_token is not None and kid_of(fourth.id_token) != new_kid
