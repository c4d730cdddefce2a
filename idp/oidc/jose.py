"""The boundary for JWTs that come *in*: client assertions (RFC 7523, ``private_key_jwt``).

Only asymmetric algorithms are accepted (``none`` and HMAC never: an HMAC "key" would be the
client's public key, the classic algorithm-confusion attack). joserfc's exceptions stay here.
The client's keys come from its registered JWKS or from its ``jwks_uri``, fetched over HTTP and
cached in memory, refetched on an unknown ``kid`` at most once per ``refetch_interval`` seconds.

The audience is the issuer identifier, as one string: an array is refused, so an assertion made for
another server cannot be replayed here by listing both (the audience-injection attack on RFC 7523).
Clients registered before that rule may still name the token endpoint URL until
``LEGACY_AUDIENCE_REMOVAL`` (docs/clients.md); each such use is reported to the caller.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError, UnsupportedAlgorithmError
from joserfc.jwk import KeySet

from idp.clock import Clock
from idp.storage.ephemeral import EphemeralStore

#: RFC 7523 section 2.2.
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGS = ("RS256", "PS256", "ES256", "EdDSA")
#: The longest lifetime an assertion may claim (exp - iat), seconds.
MAX_ASSERTION_LIFETIME = 300
LEEWAY = 30
MAX_JWKS_BYTES = 64 * 1024
#: The announced end of the token endpoint URL as an assertion's ``aud`` for clients flagged
#: ``legacy_assertion_audience``: the first release after this date removes the flag (docs/clients.md).
LEGACY_AUDIENCE_REMOVAL = "2027-06-30"


class _AssertionRegistry(jws.JWSRegistry):
    """joserfc's JWS registry narrowed to ASSERTION_ALGS, without its RFC 9864 warning on ``EdDSA``.

    Clients sign with Ed25519 keys under the name ``EdDSA`` (what RFC 8037 and OIDC registration
    call it); joserfc warns on every use of that name, which would only flood the log (and turns
    into an error wherever warnings are errors, as in the test suite).
    """

    def get_alg(self, name: str) -> jws.JWSAlgModel:
        """The algorithm ``name`` if it is accepted for assertions (and allowed by this registry)."""
        if name not in ASSERTION_ALGS or (self.allowed and name not in self.allowed):
            raise UnsupportedAlgorithmError(f"Algorithm of '{name}' is not allowed")
        return self.algorithms[name]


class InvalidAssertion(Exception):
    """A client assertion was refused; the message says why (safe to log, holds no token)."""


@dataclass(frozen=True)
class AssertionClient:
    """What verifying an assertion needs to know about the client."""

    client_id: str
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    #: Registered before the issuer became the only audience: the token endpoint URL is still
    #: accepted as ``aud`` (deprecated until LEGACY_AUDIENCE_REMOVAL).
    legacy_audience: bool = False


@dataclass(frozen=True)
class VerifiedAssertion:
    """An assertion that verified: its claims, and whether it used the deprecated audience."""

    claims: dict[str, Any]
    #: ``aud`` was the token endpoint URL (accepted only for a client flagged legacy).
    legacy_audience: bool


def unverified_client_id(assertion: str) -> str | None:
    """The ``iss`` of an assertion, read before verification to find the client."""
    try:
        payload = json.loads(jws.extract_compact(assertion.encode()).payload)
    except (JoseError, ValueError, TypeError, AttributeError):
        return None
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    return issuer if isinstance(issuer, str) else None


def _fetch(url: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - https or loopback only
        body = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise InvalidAssertion("the client's JWKS is too large")
    data = json.loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise InvalidAssertion("the client's jwks_uri did not return a JWK Set")
    return data


class ClientKeyCache:
    """Clients' public keys from their jwks_uri, cached, with a rate-limited refetch."""

    def __init__(
        self,
        clock: Clock,
        *,
        refetch_interval: int = 10,
        fetch: Callable[[str], dict[str, Any]] = _fetch,
    ) -> None:
        self._clock = clock
        self._refetch_interval = refetch_interval
        self._fetch = fetch
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def keys(self, url: str, *, kid: str | None) -> dict[str, Any]:
        """The JWK Set at ``url``; refetched when ``kid`` is unknown and the last fetch is old."""
        with self._lock:
            cached = self._cache.get(url)
        now = self._clock.now()
        if cached is not None:
            fetched_at, jwks = cached
            known = kid is None or any(k.get("kid") == kid for k in jwks["keys"])
            if known or now - fetched_at < self._refetch_interval:
                return jwks
        try:
            jwks = self._fetch(url)
        except InvalidAssertion:
            raise
        except Exception as exc:  # network, HTTP status, JSON: all mean "no keys now"
            if cached is not None:
                return cached[1]
            raise InvalidAssertion("the client's jwks_uri could not be fetched") from exc
        with self._lock:
            self._cache[url] = (now, jwks)
        return jwks


