"""``private_key_jwt`` client authentication (RFC 7523 2.2 and 3, OIDC Core 9) at the token endpoint.

Clients register a JWK Set (or a ``jwks_uri``, served here by a tiny real HTTP server on 127.0.0.1)
and sign their assertions with joserfc, as an agency would. Every refusal is 401 ``invalid_client``
and leaves a ``client.auth_failed`` audit record that says why, never holding the assertion itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey
from werkzeug.test import TestResponse

from idp.clock import FrozenClock
from idp.errors import InvalidInput
from idp.registry import Registry
from tests.conftest import PASSWORD
from tests.support.audit import audit_events
from tests.support.flask_person import FlaskPerson, authorize_url, pkce_pair, query_of
from tests.support.identity import national_id

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ISSUER = "http://localhost:8000"
TOKEN_ENDPOINT = ISSUER + "/token"
API_SCOPE = "records:read"
REDIRECT_URI = "http://127.0.0.1:9005/callback"

ClientJwk = ECKey | RSAKey | OKPKey


# -- the client's side: keys and assertions ---------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """A client's private key and the algorithm it signs with."""

    key: ClientJwk
    alg: str

    @property
    def kid(self) -> str:
        assert self.key.kid is not None
        return self.key.kid

    def public_jwk(self) -> dict[str, Any]:
        """The public half, as the client publishes it."""
        return {**self.key.as_dict(private=False), "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.key.as_pem(private=False)


def new_key(alg: str = "ES256", kid: str | None = None) -> SigningKey:
    """A fresh key for ``alg`` (P-256, RSA 2048 or Ed25519) with its own ``kid``."""
    generated: ClientJwk
    if alg == "ES256":
        generated = ECKey.generate_key("P-256")
    elif alg in ("RS256", "PS256"):
        generated = RSAKey.generate_key(2048)
    else:
        generated = OKPKey.generate_key("Ed25519")
    kid = kid or "k-" + secrets.token_hex(4)
    return SigningKey(type(generated).import_key(generated.as_dict(private=True), {"kid": kid}), alg)


def jwks_of(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [k.public_jwk() for k in keys]}


def claims_for(client_id: str, clock: FrozenClock, **overrides: Any) -> dict[str, Any]:
    """Valid assertion claims (RFC 7523 3) with ``overrides`` applied; a None override drops the claim."""
    now = int(clock.now())
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": ISSUER,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def sign(claims: dict[str, Any], key: SigningKey, *, kid: str | None = None) -> str:
    """A compact JWS of ``claims`` signed by ``key`` (with ``kid`` in the header, default its own)."""
    header = {"alg": key.alg, "kid": kid or key.kid, "typ": "JWT"}
    with warnings.catch_warnings():
        # joserfc warns that RFC 9864 deprecates the name EdDSA; agencies still sign with it.
        warnings.simplefilter("ignore", SecurityWarning)
        # joserfc only signs algorithms outside its short "recommended" list when asked by name.
        return jwt.encode(header, claims, key.key, algorithms=[key.alg])


def assertion(client_id: str, key: SigningKey, clock: FrozenClock, **overrides: Any) -> str:
    return sign(claims_for(client_id, clock, **overrides), key)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unsigned(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None = None) -> str:
    """A JWS built by hand: ``alg: none`` (no signature) or HMAC-SHA256 with ``secret``."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if secret is None:
        return signing_input + "."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


# -- a client's jwks_uri ------------------------------------------------------------------------------


@dataclass
class JwksServer:
    """A real HTTP server on 127.0.0.1 publishing a client's JWK Set; counts the IdP's fetches."""

    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    fetches: int = 0
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, *keys: SigningKey) -> None:
        """Replace the published keys (a rotation)."""
        with self._lock:
            self.jwks = jwks_of(*keys)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._lock:
                    owner.fetches += 1
                    body = json.dumps(owner.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test counts requests instead."""

        return Handler


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    """The client's jwks_uri, served on a free port of 127.0.0.1."""
    published = JwksServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), published.handler())
    published.url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield published
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- requests -----------------------------------------------------------------------------------------


def api_client(registry: Registry, **keys: Any) -> str:
    """A private_key_jwt client for agency-to-agency calls (client_credentials); ``keys`` is
    ``jwks=...`` or ``jwks_uri=...``."""
    new = registry.clients.create(
        name="Records Caller",
        redirect_uris=[],
        auth_method="private_key_jwt",
        grant_types=("client_credentials",),
        scope=API_SCOPE,
        **keys,
    )
    assert new.client_secret is None  # nothing to show once: the client holds its own key
    return new.client.client_id


