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
#: Longest base64url header ``unverified_header`` reads (``verify`` holds to joserfc's 512).
MAX_HEADER_LENGTH = 1024
_HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}
#: The hash of ``half_hash`` for each supported algorithm (EdDSA: SHA-512, as Hawiya's).
_HALF_HASHES = {alg: _HASHES["512" if alg == "EdDSA" else alg[2:]] for alg in SUPPORTED_ALGORITHMS}


class JoseFailure(Exception):
    """A JWS was refused: ``reason`` is the machine code, the message says why (no token in it)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


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


#: base64url to base64 for ``binascii.a2b_base64``; ``+``, ``/`` and ``=`` (not base64url, or
#: padding, which a JWS never has) become ``!``, which strict mode refuses like any stray byte.
_FROM_BASE64URL = bytes.maketrans(b"-_+/=", b"+/!!!")
#: The last character of an unpadded segment whose unused bits are zero, by missing padding.
_CANONICAL_ENDINGS = (b"", b"AEIMQUYcgkosw048", b"AQgw")


def _b64url(segment: bytes) -> bytes:
    """A base64url segment decoded as strictly as joserfc does (``joserfc.util.urlsafe_b64decode``):
    its alphabet only, no padding, no non-zero unused bits; ValueError (binascii.Error) otherwise."""
    pad = -len(segment) % 4
    if pad == 3 or (pad and segment[-1] not in _CANONICAL_ENDINGS[pad]):
        raise binascii.Error("not canonical base64url")
    return binascii.a2b_base64(segment.translate(_FROM_BASE64URL) + b"=" * pad, strict_mode=True)


#: joserfc's registered JWS header parameters (RFC 7515 4.1, RFC 7797) and the check of each value;
#: a header with any other parameter is refused, as joserfc's strict header check does.
_HEADER_PARAMETERS = {
    name: parameter.validate for name, parameter in jws.JWSRegistry.default_header_registry.items()
}
#: joserfc's size limits for a compact JWS, per segment (base64url characters).
_MAX_HEADER = jws.JWSRegistry.max_header_length
_MAX_PAYLOAD = jws.JWSRegistry.max_payload_length
_MAX_SIGNATURE = jws.JWSRegistry.max_signature_length
_MAX_TOKEN = _MAX_HEADER + _MAX_PAYLOAD + _MAX_SIGNATURE + 2


class VerificationKey:
    """A published key, imported once per JWKS fetch, ready to verify: for each algorithm it is
    used with, whether it may be (use, type, curve, ``alg``, ``key_ops``: joserfc's
    ``JWSAlgModel.check_key`` and the ``verify`` operation check) is decided once and kept."""

    __slots__ = ("_checked", "key")

    def __init__(self, key: Key) -> None:
        self.key = key
        self._checked: dict[str, jws.JWSAlgModel | str] = {}

    def algorithm(self, alg: str, kid: str | None) -> jws.JWSAlgModel:
        """joserfc's algorithm ``alg`` (one of ``SUPPORTED_ALGORITHMS``) when this key can verify
        with it; JoseFailure("key_mismatch") otherwise."""
        checked = self._checked.get(alg)
        if checked is None:
            model = jws.JWSRegistry.algorithms[alg]
            try:
                model.check_key(self.key)
                self.key.get_op_key("verify")
                checked = model
            except JoseError as exc:
                checked = exc.error
            self._checked[alg] = checked
        if isinstance(checked, str):
            raise JoseFailure(
                "key_mismatch", f"the token does not verify with key {shown_kid(kid)} ({checked})"
            )
        return checked


#: Given the header's ``kid`` (None when absent) and ``alg``, the key to verify with, or JoseFailure.
KeyLookup = Callable[[str | None, str], Key | VerificationKey]


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


def _split(token: str) -> tuple[bytes, list[bytes]]:
    """The token as ASCII bytes and its three segments; JoseFailure("malformed") otherwise."""
    if not isinstance(token, str) or not token:
        raise JoseFailure("malformed", "the token is empty")
    if len(token) > _MAX_TOKEN:
        raise JoseFailure("malformed", "the token is too long")
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise JoseFailure("malformed", "the token is not base64url") from None
    parts = raw.split(b".")
    if len(parts) != 3:
        if len(parts) == 5:
            raise JoseFailure("malformed", "encrypted tokens (JWE) are not accepted")
        raise JoseFailure("malformed", "the token is not a compact JWS")
    if len(parts[0]) > _MAX_HEADER or len(parts[1]) > _MAX_PAYLOAD or len(parts[2]) > _MAX_SIGNATURE:
        raise JoseFailure("malformed", "a part of the token is too long")
    return raw, parts


def _checked_header(segment: bytes, algorithms: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    """The protected header and its ``alg`` once every header check passes; JoseFailure otherwise."""
    try:
        header = json.loads(_b64url(segment).decode("utf-8"))
    except ValueError:  # binascii.Error, UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise JoseFailure("malformed", "the token's header is not base64url JSON") from None
    if not isinstance(header, dict) or not isinstance(alg := header.get("alg"), str):
        raise JoseFailure("malformed", "the token's header names no algorithm")
    if (
        alg not in algorithms
        or alg not in SUPPORTED_ALGORITHMS
        or alg.lower() == "none"
        or alg[:2].upper() == "HS"
    ):
        raise JoseFailure("alg_not_allowed", f"algorithm {alg[:20]!r} is not accepted")
    if "crit" in header:
        # RFC 7515 4.1.11: extensions this library does not understand must make it refuse.
        raise JoseFailure("malformed", "the token has critical header extensions")
    for name, value in header.items():
        validate = _HEADER_PARAMETERS.get(name)
        if validate is None:
            raise JoseFailure("malformed", "the token's header has an unsupported parameter")
        try:
            validate(value)
        except ValueError:
            raise JoseFailure("malformed", f"the token's header has an invalid {name}") from None
    if header.get("b64", True) is not True:
        # RFC 7797 unencoded payloads need "crit", refused above.
        raise JoseFailure("malformed", "the token's payload is not base64url encoded")
    return header, alg


def verify(
    token: str,
    lookup: KeyLookup,
    algorithms: tuple[str, ...],
    *,
    check_header: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of ``token`` once its signature verifies with the key ``lookup``
    gives for its ``kid``, under an algorithm of ``algorithms``; JoseFailure otherwise.
    ``check_header`` (e.g. of ``typ``), when given, sees the header before any key is looked up.

    The token is parsed once, here: header and size checks as joserfc's (strict base64url,
    registered header parameters only, each of the right type), then joserfc's algorithm verifies
    the signature with the key the provider publishes for the kid.
    """
    raw, (header_segment, payload_segment, signature_segment) = _split(token)
    header, alg = _checked_header(header_segment, algorithms)
    if check_header is not None:
        check_header(header)
    kid = header.get("kid")
    found = lookup(kid, alg)
    key = found if isinstance(found, VerificationKey) else VerificationKey(found)
    model = key.algorithm(alg, kid)
    try:
        payload = _b64url(payload_segment)
    except ValueError:
        raise JoseFailure("malformed", "the token's payload is not base64url") from None
    try:
        signature = _b64url(signature_segment)
        valid = model.verify(raw[: len(header_segment) + 1 + len(payload_segment)], signature, key.key)
    except JoseError as exc:
        raise JoseFailure(
            "key_mismatch", f"the token does not verify with key {shown_kid(kid)} ({exc.error})"
        ) from None
    except (ValueError, TypeError):
        valid = False
    if not valid:
        raise JoseFailure(
            "bad_signature", f"the token does not verify with key {shown_kid(kid)} (bad_signature)"
        )
    try:
        claims = json.loads(payload.decode("utf-8"))
    except ValueError:
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
    hash_function = _HALF_HASHES.get(alg) or _HASHES[alg[2:]]
    digest = hash_function(value.encode("ascii")).digest()
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
    aud = ``audience`` as a single string (the issuer identifier), a fresh jti, and a lifetime of at
    most 60 seconds."""
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
