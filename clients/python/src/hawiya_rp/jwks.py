"""The provider's signing keys (its JWK Set at ``jwks_uri``, RFC 7517 5), cached.

- Fresh for the response's ``Cache-Control: max-age`` (less ``Age``), capped at ``MAX_MAX_AGE``;
  ``DEFAULT_MAX_AGE`` when the provider says nothing.
- A token signed with a ``kid`` the cache does not know makes it refetch at once, so a key the
  provider has just started signing with (rotation) never breaks validation, and a key it revoked
  stops verifying as soon as a token needs the set again.
- No fetch of any kind happens within ``min_refetch`` seconds of the previous one: a flood of
  tokens with made-up kids costs the provider at most one request per interval.
- When a fetch fails, the keys already held stay in use; with none held, validation fails.
- Each key is imported once per fetch, never per token (``jose.VerificationKey``), and a fetch
  replaces every key: a kid published again with other key material verifies only with the new one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import Key, import_key

from hawiya_rp.errors import HawiyaRPError
from hawiya_rp.http import HttpClient, max_age
from hawiya_rp.jose import JoseFailure, VerificationKey, shown_kid

#: Seconds a JWK Set is fresh when the provider sends no max-age.
DEFAULT_MAX_AGE = 300
#: The longest a JWK Set is trusted without asking again, whatever the provider says (one day).
MAX_MAX_AGE = 86400
#: Least seconds between two fetches.
MIN_REFETCH = 5.0
_KEY_TYPES = {"EC": "EC", "RSA": "RSA", "OKP": "OKP"}

log = logging.getLogger(__name__)


class JwksCache:
    """The keys at ``jwks_uri`` (a URL, or a callable giving it, for discovery to resolve lazily)."""

    def __init__(
        self,
        jwks_uri: str | Callable[[], str],
        http: HttpClient,
        clock: Callable[[], float],
        *,
        min_refetch: float = MIN_REFETCH,
        default_max_age: int = DEFAULT_MAX_AGE,
        max_max_age: int = MAX_MAX_AGE,
    ) -> None:
        self._jwks_uri = jwks_uri
        self._http = http
        self._clock = clock
        self.min_refetch = min_refetch
        self.default_max_age = default_max_age
        self.max_max_age = max_max_age
        self._by_kid: dict[str, VerificationKey] = {}
        self._without_kid: list[VerificationKey] = []
        self._fresh_until = float("-inf")
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        #: How many times the set was requested from the provider (tests and metrics).
        self.fetches = 0

    @property
    def kids(self) -> frozenset[str]:
        """The kids currently held."""
        return frozenset(self._by_kid)

    def key(self, kid: str | None, alg: str) -> Key:
        """The key to verify a token with ``kid`` under ``alg``; JoseFailure("unknown_key") when
        the provider does not publish it (after at most one refetch)."""
        return self.verification_key(kid, alg).key

    def verification_key(self, kid: str | None, alg: str) -> VerificationKey:
        """``key``, as imported once per fetch and ready to verify (what ``jose.verify`` uses)."""
        now = self._clock()
        if now >= self._fresh_until:
            self._refresh(now, stale=True)
        found = self._find(kid, alg)
        if found is None:
            # An unknown kid may be a key the provider has just begun to sign with.
            self._refresh(now, stale=False)
            found = self._find(kid, alg)
        if found is None:
            raise JoseFailure("unknown_key", f"the provider publishes no key {shown_kid(kid)} for {alg}")
        return found

    def refresh(self) -> None:
        """Fetch the set now (unless fetched within ``min_refetch`` seconds)."""
        self._refresh(self._clock(), stale=False)

    def _find(self, kid: str | None, alg: str) -> VerificationKey | None:
        if kid is not None:
            return self._by_kid.get(kid)
        # No kid: acceptable only when exactly one published key can verify ``alg``.
        usable = [key for key in self._without_kid + list(self._by_kid.values()) if _fits(key.key, alg)]
        return usable[0] if len(usable) == 1 else None

    def _refresh(self, now: float, *, stale: bool) -> None:
        with self._lock:
            if stale and now < self._fresh_until:
                return  # another thread fetched while this one waited
            if self._fetched_at is not None and now - self._fetched_at < self.min_refetch:
                return
            self._fetched_at = now
            self.fetches += 1
            try:
                document, lifetime = self._fetch()
            except (HawiyaRPError, JoseFailure) as exc:  # unreachable, undiscoverable or not a JWKS
                log.warning("JWKS fetch failed (%s); keeping %d known keys", exc, len(self._by_kid))
                if not self._by_kid and not self._without_kid:
                    raise JoseFailure(
                        "jwks_unavailable", "the provider's keys could not be fetched"
                    ) from None
                return
            self._load(document)
            self._fresh_until = now + lifetime

    def _fetch(self) -> tuple[dict[str, Any], float]:
        uri = self._jwks_uri() if callable(self._jwks_uri) else self._jwks_uri
        response = self._http.get_json(uri)
        if response.status != 200 or not isinstance(response.json, dict):
            raise JoseFailure("jwks_unavailable", f"the JWKS endpoint answered {response.status}")
        if not isinstance(response.json.get("keys"), list):
            raise JoseFailure("jwks_unavailable", "the JWKS endpoint did not answer a JWK Set")
        said = max_age(response.headers)
        lifetime = self.default_max_age if said is None else min(said, self.max_max_age)
        return response.json, lifetime

    def _load(self, document: dict[str, Any]) -> None:
        by_kid: dict[str, VerificationKey] = {}
        without_kid: list[VerificationKey] = []
        for data in document["keys"]:
            if not isinstance(data, dict) or data.get("kty") not in _KEY_TYPES:
                continue  # symmetric or unknown key types never verify anything here
            if data.get("use", "sig") != "sig" or "d" in data:
                continue
            try:
                key = VerificationKey(import_key(data))
            except (JoseError, ValueError, TypeError, KeyError):
                log.warning("ignoring an unreadable key in the provider's JWKS (kid %r)", data.get("kid"))
                continue
            kid = data.get("kid")
            if isinstance(kid, str) and kid:
                by_kid[kid] = key
            else:
                without_kid.append(key)
        self._by_kid = by_kid
        self._without_kid = without_kid


def _fits(key: Key, alg: str) -> bool:
    if key.get("alg") not in (None, alg):
        return False
    wanted = {"ES": "EC", "RS": "RSA", "PS": "RSA", "Ed": "OKP"}.get(alg[:2])
    return key.key_type == wanted