def client_credentials(
    app: Flask, client_assertion: str, *, client_id: str | None = None, **extra: str
) -> TestResponse:
    """POST a client_credentials request authenticated by ``client_assertion``."""
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
        **extra,
    }
    if client_id is not None:
        data["client_id"] = client_id
    return app.test_client().post("/token", data=data)


def assert_tokens(response: TestResponse) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.json
    assert body is not None and body["token_type"] == "Bearer" and body["access_token"]
    return body


def assert_refused(
    response: TestResponse, registry: Registry, client_id: str, client_assertion: str, reason: str
) -> None:
    """401 invalid_client, and an audit record naming the client and why, without the assertion."""
    assert response.status_code == 401, response.get_data(as_text=True)
    body = response.json
    assert body is not None and body["error"] == "invalid_client"
    assert "access_token" not in body
    failures = audit_events(registry, "client.auth_failed")
    assert failures, "the refusal was not audited"
    latest = failures[0]
    assert latest["client_id"] == client_id
    detail = latest["detail"]
    assert isinstance(detail, dict) and detail.get("method") == "private_key_jwt"
    recorded = str(detail.get("reason", ""))
    assert reason.lower() in recorded.lower(), recorded
    for event in failures:
        dumped = json.dumps(event)
        for part in client_assertion.split("."):
            if len(part) > 8:
                assert part not in dumped, "the audit trail holds the assertion"


# -- clients with a registered JWK Set ----------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
def test_client_with_registered_jwks_gets_client_credentials_tokens(
    app: Flask, registry: Registry, clock: FrozenClock, alg: str
) -> None:
    key = new_key(alg)
    client_id = api_client(registry, jwks=jwks_of(key))
    body = assert_tokens(client_credentials(app, assertion(client_id, key, clock)))
    assert body["scope"] == API_SCOPE
    payload = body["access_token"].split(".")[1]
    access = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert access["sub"] == client_id and access["client_id"] == client_id


def test_client_id_may_be_sent_alongside_the_assertion(
    app: Flask, registry: Registry, clock: FrozenClock
) -> None:
    key = new_key()
    client_id = api_client(registry, jwks=jwks_of(key))
    assert_tokens(client_credentials(app, assertion(client_id, key, clock), client_id=client_id))


def test_authorization_code_flow_with_private_key_jwt(
    app: Flask, registry: Registry, clock: FrozenClock
) -> None:
    key = new_key("RS256")
    new = registry.clients.create(
        name="Ministry of Justice",
        redirect_uris=[REDIRECT_URI],
        auth_method="private_key_jwt",
        jwks=jwks_of(key),
    )
    registry.accounts.create(
        account_type="citizen", username="citizen", password=PASSWORD, national_id=national_id(1)
    )
    client_id = new.client.client_id
    verifier, challenge = pkce_pair()
    back = FlaskPerson(app, "citizen", PASSWORD).go(
        authorize_url(
            response_type="code",
            client_id=client_id,
            redirect_uri=REDIRECT_URI,
            scope="openid",
            state="s-1",
            code_challenge=challenge,
            code_challenge_method="S256",
        )
    )
    assert back.startswith(REDIRECT_URI + "?"), back
    response = app.test_client().post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(back)["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(client_id, key, clock, aud=ISSUER),
        },
    )
    body = assert_tokens(response)
    assert body["id_token"]


def test_the_audience_is_the_issuer(app: Flask, registry: Registry, clock: FrozenClock) -> None:
    key = new_key()
    client_id = api_client(registry, jwks=jwks_of(key))
    assert_tokens(client_credentials(app, assertion(client_id, key, clock, aud=ISSUER)))
    assert audit_events(registry, "client.legacy_audience_used") == []


@pytest.mark.parametrize("skew", [-60, 0, 25], ids=["past", "now", "within_skew"])
def test_an_assertion_valid_from_now_or_a_little_later_is_accepted(
    app: Flask, registry: Registry, clock: FrozenClock, skew: int
) -> None:
    key = new_key()
    client_id = api_client(registry, jwks=jwks_of(key))
    assert_tokens(client_credentials(app, assertion(client_id, key, clock, nbf=int(clock.now()) + skew)))


def test_a_second_key_in_the_set_also_works(app: Flask, registry: Registry, clock: FrozenClock) -> None:
    old, new = new_key("ES256"), new_key("EdDSA")
    client_id = api_client(registry, jwks=jwks_of(old, new))
    assert_tokens(client_credentials(app, assertion(client_id, old, clock)))
    assert_tokens(client_credentials(app, assertion(client_id, new, clock)))


