"""Independent checks of the tokens Hawiya issues, as an agency would make them with its own
libraries: every signature is verified against the published JWKS (fetched from ``jwks_uri``) by
PyJWT and again by python-jose, each pinned to exactly the algorithm the token must use.

python-jose is used here only, never in ``idp/``
(docs/architecture.md section 2); it has no PS256/EdDSA, so it
checks RS256 and ES256 tokens only. Support modules are not assertion-rewritten by pytest, so each
check here states what it found.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from jose import jwt as jose_jwt

#: Allowed clock skew between this test process and the IdP, seconds.
LEEWAY = 30
#: What a password-only sign-in must be reported as (levels of assurance; RFC 8176).
ACR_LOW = "urn:hawiya:loa:low"
AMR_PASSWORD = ["pwd"]


def at_hash(access_token: str) -> str:
    """OIDC Core 3.1.3.6 for a SHA-256 alg (RS256, ES256): left half of SHA-256, base64url."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def _expect(claims: dict[str, Any], name: str, expected: Any) -> None:
    actual = claims.get(name, "<missing>")
    assert actual == expected, f"{name}: expected {expected!r}, got {actual!r}"


@dataclass(frozen=True)
class Verified:
    """What both verifiers agreed a token says."""

    header: dict[str, Any]
    claims: dict[str, Any]


class IndependentVerifier:
    """Verify Hawiya's tokens with PyJWT and python-jose against the issuer's published keys."""

    def __init__(self, issuer: str) -> None:
        metadata = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
        assert metadata["issuer"] == issuer, f"discovery names issuer {metadata['issuer']!r}"
        self.issuer = issuer
        self.jwks_uri: str = metadata["jwks_uri"]
        self.jwks: dict[str, Any] = requests.get(self.jwks_uri, timeout=10).json()
        self._pyjwk_client = jwt.PyJWKClient(self.jwks_uri, cache_keys=True)

    def _both(self, token: str, *, alg: str, audience: str, access_token: str | None = None) -> Verified:
        """Signature, iss, aud, exp, iat by PyJWT and by python-jose; they must agree."""
        signing_key = self._pyjwk_client.get_signing_key_from_jwt(token)
        decoded = jwt.decode_complete(
            token,
            signing_key.key,
            algorithms=[alg],
            audience=audience,
            issuer=self.issuer,
            leeway=LEEWAY,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
        header: dict[str, Any] = decoded["header"]
        claims: dict[str, Any] = decoded["payload"]
        assert header["alg"] == alg, f"signed with {header['alg']}, expected {alg}"

        kid = jose_jwt.get_unverified_header(token)["kid"]
        jwk = next(key for key in self.jwks["keys"] if key["kid"] == kid)
        jose_claims = jose_jwt.decode(
            token,
            jwk,
            algorithms=[alg],
            audience=audience,
            issuer=self.issuer,
            access_token=access_token,  # python-jose then checks at_hash itself
            options={"leeway": LEEWAY, "verify_at_hash": access_token is not None},
        )
        assert jose_claims == claims, "PyJWT and python-jose read different claims"

        now = time.time()
        iat, exp = claims["iat"], claims["exp"]
        assert isinstance(iat, int) and isinstance(exp, int), f"iat={iat!r} exp={exp!r} must be integers"
        assert iat - LEEWAY <= now < exp + LEEWAY, f"now={now} is outside iat={iat}..exp={exp}"
        assert exp > iat, f"exp={exp} is not after iat={iat}"
        return Verified(header, claims)

    def id_token(
        self,
        token: str,
        *,
        alg: str,
        client_id: str,
        nonce: str,
        access_token: str,
    ) -> dict[str, Any]:
        """An ID token (OIDC Core 3.1.3.7) for ``client_id`` after a password sign-in."""
        claims = self._both(token, alg=alg, audience=client_id, access_token=access_token).claims
        assert claims["aud"] in (client_id, [client_id]), f"aud={claims['aud']!r}, expected only {client_id}"
        assert claims.get("azp", client_id) == client_id, f"azp={claims['azp']!r}"
        _expect(claims, "nonce", nonce)
        _expect(claims, "at_hash", at_hash(access_token))
        _expect(claims, "acr", ACR_LOW)
        _expect(claims, "amr", AMR_PASSWORD)
        sid = claims.get("sid")
        assert isinstance(sid, str) and sid, f"sid={sid!r}: the ID token must name the SSO session"
        auth_time = claims.get("auth_time")
        assert isinstance(auth_time, int), f"auth_time={auth_time!r}"
        assert auth_time <= claims["iat"] + LEEWAY, f"auth_time={auth_time} is after iat={claims['iat']}"
        assert auth_time > time.time() - 300, f"auth_time={auth_time} is not this sign-in"
        return claims

    def access_token(self, token: str, *, client_id: str, expires_in: int) -> dict[str, Any]:
        """An RFC 9068 access token meant for userinfo (audience: the issuer), issued to ``client_id``."""
        verified = self._both(token, alg="ES256", audience=self.issuer)
        header, claims = verified.header, verified.claims
        # RFC 9068 2.1: typ "at+jwt" (the "application/" prefix may be omitted).
        typ = str(header.get("typ", "")).lower()
        assert typ in ("at+jwt", "application/at+jwt"), f"access token typ={header.get('typ')!r}"
        aud = claims["aud"]
        assert aud in (self.issuer, [self.issuer]), f"aud={aud!r}, expected only {self.issuer}"
        _expect(claims, "client_id", client_id)
        jti = claims.get("jti")
        assert isinstance(jti, str) and jti, f"jti={jti!r}"
        assert "openid" in str(claims.get("scope", "")).split(), f"scope={claims.get('scope')!r}"
        lifetime = claims["exp"] - claims["iat"]
        assert lifetime == expires_in, f"token lives {lifetime}s but expires_in says {expires_in}s"
        _expect(claims, "acr", ACR_LOW)
        assert isinstance(claims.get("auth_time"), int), f"auth_time={claims.get('auth_time')!r}"
        return claims
