"""The provider's metadata (OpenID Connect Discovery 1.0), fetched once and cached.

The document comes from ``{issuer}/.well-known/openid-configuration`` (section 4.1) and its
``issuer`` must be exactly the configured issuer (section 4.3), else it could send the relying
party to another provider's endpoints. It is cached for its ``Cache-Control: max-age`` (capped at
a day; an hour when it says nothing); when a refetch fails, the cached document stays in use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from hawiya_rp.errors import DiscoveryError, NetworkError
from hawiya_rp.http import HttpClient, max_age

WELL_KNOWN = "/.well-known/openid-configuration"
#: Seconds the document is kept when the provider sends no max-age, the least (even with
#: ``no-cache``: every request would otherwise fetch it) and the most it is kept.
DEFAULT_MAX_AGE = 3600
MIN_MAX_AGE = 60
MAX_MAX_AGE = 86400
#: Least seconds between two attempts to refetch a stale document.
RETRY_AFTER = 30
#: Members the code flow cannot do without (section 3).
REQUIRED = ("authorization_endpoint", "token_endpoint", "jwks_uri")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")

log = logging.getLogger(__name__)


def check_issuer(issuer: str) -> str:
    """Validate an issuer identifier (OIDC Core 2: https, no query or fragment); plain http is
    accepted only on a loopback host, for development."""
    parts = urlsplit(issuer)
    if parts.query or parts.fragment or not parts.hostname:
        raise ValueError(f"the issuer must be an absolute URL without query or fragment: {issuer!r}")
    loopback = parts.hostname in _LOOPBACK or parts.hostname.startswith("127.")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ValueError(f"the issuer must use https (http only on a loopback host): {issuer!r}")
    return issuer


class Discovery:
    """The cached metadata of ``issuer``."""

    def __init__(self, issuer: str, http: HttpClient, clock: Callable[[], float]) -> None:
        self.issuer = check_issuer(issuer)
        self._http = http
        self._clock = clock
        self._document: dict[str, Any] | None = None
        self._fresh_until = float("-inf")
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """Where the document is (section 4.1: the issuer, less any trailing slash, + well-known)."""
        return self.issuer.rstrip("/") + WELL_KNOWN

    def metadata(self) -> dict[str, Any]:
        """The provider's metadata; DiscoveryError when it cannot be had or is not valid."""
        now = self._clock()
        if self._document is not None and now < self._fresh_until:
            return self._document
        with self._lock:
            if self._document is not None and now < self._fresh_until:
                return self._document
            try:
                document, lifetime = self._fetch()
            except DiscoveryError as exc:
                if self._document is None:
                    raise
                log.warning("discovery refetch failed (%s); keeping the cached metadata", exc)
                self._fresh_until = now + RETRY_AFTER
                return self._document
            self._document = document
            self._fresh_until = now + lifetime
            return document

    def endpoint(self, name: str) -> str:
        """The metadata member ``name`` (an endpoint URL); DiscoveryError when the provider has none."""
        value = self.metadata().get(name)
        if not isinstance(value, str) or not value:
            raise DiscoveryError(f"the provider {self.issuer} advertises no {name}", reason=f"no_{name}")
        return value

    def _fetch(self) -> tuple[dict[str, Any], float]:
        try:
            response = self._http.get_json(self.url)
        except NetworkError as exc:
            raise DiscoveryError(f"the discovery document could not be fetched: {exc.message}") from None
        if response.status != 200 or not isinstance(response.json, dict):
            raise DiscoveryError(f"the discovery document answered HTTP {response.status}, not JSON metadata")
        document: dict[str, Any] = response.json
        if document.get("issuer") != self.issuer:
            # Discovery 4.3: the issuer MUST be identical to the one the document was fetched for.
            raise DiscoveryError(
                f"the discovery document is for issuer {document.get('issuer')!r}, not {self.issuer!r}",
                reason="wrong_issuer",
            )
        missing = [name for name in REQUIRED if not isinstance(document.get(name), str)]
        if missing:
            raise DiscoveryError(f"the discovery document lacks {', '.join(missing)}", reason="incomplete")
        said = max_age(response.headers)
        return document, DEFAULT_MAX_AGE if said is None else max(MIN_MAX_AGE, min(said, MAX_MAX_AGE))
