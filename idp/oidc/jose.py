"""The boundary for JWTs that come *in*: client assertions (RFC 7523, ``private_key_jwt``).

Only asymmetric algorithms are accepted (``none`` and HMAC never: an HMAC "key" would be the
client's public key, the classic algorithm-confusion attack). joserfc's exceptions stay here.
The client's keys come from its registered JWKS or from its ``jwks_uri``, fetched through the
outbound boundary (``idp.outbound``, agency policy) and kept by ``ClientKeyCache``: refreshed ahead
of expiry in the background, one fetch per URL at a time, failures remembered with backoff, an
unknown ``kid`` refetching at most once per ``refetch_interval`` seconds.

The audience is the issuer identifier, as one string: an array is refused, so an assertion made for
another server cannot be replayed here by listing both (the audience-injection attack on RFC 7523).
Clients registered before that rule may still name the token endpoint URL until
``LEGACY_AUDIENCE_REMOVAL`` (docs/clients.md); each such use is reported to the caller.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError, UnsupportedAlgorithmError
from joserfc.jwk import KeySet

from idp.clock import Clock
from idp.inbound import InvalidJson, check_json_bounds
from idp.outbound import BadAnswer, Outbound, OutboundError
from idp.storage.ephemeral import EphemeralStore
from idp.storage.ephemeral.worker import QueueWorker

log = logging.getLogger("idp.oidc.jose")

#: RFC 7523 section 2.2.
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGS = ("RS256", "PS256", "ES256", "EdDSA")
#: The longest lifetime an assertion may claim (exp - iat), seconds.
MAX_ASSERTION_LIFETIME = 300
LEEWAY = 30
#: The longest client assertion read at all (a signed JWT of a few claims is well under 4 KiB).
MAX_ASSERTION_BYTES = 16 * 1024
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


def _bounded(assertion: str) -> bytes:
    """The assertion as bytes, once it and its payload are known to be of a sane size and depth
    (joserfc bounds the header, not the payload); InvalidJson otherwise. Whether it is a JWS at
    all is left to the callers."""
    if len(assertion) > MAX_ASSERTION_BYTES:
        raise InvalidJson("the client assertion is too large")
    try:
        raw = assertion.encode()
    except UnicodeEncodeError:
        raise InvalidJson("the client assertion is not UTF-8") from None
    try:
        payload = jws.extract_compact(raw).payload
    except (JoseError, ValueError, TypeError, AttributeError):
        return raw
    check_json_bounds(payload, what="the client assertion's payload")
    return raw


def unverified_client_id(assertion: str) -> str | None:
    """The ``iss`` of an assertion, read before verification to find the client; InvalidJson
    when its payload is too large or nested too deeply to be read at all."""
    raw = _bounded(assertion)
    try:
        payload = json.loads(jws.extract_compact(raw).payload)
    except (JoseError, ValueError, TypeError, AttributeError):
        return None
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    return issuer if isinstance(issuer, str) else None


@dataclass(frozen=True)
class FetchedKeys:
    """A client's JWK Set as fetched, and how long its server said it may be cached (None: unsaid)."""

    jwks: dict[str, Any]
    max_age: int | None = None


_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)


def fetch_client_keys(outbound: Outbound, url: str) -> FetchedKeys:
    """The JWK Set at a client's ``jwks_uri``, through the agency policy; OutboundError on any
    failure (the caller logs its reason; the client is told nothing of it)."""
    answer = outbound.get(url, headers={"Accept": "application/json, application/jwk-set+json"})
    data = answer.json()
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise BadAnswer("not a JWK Set")
    control = answer.headers.get("cache-control", "")
    found = _MAX_AGE.search(control)
    no_store = "no-store" in control.lower() or "no-cache" in control.lower()
    return FetchedKeys(data, 0 if no_store else int(found.group(1)) if found else None)


def _kids(jwks: dict[str, Any]) -> set[str]:
    return {k["kid"] for k in jwks["keys"] if isinstance(k, dict) and isinstance(k.get("kid"), str)}


@dataclass
class _Entry:
    """What the cache knows of one jwks_uri (guarded by the cache's lock)."""

    jwks: dict[str, Any] | None = None
    #: Clock times: the last good fetch, when its keys go stale, the last fetch started.
    fetched_at: float = 0.0
    expires_at: float = 0.0
    attempted_at: float | None = None
    #: Failures in a row, and the earliest time the next fetch may start after them.
    failures: int = 0
    retry_at: float = 0.0
    #: Set when the fetch under way ends; None when none is.
    pending: threading.Event | None = None
    #: When a request last asked for these keys (entries nobody asks for are dropped).
    used_at: float = 0.0


