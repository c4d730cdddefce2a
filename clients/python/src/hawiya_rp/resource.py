"""For agency APIs (resource servers): is the bearer access token in front of me good?

- ``AccessTokenValidator`` checks a JWT access token offline, as RFC 9068 section 4 says: ``typ``
  is ``at+jwt``, ``iss`` is the issuer, ``aud`` names this API, the signature verifies with a key
  the issuer publishes under an allowed algorithm, ``exp``/``iat`` hold, and the scope suffices.
  A revoked token stays valid offline until it expires (minutes); an API that must know at once
  uses introspection.
- ``IntrospectionValidator`` asks the provider (RFC 7662).

Both raise ``AccessTokenError``: 401 ``invalid_token``, or 403 ``insufficient_scope`` (RFC 6750 3.1).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from hawiya_rp.claims import check_audience, check_issuer, check_times, require
from hawiya_rp.discovery import Discovery
from hawiya_rp.errors import AccessTokenError, NetworkError
from hawiya_rp.http import HttpClient, UrllibClient
from hawiya_rp.jose import (
    DEFAULT_ALGORITHMS,
    JoseFailure,
    PrivateKey,
    check_algorithms,
    client_assertion,
    verify,
)
from hawiya_rp.jwks import MIN_REFETCH, JwksCache

#: RFC 9068 2.1: the ``typ`` of a JWT access token (compared case-insensitively, RFC 7515 4.1.9).
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")
#: RFC 9068 2.2: claims every JWT access token has.
REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _scopes(scope: str | Iterable[str] | None) -> list[str]:
    if scope is None:
        return []
    return scope.split() if isinstance(scope, str) else [item for item in scope if item]


def check_scope(claims: dict[str, Any], scope: str | Iterable[str] | None) -> None:
    """Every scope of ``scope`` was granted (the ``scope`` claim, space-separated: RFC 9068 2.2.3)."""
    needed = _scopes(scope)
    granted = claims.get("scope")
    have = set(granted.split()) if isinstance(granted, str) else set()
    if any(item not in have for item in needed):
        raise AccessTokenError(
            "the access token does not grant the scope this API needs",
            reason="insufficient_scope",
            status=403,
            error="insufficient_scope",
            scope=" ".join(needed),
        )


def _check_typ(header: dict[str, Any]) -> None:
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        # RFC 9068 4: an ID token or any other JWT is not an access token.
        raise AccessTokenError("the token is not a JWT access token (typ)", reason="wrong_type")


class AccessTokenValidator:
    """Validate RFC 9068 JWT access tokens meant for ``audience`` (the API's resource identifier),
    offline, with the keys of ``issuer`` (found by discovery, or at ``jwks_uri``)."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        http: HttpClient | None = None,
        clock: Callable[[], float] = time.time,
        *,
        jwks_uri: str | None = None,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway: int = 60,
        min_refetch: float = MIN_REFETCH,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.algorithms = check_algorithms(algorithms)
        self.leeway = leeway
        self._clock = clock
        client: HttpClient = http or UrllibClient()
        self.discovery = Discovery(issuer, client, clock)
        where: str | Callable[[], str] = jwks_uri or (lambda: self.discovery.endpoint("jwks_uri"))
        #: The issuer's signing keys.
        self.jwks = JwksCache(where, client, clock, min_refetch=min_refetch)

    def validate(self, token: str, *, scope: str | Iterable[str] | None = None) -> dict[str, Any]:
        """The token's claims when it is valid for this API with ``scope`` (space-separated or a
        list; all are needed); AccessTokenError otherwise."""
        try:
            _, claims = verify(token, self.jwks.verification_key, self.algorithms, check_header=_check_typ)
        except JoseFailure as failure:
            raise AccessTokenError(
                f"the access token is refused: {failure.message}", reason=failure.reason
            ) from None
        require(claims, REQUIRED_CLAIMS, AccessTokenError)
        check_issuer(claims, self.issuer, AccessTokenError)
        check_audience(claims, self.audience, AccessTokenError)
        check_times(claims, now=self._clock(), leeway=self.leeway, error=AccessTokenError)
        check_scope(claims, scope)
        return claims


class IntrospectionValidator:
    """Ask the provider whether a token is active (RFC 7662), as a registered confidential client.

    A secret goes in HTTP Basic (``client_secret_basic``), or in the form when the client is
    registered with ``auth_method="client_secret_post"``.
    ``issuer`` and ``audience``, when given, must match the answer's ``iss`` and ``aud``. A provider
    that cannot be asked raises NetworkError (the API answers 503: the token is not at fault).
    """

    def __init__(
        self,
        introspection_endpoint: str,
        *,
        client_id: str,
        client_secret: str | None = None,
        private_jwk: dict[str, Any] | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        http: HttpClient | None = None,
        clock: Callable[[], float] = time.time,
        leeway: int = 60,
        auth_method: str | None = None,
    ) -> None:
        if (client_secret is None) == (private_jwk is None):
            raise ValueError("introspection needs the client's secret or its private JWK (one of them)")
        implied = "private_key_jwt" if private_jwk is not None else "client_secret_basic"
        allowed = (implied, "client_secret_post") if client_secret is not None else (implied,)
        if auth_method is not None and auth_method not in allowed:
            raise ValueError(f"auth_method {auth_method!r} does not fit; use one of {', '.join(allowed)}")
        self.auth_method = auth_method or implied
        self.endpoint = introspection_endpoint
        self.client_id = client_id
        self._secret = client_secret
        self._key = PrivateKey(private_jwk) if private_jwk is not None else None
        self.issuer = issuer
        self.audience = audience
        self._http: HttpClient = http or UrllibClient()
        self._clock = clock
        self.leeway = leeway

    def validate(self, token: str, *, scope: str | Iterable[str] | None = None) -> dict[str, Any]:
        """The introspection answer when the token is an active access token for this API with
        ``scope``; AccessTokenError otherwise."""
        form = {"token": token, "token_type_hint": "access_token"}
        auth: tuple[str, str] | None = None
        if self._key is not None:
            form["client_id"] = self.client_id
            form["client_assertion_type"] = ASSERTION_TYPE
            form["client_assertion"] = client_assertion(
                self._key, client_id=self.client_id, audience=self.issuer or self.endpoint, now=self._clock()
            )
        elif self._secret is not None and self.auth_method == "client_secret_post":
            form["client_id"] = self.client_id
            form["client_secret"] = self._secret
        elif self._secret is not None:
            auth = (quote(self.client_id, safe=""), quote(self._secret, safe=""))
        response = self._http.post_form(self.endpoint, form, auth)
        if response.status != 200 or not isinstance(response.json, dict):
            raise NetworkError(
                f"the introspection endpoint answered HTTP {response.status}", reason="introspection_failed"
            )
        answer: dict[str, Any] = response.json
        if answer.get("active") is not True:
            raise AccessTokenError("the access token is not active", reason="inactive")
        token_type = answer.get("token_type")
        if isinstance(token_type, str) and token_type.lower() not in ("bearer", "access_token"):
            raise AccessTokenError("the token is not an access token", reason="wrong_type")
        if self.issuer is not None and "iss" in answer:
            check_issuer(answer, self.issuer, AccessTokenError)
        if self.audience is not None:
            check_audience(answer, self.audience, AccessTokenError)
        exp = answer.get("exp")
        if isinstance(exp, int | float) and self._clock() > exp + self.leeway:
            raise AccessTokenError("the access token has expired", reason="expired")
        check_scope(answer, scope)
        return answer