class AssertionVerifier:
    """Verify ``private_key_jwt`` client assertions (RFC 7523 section 3, OIDC Core 9)."""

    def __init__(
        self,
        store: EphemeralStore,
        clock: Clock,
        key_cache: ClientKeyCache,
        *,
        issuer: str,
        token_endpoint: str,
    ) -> None:
        self._store = store
        self._clock = clock
        self._key_cache = key_cache
        self._issuer = issuer
        self._token_endpoint = token_endpoint

    def verify(self, assertion: str, client: AssertionClient) -> VerifiedAssertion:
        """The verified assertion if it is valid for ``client``; InvalidAssertion otherwise."""
        try:
            header = jws.extract_compact(assertion.encode()).protected
        except (JoseError, ValueError, TypeError):
            raise InvalidAssertion("the assertion is not a compact JWS") from None
        alg = header.get("alg")
        if alg not in ASSERTION_ALGS:
            raise InvalidAssertion(f"assertion algorithm {alg!r} is not accepted")
        if client.jwks is not None:
            jwks = client.jwks
        elif client.jwks_uri:
            jwks = self._key_cache.keys(client.jwks_uri, kid=header.get("kid"))
        else:
            raise InvalidAssertion("the client has no registered keys")
        try:
            keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
            token = jwt.decode(assertion, keys, registry=_AssertionRegistry(algorithms=[alg]))
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidAssertion("the assertion's signature does not verify") from exc
        claims = dict(token.claims)
        client_id = client.client_id
        # RFC 7523 3: iss and sub are the client_id.
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise InvalidAssertion("the assertion's iss and sub must be the client_id")
        legacy = self._check_audience(claims.get("aud"), client)
        self._check_times_and_jti(claims, client_id)
        return VerifiedAssertion(claims, legacy_audience=legacy)

    def _check_audience(self, aud: object, client: AssertionClient) -> bool:
        """True when the deprecated token endpoint audience was used; InvalidAssertion unless ``aud``
        is the issuer (or, for a legacy client, the token endpoint URL) as a single string."""
        if not isinstance(aud, str):
            raise InvalidAssertion("the assertion's aud must be a single string: the issuer")
        if aud == self._issuer:
            return False
        if aud == self._token_endpoint and client.legacy_audience:
            return True
        raise InvalidAssertion("the assertion's aud must be the issuer")

    def _check_times_and_jti(self, claims: dict[str, Any], client_id: str) -> None:
        now = self._clock.now()
        exp, iat, nbf = claims.get("exp"), claims.get("iat", now), claims.get("nbf", now)
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise InvalidAssertion("the assertion needs a numeric exp")
        if not isinstance(nbf, int | float):
            raise InvalidAssertion("the assertion's nbf must be numeric")
        if exp + LEEWAY < now:
            raise InvalidAssertion("the assertion has expired")
        # RFC 7519 4.1.5: not accepted before nbf (a little clock skew allowed).
        if nbf > now + LEEWAY:
            raise InvalidAssertion("the assertion is not valid yet (nbf)")
        if iat > now + LEEWAY or exp - min(iat, now) > MAX_ASSERTION_LIFETIME:
            raise InvalidAssertion("the assertion may live at most 5 minutes")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise InvalidAssertion("the assertion needs a jti")
        ttl = int(exp - now) + LEEWAY
        # RFC 7523 3 item 7: a jti is accepted once.
        if not self._store.add(f"assertion-jti:{client_id}:{jti}", b"1", max(ttl, 1)):
            raise InvalidAssertion("the assertion was already used")