# -- refusals -------------------------------------------------------------------------------------------

BadAssertion = Callable[[str, SigningKey, FrozenClock], str]


def _hs256_with_public_key(client_id: str, key: SigningKey, clock: FrozenClock) -> str:
    # Algorithm confusion: the "HMAC secret" is the client's public key, which anyone can read.
    header = {"alg": "HS256", "kid": key.kid, "typ": "JWT"}
    return unsigned(header, claims_for(client_id, clock), key.public_pem())


def _hs256_with_public_jwk(client_id: str, key: SigningKey, clock: FrozenClock) -> str:
    header = {"alg": "HS256", "kid": key.kid, "typ": "JWT"}
    return unsigned(header, claims_for(client_id, clock), json.dumps(key.public_jwk()).encode())


def _wrong_key(client_id: str, key: SigningKey, clock: FrozenClock) -> str:
    # Another key under the registered kid: only the signature can tell.
    return sign(claims_for(client_id, clock), new_key(key.alg), kid=key.kid)


def _tampered(client_id: str, key: SigningKey, clock: FrozenClock) -> str:
    # A genuine signature over other claims (a longer-lived assertion).
    header, _payload, signature = assertion(client_id, key, clock).split(".")
    forged = _b64(json.dumps(claims_for(client_id, clock, exp=int(clock.now()) + 250)).encode())
    return f"{header}.{forged}.{signature}"


BAD_ASSERTIONS: dict[str, tuple[BadAssertion, str]] = {
    "wrong_aud": (lambda c, k, t: assertion(c, k, t, aud="https://elsewhere.example/token"), "aud"),
    "authorize_endpoint_aud": (lambda c, k, t: assertion(c, k, t, aud=ISSUER + "/authorize"), "aud"),
    "no_aud": (lambda c, k, t: assertion(c, k, t, aud=None), "aud"),
    # Only clients registered before the issuer became the audience may still name the token endpoint.
    "token_endpoint_aud": (lambda c, k, t: assertion(c, k, t, aud=TOKEN_ENDPOINT), "must be the issuer"),
    # One string: an array lets an assertion made for another server (listing it too) be replayed here.
    "aud_list_with_another_server": (
        lambda c, k, t: assertion(c, k, t, aud=[ISSUER, "https://other.example"]),
        "single string",
    ),
    "aud_list_of_the_issuer": (lambda c, k, t: assertion(c, k, t, aud=[ISSUER]), "single string"),
    "not_valid_yet": (lambda c, k, t: assertion(c, k, t, nbf=int(t.now()) + 60), "not valid yet"),
    "nbf_not_a_number": (lambda c, k, t: assertion(c, k, t, nbf="soon"), "nbf"),
    "expired": (
        lambda c, k, t: assertion(c, k, t, iat=int(t.now()) - 200, exp=int(t.now()) - 100),
        "expired",
    ),
    "lives_over_5_minutes": (lambda c, k, t: assertion(c, k, t, exp=int(t.now()) + 360), "5 minutes"),
    "issued_in_the_future": (
        lambda c, k, t: assertion(c, k, t, iat=int(t.now()) + 200, exp=int(t.now()) + 260),
        "5 minutes",
    ),
    "no_exp": (lambda c, k, t: assertion(c, k, t, exp=None), "exp"),
    "iss_is_another_client": (lambda c, k, t: assertion(c, k, t, iss="another-client"), "iss and sub"),
    "sub_is_another_client": (lambda c, k, t: assertion(c, k, t, sub="another-client"), "iss and sub"),
    "no_jti": (lambda c, k, t: assertion(c, k, t, jti=None), "jti"),
    "empty_jti": (lambda c, k, t: assertion(c, k, t, jti=""), "jti"),
    "wrong_key": (_wrong_key, "signature"),
    "alg_none": (
        lambda c, k, t: unsigned({"alg": "none", "kid": k.kid, "typ": "JWT"}, claims_for(c, t)),
        "algorithm",
    ),
    "hs256_with_public_pem": (_hs256_with_public_key, "algorithm"),
    "hs256_with_public_jwk": (_hs256_with_public_jwk, "algorithm"),
    "not_a_jws": (lambda c, k, t: "not-a-jwt", "compact JWS"),
    "tampered_payload": (_tampered, "signature"),
}


