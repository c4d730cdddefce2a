"""A fake OpenID Provider for the library's unit tests: real keys (generated once per run), tokens
minted with joserfc, an HTTP client that answers from a table, and a clock moved by hand. Nothing
here imports the IdP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from hawiya_rp.http import Response
from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

ISSUER = "https://id.example.gov"
CLIENT_ID = "agency-permits"
REDIRECT_URI = "https://permits.example.gov/auth/callback"
API = "https://api.example.gov/records"
NOW = 1_800_000_000.0
WELL_KNOWN = f"{ISSUER}/.well-known/openid-configuration"
JWKS_URI = f"{ISSUER}/jwks.json"
TOKEN_ENDPOINT = f"{ISSUER}/token"


@cache
def signing_key(alg: str, generation: int = 0) -> Key:
    """A private key for ``alg`` (one per algorithm and generation, made once per run)."""
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True, auto_kid=True)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", private=True, auto_kid=True)
    return RSAKey.generate_key(2048, private=True, auto_kid=True)


def b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def half_hash(value: str, alg: str) -> str:
    """OIDC Core 3.1.3.6, written out independently of the library (EdDSA: SHA-512)."""
    algorithm = hashlib.sha512 if alg == "EdDSA" else getattr(hashlib, f"sha{alg[2:]}")
    digest = algorithm(value.encode()).digest()
    return b64(digest[: len(digest) // 2])


def sign(claims: dict[str, Any], key: Key, alg: str, **header: Any) -> str:
    """A compact JWS of ``claims`` (header members given override the defaults)."""
    protected = {"alg": alg, "kid": key.kid, **header}
    protected = {name: value for name, value in protected.items() if value is not None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # joserfc's RFC 9864 note on "EdDSA"
        return jws.serialize_compact(protected, json.dumps(claims).encode(), key, algorithms=[alg])


def sign_raw(claims: dict[str, Any], key: Key, alg: str, **header: Any) -> str:
    """A compact JWS signed without joserfc's header checks (for headers it would refuse to make)."""
    protected = {"alg": alg, "kid": key.kid, **header}
    signing_input = f"{b64(json.dumps(protected).encode())}.{b64(json.dumps(claims).encode())}"
    signature = jws.JWSRegistry.algorithms[alg].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(signature)}"


def unsigned(claims: dict[str, Any], **header: Any) -> str:
    """An ``alg: none`` token."""
    protected = {"alg": "none", **header}
    return f"{b64(json.dumps(protected).encode())}.{b64(json.dumps(claims).encode())}."


def hmac_signed(claims: dict[str, Any], secret: bytes, **header: Any) -> str:
    """An HS256 token MACed with ``secret`` (for the algorithm-confusion attack)."""
    protected = {"alg": "HS256", **header}
    signing_input = f"{b64(json.dumps(protected).encode())}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def public_jwk(key: Key, alg: str) -> dict[str, Any]:
    """The public JWK as a provider publishes it."""
    return {**key.as_dict(private=False), "kid": key.kid, "alg": alg, "use": "sig"}


class FakeClock:
    """A clock the test moves."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@dataclass
class Call:
    """One request the library made."""

    method: str
    url: str
    data: dict[str, str] | None = None
    auth: tuple[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Call], Response]


class FakeHttp:
    """An HttpClient answering from ``routes`` (URL -> Response or handler); records every call."""

    def __init__(self) -> None:
        self.routes: dict[str, Response | Handler] = {}
        self.calls: list[Call] = []

    def count(self, url: str) -> int:
        """How many requests went to ``url``."""
        return sum(1 for call in self.calls if call.url == url)

    def _answer(self, call: Call) -> Response:
        self.calls.append(call)
        route = self.routes.get(call.url.split("?", 1)[0])
        if route is None:
            return Response(404, {}, {"error": "not_found"})
        return route(call) if callable(route) else route

    def get_json(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        """GET."""
        return self._answer(Call("GET", url, headers=dict(headers or {})))

    def post_form(
        self,
        url: str,
        data: Mapping[str, str],
        auth: tuple[str, str] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """POST."""
        return self._answer(Call("POST", url, dict(data), auth, dict(headers or {})))


class Provider:
    """A fake OP: its keys (one per algorithm), discovery, JWKS, and tokens signed by it."""

    def __init__(self, http: FakeHttp, clock: FakeClock, *, max_age: int | None = 300) -> None:
        self.http = http
        self.clock = clock
        self.keys: dict[str, Key] = {alg: signing_key(alg) for alg in ("ES256", "RS256", "PS256", "EdDSA")}
        self.max_age = max_age
        self.metadata: dict[str, Any] = {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/authorize",
            "token_endpoint": TOKEN_ENDPOINT,
            "userinfo_endpoint": f"{ISSUER}/userinfo",
            "jwks_uri": JWKS_URI,
            "introspection_endpoint": f"{ISSUER}/introspect",
            "authorization_response_iss_parameter_supported": True,
        }
        http.routes[WELL_KNOWN] = lambda call: Response(200, {}, self.metadata)
        http.routes[JWKS_URI] = lambda call: self.jwks_response()

    def jwks_response(self) -> Response:
        """The JWKS answer, with the provider's current keys and Cache-Control."""
        headers = {"cache-control": f"public, max-age={self.max_age}"} if self.max_age is not None else {}
        keys = [public_jwk(key, alg) for alg, key in self.keys.items()]
        return Response(200, headers, {"keys": keys})

    @property
    def jwks_fetches(self) -> int:
        """How many times the library fetched the JWKS."""
        return self.http.count(JWKS_URI)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """ID token claims for the client, issued now (a None override removes the claim)."""
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "pairwise-subject-1",
            "aud": CLIENT_ID,
            "azp": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "auth_time": now - 10,
            "nonce": "n-0S6_WzA2Mj",
            "acr": "urn:hawiya:loa:low",
            "amr": ["pwd"],
            "sid": "sso-session-1",
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def id_token(self, alg: str = "ES256", *, access_token: str | None = None, **overrides: Any) -> str:
        """A signed ID token (with ``at_hash`` of ``access_token`` when given)."""
        claims = self.claims(**overrides)
        if access_token is not None and "at_hash" not in overrides:
            claims["at_hash"] = half_hash(access_token, alg)
        return sign(claims, self.keys[alg], alg)

    def access_token(self, *, typ: str | None = "at+jwt", **overrides: Any) -> str:
        """An RFC 9068 access token for ``API``."""
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "pairwise-subject-1",
            "aud": API,
            "client_id": CLIENT_ID,
            "scope": "openid records:read",
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_urlsafe(8),
        }
        claims.update(overrides)
        claims = {name: value for name, value in claims.items() if value is not None}
        return sign(claims, self.keys["ES256"], "ES256", typ=typ)

    def logout_token(self, *, alg: str = "ES256", typ: str | None = "logout+jwt", **overrides: Any) -> str:
        """A back-channel logout token for the client."""
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(12),
            "sub": "pairwise-subject-1",
            "sid": "sso-session-1",
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        }
        claims.update(overrides)
        claims = {name: value for name, value in claims.items() if value is not None}
        return sign(claims, self.keys[alg], alg, typ=typ)

    def rotate(self, alg: str = "ES256") -> Key:
        """Replace ``alg``'s key with a new one (the old one is no longer published)."""
        generation = 1
        while signing_key(alg, generation) is self.keys[alg]:
            generation += 1
        self.keys[alg] = signing_key(alg, generation)
        return self.keys[alg]