class ClientKeyCache:
    """Clients' public keys from their ``jwks_uri``, kept per process.

    - Each set is kept for its Cache-Control max-age (bounded by ``min_ttl`` and ``max_ttl``, else
      ``ttl``) and refreshed ahead of expiry by ``refresh_due`` (the refresher thread), not in a
      request.
    - One fetch per URL at a time, in the cache's own threads: a request that needs keys starts
      it, or joins the one under way, and waits for it at most ``wait`` seconds (real time). A
      slow or dead agency host therefore holds a request no longer than ``wait``; the fetch itself
      ends within the outbound deadline and fills the cache for the next request.
    - A failure is remembered: no fetch of that URL for ``backoff`` seconds, doubled per failure up
      to ``backoff_max``; meanwhile the last good keys serve (at most ``max_ttl`` after they were
      fetched).
    - An unknown ``kid`` refetches at most once per ``refetch_interval`` seconds per URL.

    Per process, not in the ephemeral store: the keys are public, a fetch per process per lifetime
    costs an agency nothing, and a shared cache would add a store round trip to every assertion.
    """

    def __init__(
        self,
        clock: Clock,
        fetch: Callable[[str], FetchedKeys],
        *,
        refetch_interval: float = 10,
        wait: float = 2.0,
        ttl: int = 3600,
        min_ttl: int = 60,
        max_ttl: int = 24 * 3600,
        backoff: float = 5,
        backoff_max: float = 600,
        threads: int = 4,
    ) -> None:
        self._clock = clock
        self._fetch = fetch
        self._refetch_interval = refetch_interval
        self._wait = wait
        self._ttl, self._min_ttl, self._max_ttl = ttl, min_ttl, max_ttl
        self._backoff, self._backoff_max = backoff, backoff_max
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        # Bounded: however many agency hosts hang at once, at most ``threads`` fetches run.
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hawiya-jwks")

    def keys(self, url: str, *, kid: str | None) -> dict[str, Any]:
        """The JWK Set at ``url``; fetched when none is kept, when it expired, or when ``kid`` is
        unknown and the last fetch is older than the refetch interval. InvalidAssertion when there
        are no keys to use."""
        now = self._clock.now()
        with self._lock:
            entry = self._entries.setdefault(url, _Entry())
            entry.used_at = now
            jwks = entry.jwks
            known = jwks is not None and (kid is None or kid in _kids(jwks))
            if jwks is not None and known and now < entry.expires_at:
                return jwks
            recent = entry.attempted_at is not None and now - entry.attempted_at < self._refetch_interval
            # A known kid past expiry, or no keys at all, may fetch at once; an unknown kid in keys
            # still fresh may not, within the refetch interval (a stream of made-up kids).
            stale_or_empty = jwks is None or now >= entry.expires_at
            if entry.pending is None and now >= entry.retry_at and (stale_or_empty or not recent):
                self._start(url, entry, now)
            pending = entry.pending
        if pending is not None:
            pending.wait(self._wait)
        with self._lock:
            entry = self._entries[url]
            if entry.jwks is not None and self._clock.now() < entry.fetched_at + self._max_ttl:
                return entry.jwks
        raise InvalidAssertion("the client's jwks_uri could not be fetched")

    def refresh_due(self, limit: int, *, ahead: float = 30.0) -> int:
        """Start a background fetch for (at most ``limit``) kept sets expiring within ``ahead``
        seconds; forget sets no request asked for in ``max_ttl``. How many fetches it started."""
        now = self._clock.now()
        started = 0
        with self._lock:
            for url, entry in list(self._entries.items()):
                if now - entry.used_at > self._max_ttl and entry.pending is None:
                    del self._entries[url]
                elif (
                    started < limit
                    and entry.jwks is not None
                    and entry.pending is None
                    and now >= entry.retry_at
                    and entry.expires_at - now <= ahead
                ):
                    self._start(url, entry, now)
                    started += 1
        return started

    def close(self) -> None:
        """Stop taking fetches (those under way end within the outbound deadline)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _start(self, url: str, entry: _Entry, now: float) -> None:
        """Start one fetch of ``url`` (the caller holds the lock and saw none under way)."""
        entry.pending = threading.Event()
        entry.attempted_at = now
        try:
            self._pool.submit(self._run, url, entry.pending)
        except RuntimeError:  # the pool is shut down: the process is stopping
            entry.pending.set()
            entry.pending = None

    def _run(self, url: str, done: threading.Event) -> None:
        try:
            fetched: FetchedKeys | None = self._fetch(url)
            reason = ""
        except OutboundError as exc:
            fetched, reason = None, f"{exc.reason}: {exc}"
        except Exception as exc:  # a broken fetch must still end the flight, or requests would wait
            log.exception("fetching a client's jwks_uri failed")
            fetched, reason = None, type(exc).__name__
        now = self._clock.now()
        wait = 0.0
        with self._lock:
            entry = self._entries.setdefault(url, _Entry())
            if fetched is not None:
                age = self._ttl if fetched.max_age is None else fetched.max_age
                entry.jwks = fetched.jwks
                entry.fetched_at = now
                entry.expires_at = now + min(max(age, self._min_ttl), self._max_ttl)
                entry.failures, entry.retry_at = 0, 0.0
            else:
                entry.failures += 1
                wait = min(self._backoff * 2 ** (entry.failures - 1), self._backoff_max)
                entry.retry_at = now + wait
            entry.pending = None
            failures = entry.failures
        done.set()
        if fetched is None:
            # The reason is for operators; the client (and whoever registered it) never sees it.
            log.warning("jwks_uri %s failed (%s); failure %d, next in %.0f s", url, reason, failures, wait)


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
            header = jws.extract_compact(_bounded(assertion)).protected
        except InvalidJson as refused:
            raise InvalidAssertion(str(refused)) from None
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


class ClientKeyRefresher(QueueWorker):
    """Refreshes clients' JWK Sets ahead of their expiry from a daemon thread (every ``interval``
    seconds, those expiring within twice that), so a token request rarely waits on an agency."""

    def __init__(self, cache: ClientKeyCache, *, interval: float = 15.0) -> None:
        super().__init__(
            lambda limit: cache.refresh_due(limit, ahead=2 * interval),
            name="hawiya-jwks-refresher",
            what="refreshing clients' JWK Sets",
            batch=100,
            interval=interval,
        )