@pytest.mark.parametrize("case", sorted(BAD_ASSERTIONS))
@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_bad_assertions_are_invalid_client_and_audited(
    app: Flask,
    registry: Registry,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
    case: str,
    alg: str,
) -> None:
    make, reason = BAD_ASSERTIONS[case]
    key = new_key(alg)
    client_id = api_client(registry, jwks=jwks_of(key))
    bad = make(client_id, key, clock)
    caplog.set_level(logging.DEBUG)
    # client_id in the form, so the client is known even when the assertion's iss is not it.
    response = client_credentials(app, bad, client_id=client_id)
    assert_refused(response, registry, client_id, bad, reason)
    assert bad not in caplog.text


def test_replayed_assertion_is_refused(app: Flask, registry: Registry, clock: FrozenClock) -> None:
    key = new_key()
    client_id = api_client(registry, jwks=jwks_of(key))
    once = assertion(client_id, key, clock)
    assert_tokens(client_credentials(app, once))
    clock.advance(5)
    assert_refused(client_credentials(app, once), registry, client_id, once, "already used")


def test_same_jti_in_a_fresh_assertion_is_refused(app: Flask, registry: Registry, clock: FrozenClock) -> None:
    key = new_key()
    client_id = api_client(registry, jwks=jwks_of(key))
    assert_tokens(client_credentials(app, assertion(client_id, key, clock, jti="jti-1")))
    again = assertion(client_id, key, clock, exp=int(clock.now()) + 90, jti="jti-1")
    assert_refused(client_credentials(app, again), registry, client_id, again, "already used")


def test_assertion_at_the_five_minute_limit_is_accepted(
    app: Flask, registry: Registry, clock: FrozenClock
) -> None:
    key = new_key()
    client_id = api_client(registry, jwks=jwks_of(key))
    assert_tokens(client_credentials(app, assertion(client_id, key, clock, exp=int(clock.now()) + 300)))


def test_assertion_of_one_client_does_not_authenticate_another(
    app: Flask, registry: Registry, clock: FrozenClock
) -> None:
    key, other_key = new_key(), new_key()
    client_id = api_client(registry, jwks=jwks_of(key))
    other_id = api_client(registry, jwks=jwks_of(other_key))
    stolen = assertion(other_id, other_key, clock)
    # Signed by the other client's key, which this client never registered.
    response = client_credentials(app, stolen, client_id=client_id)
    assert_refused(response, registry, client_id, stolen, "signature")


@pytest.mark.parametrize("how", ["basic", "post"])
def test_private_key_jwt_client_cannot_use_a_client_secret(
    app: Flask, registry: Registry, clock: FrozenClock, how: str
) -> None:
    key = new_key()
    client_id = api_client(registry, jwks=jwks_of(key))
    data = {"grant_type": "client_credentials"}
    guess = secrets.token_urlsafe(32)
    if how == "basic":
        response = app.test_client().post("/token", data=data, auth=(client_id, guess))
    else:
        response = app.test_client().post(
            "/token", data={**data, "client_id": client_id, "client_secret": guess}
        )
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.json is not None and response.json["error"] == "invalid_client"
    assert "access_token" not in response.json


def test_secret_client_cannot_use_an_assertion(app: Flask, registry: Registry, clock: FrozenClock) -> None:
    # A client registered for client_secret_basic may not switch to a key it merely claims to hold.
    key = new_key()
    new = registry.clients.create(
        name="Secret Caller",
        redirect_uris=[],
        grant_types=("client_credentials",),
        scope=API_SCOPE,
    )
    response = client_credentials(app, assertion(new.client.client_id, key, clock))
    assert response.status_code == 401
    assert response.json is not None and response.json["error"] == "invalid_client"


def test_wrong_assertion_type_is_refused(app: Flask, registry: Registry, clock: FrozenClock) -> None:
    key = new_key()
    client_id = api_client(registry, jwks=jwks_of(key))
    response = app.test_client().post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            "client_assertion": assertion(client_id, key, clock),
        },
    )
    assert response.status_code == 401
    assert response.json is not None and response.json["error"] == "invalid_client"


# -- clients with a jwks_uri ----------------------------------------------------------------------------


def test_jwks_uri_is_fetched_once_and_cached(
    app: Flask, registry: Registry, clock: FrozenClock, jwks_server: JwksServer
) -> None:
    key = new_key()
    jwks_server.publish(key)
    client_id = api_client(registry, jwks_uri=jwks_server.url)
    assert jwks_server.fetches == 0  # registration does not fetch

    assert_tokens(client_credentials(app, assertion(client_id, key, clock)))
    assert jwks_server.fetches == 1
    clock.advance(60)
    assert_tokens(client_credentials(app, assertion(client_id, key, clock)))
    assert jwks_server.fetches == 1  # the known kid came from the cache


