"""Access tokens (RFC 9068 JWTs) and ID tokens (OIDC Core 2), signed through the Signer.

Access tokens are ES256 JWTs with ``typ: at+jwt``, a ``jti`` and a short lifetime. Their ``aud`` is
the RFC 8707 ``resource`` the client asked for (one it registered), or else the issuer (for
userinfo). ID tokens use the client's registered ``id_token_signed_response_alg``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from idp.authn.results import AuthResult
from idp.clock import Clock
from idp.keys.signer import Signer
from idp.oidc.clients import RegisteredClient

ACCESS_TOKEN_ALG = "ES256"


@dataclass(frozen=True)
class AuthContext:
    """How the person authenticated, and in which SSO session (``sid``)."""

    auth: AuthResult
    sid: str | None


@dataclass(frozen=True)
class AccessToken:
    """A signed access token and what revocation needs to know about it."""

    value: str
    jti: str
    exp: int

    @property
    def kid(self) -> str:
        """The signing key's id, from the JWS header (our own token: no verification needed)."""
        header = self.value.split(".", 1)[0]
        data = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
        return str(data.get("kid", ""))


def half_hash(value: str, alg: str) -> str:
    """``at_hash``/``c_hash``: left half of the hash that matches ``alg`` (OIDC Core 3.1.3.6)."""
    bits = alg[2:] if alg != "EdDSA" else "512"
    digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[bits](
        value.encode("ascii")
    ).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).decode().rstrip("=")


class TokenIssuer:
    """Mint the tokens of one response."""

    def __init__(self, signer: Signer, clock: Clock, *, issuer: str, access_ttl: int, id_ttl: int) -> None:
        self._signer = signer
        self._clock = clock
        self.issuer = issuer
        self.access_ttl = access_ttl
        self._id_ttl = id_ttl

    def access_token(
        self,
        *,
        client: RegisteredClient,
        subject: str,
        scope: str,
        context: AuthContext | None,
        audience: str | None = None,
        organisation: str | None = None,
    ) -> AccessToken:
        """An RFC 9068 access token; ``context`` is None for client_credentials. ``organisation``
        (the id of the organisation the person acts for) goes in ``org_id`` for agency APIs."""
        now = int(self._clock.now())
        jti = secrets.token_urlsafe(16)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience or self.issuer,
            "client_id": client.client_id,
            "scope": scope,
            "iat": now,
            "exp": now + self.access_ttl,
            "jti": jti,
        }
        if context is not None:
            claims["auth_time"] = context.auth.auth_time
            claims["acr"] = context.auth.acr
            if context.sid:
                claims["sid"] = context.sid
        if organisation:
            claims["org_id"] = organisation
        value = self._signer.sign(claims, alg=ACCESS_TOKEN_ALG, typ="at+jwt")
        return AccessToken(value, jti, claims["exp"])

    def id_token(
        self,
        *,
        client: RegisteredClient,
        subject: str,
        context: AuthContext,
        nonce: str | None,
        access_token: str | None,
        extra_claims: dict[str, Any],
    ) -> str:
        """An ID token for ``client`` (OIDC Core 2 and 3.1.3.6)."""
        alg = client.id_token_signed_response_alg
        now = int(self._clock.now())
        claims: dict[str, Any] = {
            **extra_claims,
            "iss": self.issuer,
            "sub": subject,
            "aud": client.client_id,
            "azp": client.client_id,
            "iat": now,
            "exp": now + self._id_ttl,
            "auth_time": context.auth.auth_time,
            "acr": context.auth.acr,
            "amr": list(context.auth.amr),
        }
        if context.sid:
            claims["sid"] = context.sid
        if nonce:
            claims["nonce"] = nonce
        if access_token:
            claims["at_hash"] = half_hash(access_token, alg)
        return self._signer.sign(claims, alg=alg)
