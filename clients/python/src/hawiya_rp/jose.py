"""The JOSE boundary: every signed JWT that comes in is verified here, every one the relying party
signs is made here (RFC 7515, RFC 7519). joserfc does the cryptography; its exceptions stay here.

Only asymmetric algorithms from an allow-list are ever accepted. ``none`` and every HMAC
algorithm are refused even if configured: with HMAC, the "secret" would be whatever key the
verifier holds, so a token MACed with the provider's *public* key would verify (the classic
algorithm-confusion attack; OIDC Core 3.1.3.7 step 8 is about client secrets, which this library
never uses to verify). The ``kid`` in the header picks the key; a key from the header itself
(``jwk``, ``jku``, ``x5u``) is never used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError, UnsupportedAlgorithmError
from joserfc.jwk import Key

from hawiya_rp.keys import load_private_jwk, signing_alg

#: What an application accepts unless it narrows the list.
DEFAULT_ALGORITHMS = ("ES256", "RS256", "PS256", "EdDSA")
#: Every algorithm this library can verify.
SUPPORTED_ALGORITHMS = (
    "ES256",
    "ES384",
    "ES512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
)
#: Longest base64url header accepted (joserfc's own limit is 512 bytes decoded).
MAX_HEADER_LENGTH = 1024
_HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


class JoseFailure(Exception):
    """A JWS was refused: ``reason`` is the machine code, the message says why (no token in it)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


#: Given the header's ``kid`` (None when absent) and ``alg``, the key to verify with, or JoseFailure.
KeyLookup = Callable[[str | None, str], Key]


def check_algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    """Validate a configured allow-list; ValueError for ``none``, HMAC or unknown algorithms."""
    allowed = tuple(algorithms)
    for alg in allowed:
        if alg.lower() == "none" or alg.upper().startswith("HS"):
            raise ValueError(f"{alg} is never accepted: only asymmetric signatures are")
        if alg not in SUPPORTED_ALGORITHMS:
            raise ValueError(f"unsupported algorithm {alg!r}; supported: {', '.join(SUPPORTED_ALGORITHMS)}")
    if not allowed:
        raise ValueError("at least one signing algorithm must be allowed")
    return allowed


class _Registry(jws.JWSRegistry):
    """joserfc's JWS registry narrowed to one algorithm of the allow-list, without joserfc's RFC
    9864 warning on ``EdDSA`` (Hawiya signs Ed25519 under that name, as OIDC registration spells
    it; the warning would flood the log, and is an error wherever warnings are)."""

    def get_alg(self, name: str) -> jws.JWSAlgModel:
        """The algorithm ``name`` if this registry allows it."""
        if name not in SUPPORTED_ALGORITHMS or not self.allowed or name not in self.allowed:
            raise UnsupportedAlgorithmError(f"Algorithm of '{name}' is not allowed")
        return self.algorithms[name]


@cache
def _registry(alg: str) -> _Registry:
    return _Registry(algorithms=[alg])


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def unverified_header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWS, not verified: only to choose the key and algorithm."""
    if not isinstance(token, str) or not token:
        raise JoseFailure("malformed", "the token is empty")
    parts = token.split(".")
    if len(parts[0]) > MAX_HEADER_LENGTH:
        raise JoseFailure("malformed", "the token's header is too long")
    if len(parts) == 5:
        raise JoseFailure("malformed", "encrypted tokens (JWE) are not accepted")
    if len(parts) != 3:
        raise JoseFailure("malformed", "the token is not a compact JWS")
    try:
        header = json.loads(_b64decode(parts[0]))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise JoseFailure("malformed", "the token's header is not base64url JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
        raise JoseFailure("malformed", "the token's header names no algorithm")
    return header


def verify(
    token: str, lookup: KeyLookup, algorithms: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of ``token`` once its signature verifies with the key ``lookup``
    gives for its ``kid``, under an algorithm of ``algorithms``; JoseFailure otherwise."""
    header = unverified_header(token)
    alg = header["alg"]
    if alg not in algorithms or alg.lower() == "none" or alg.upper().startswith("HS"):
        raise JoseFailure("alg_not_allowed", f"algorithm {alg[:20]!r} is not accepted")
    if "crit" in header:
        # RFC 7515 4.1.11: extensions this library does not understand must make it refuse.
        raise JoseFailure("malformed", "the token has critical header extensions")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise JoseFailure("malformed", "the token's kid is not a string")
    key = lookup(kid, alg)
    try:
        signed = jws.deserialize_compact(token, key, registry=_registry(alg))
    except UnsupportedAlgorithmError:
        raise JoseFailure("alg_not_allowed", f"algorithm {alg!r} is not accepted") from None
    except JoseError as exc:
        reason = "bad_signature" if exc.error == "bad_signature" else "key_mismatch"
        if exc.error in ("decode_error", "exceeded_size", "invalid_header_value", "unsupported_header"):
            reason = "malformed"
        raise JoseFailure(
            reason, f"the token does not verify with key {shown_kid(kid)} ({exc.error})"
        ) from None
    except (ValueError, TypeError):
        raise JoseFailure("malformed", "the token cannot be decoded") from None
    try:
        claims = json.loads(signed.payload)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise JoseFailure("malformed", "the token's payload is not JSON") from None
    if not isinstance(claims, dict):
        raise JoseFailure("malformed", "the token's payload is not a JSON object")
    return header, claims


def shown_kid(kid: str | None) -> str:
    """A kid as it may appear in a message: it comes from an unverified header, so it is cut short."""
    return repr(kid if kid is None or len(kid) <= 64 else kid[:64] + "...")


def half_hash(value: str, alg: str) -> str:
    """``at_hash``/``c_hash`` (OIDC Core 3.1.3.6): the left half of the hash that goes with ``alg``,
    base64url. EdDSA (Ed25519) uses SHA-512, as Hawiya does."""
    bits = "512" if alg == "EdDSA" else alg[2:]
    digest = _HASHES[bits](value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).decode("ascii").rstrip("=")


class PrivateKey:
    """The relying party's private JWK, loaded once (an RSA import is slow), that signs."""

    def __init__(self, private_jwk: dict[str, Any]) -> None:
        self._key = load_private_jwk(private_jwk)
        self.alg = signing_alg(private_jwk)
        self.kid: str | None = private_jwk.get("kid")

    def sign(self, claims: dict[str, Any], *, typ: str | None = None) -> str:
        """A compact JWS of ``claims``."""
        header: dict[str, Any] = {"alg": self.alg}
        if self.kid:
            header["kid"] = self.kid
        if typ:
            header["typ"] = typ
        payload = json.dumps(claims, separators=(",", ":")).encode()
        return jws.serialize_compact(header, payload, self._key, registry=_registry(self.alg))


def client_assertion(
    key: PrivateKey, *, client_id: str, audience: str, now: float, lifetime: int = 60
) -> str:
    """An RFC 7523 client assertion (``private_key_jwt``, OIDC Core 9): iss = sub = client_id,
    aud = the endpoint it is sent to, a fresh jti, and a lifetime of at most 60 seconds."""
    issued = int(now)
    return key.sign(
        {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": secrets.token_urlsafe(24),
            "iat": issued,
            "exp": issued + min(lifetime, 60),
        }
    )