def test_rotated_key_triggers_one_refetch(
    app: Flask, registry: Registry, clock: FrozenClock, jwks_server: JwksServer
) -> None:
    interval = registry.settings.client_jwks_refetch_interval
    old = new_key("RS256")
    jwks_server.publish(old)
    client_id = api_client(registry, jwks_uri=jwks_server.url)
    assert_tokens(client_credentials(app, assertion(client_id, old, clock)))
    assert jwks_server.fetches == 1

    # Later, the client rotates: it publishes a new key and signs with it at once.
    clock.advance(interval + 1)
    new = new_key("PS256")
    jwks_server.publish(new)
    assert_tokens(client_credentials(app, assertion(client_id, new, clock)))
    assert jwks_server.fetches == 2
    assert_tokens(client_credentials(app, assertion(client_id, new, clock)))
    assert jwks_server.fetches == 2
    # The old key is gone from the published set, and so from the refreshed cache.
    stale = assertion(client_id, old, clock)
    assert_refused(client_credentials(app, stale), registry, client_id, stale, "signature")


def test_unknown_kids_do_not_hammer_the_jwks_uri(
    app: Flask, registry: Registry, clock: FrozenClock, jwks_server: JwksServer
) -> None:
    interval = registry.settings.client_jwks_refetch_interval
    key = new_key()
    jwks_server.publish(key)
    client_id = api_client(registry, jwks_uri=jwks_server.url)
    assert_tokens(client_credentials(app, assertion(client_id, key, clock)))
    assert jwks_server.fetches == 1

    # A burst of assertions under kids nobody published, all within the refetch interval.
    for _ in range(12):
        clock.advance(0.5)
        bogus = assertion(client_id, new_key(), clock)
        assert_refused(client_credentials(app, bogus), registry, client_id, bogus, "signature")
    assert jwks_server.fetches == 1

    # Past the interval one more refetch is allowed, and only one, however many unknown kids arrive.
    clock.advance(interval)
    for _ in range(5):
        bogus = assertion(client_id, new_key(), clock)
        assert_refused(client_credentials(app, bogus), registry, client_id, bogus, "signature")
    assert jwks_server.fetches == 2

    # A genuine rotation right after that waits for the interval, then succeeds with one fetch.
    rotated = new_key()
    jwks_server.publish(rotated)
    early = assertion(client_id, rotated, clock)
    assert_refused(client_credentials(app, early), registry, client_id, early, "signature")
    assert jwks_server.fetches == 2
    clock.advance(interval + 1)
    assert_tokens(client_credentials(app, assertion(client_id, rotated, clock)))
    assert jwks_server.fetches == 3


def test_known_key_keeps_working_during_a_burst_of_unknown_kids(
    app: Flask, registry: Registry, clock: FrozenClock, jwks_server: JwksServer
) -> None:
    key = new_key()
    jwks_server.publish(key)
    client_id = api_client(registry, jwks_uri=jwks_server.url)
    for _ in range(3):
        bogus = assertion(client_id, new_key(), clock)
        assert client_credentials(app, bogus).status_code == 401
        assert_tokens(client_credentials(app, assertion(client_id, key, clock)))
    assert jwks_server.fetches == 1


# -- registration ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "jwks_uri",
    ["ftp://127.0.0.1/jwks.json", "http://example.com/jwks.json", "file:///etc/passwd", "not a url"],
)
def test_registration_refuses_a_jwks_uri_that_is_not_https_or_loopback(
    registry: Registry, jwks_uri: str
) -> None:
    with pytest.raises(InvalidInput):
        api_client(registry, jwks_uri=jwks_uri)


@pytest.mark.parametrize("jwks_uri", ["https://agency.example.gov/jwks.json", "http://localhost:9009/jwks"])
def test_registration_accepts_https_or_loopback_jwks_uri(registry: Registry, jwks_uri: str) -> None:
    client = registry.clients.show(api_client(registry, jwks_uri=jwks_uri))
    assert client.jwks_uri == jwks_uri and client.jwks is None


def test_registration_refuses_both_jwks_and_jwks_uri(registry: Registry) -> None:
    with pytest.raises(InvalidInput):
        api_client(registry, jwks=jwks_of(new_key()), jwks_uri="https://agency.example.gov/jwks.json")


def test_registration_refuses_neither_jwks_nor_jwks_uri(registry: Registry) -> None:
    with pytest.raises(InvalidInput):
        api_client(registry)


def test_registration_refuses_a_jwks_without_keys(registry: Registry) -> None:
    with pytest.raises(InvalidInput):
        api_client(registry, jwks={"kty": "EC"})
