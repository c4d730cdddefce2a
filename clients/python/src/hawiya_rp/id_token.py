"""ID token validation, exactly as OpenID Connect Core 1.0 section 3.1.3.7 lists it (and 3.1.3.8 for
``at_hash``). Each step is a small named check; the step numbers are the specification's."""

from __future__ import annotations

import hmac
from collections.abc import Collection
from typing import Any

from hawiya_rp.claims import audiences, check_issuer, check_times, require
from hawiya_rp.errors import IdTokenError
from hawiya_rp.jose import JoseFailure, KeyLookup, half_hash, verify

#: ``typ`` values of the provider's other JWTs, which must never pass for an ID token.
OTHER_TYPES = ("at+jwt", "application/at+jwt", "logout+jwt", "application/logout+jwt")


def validate_id_token(
    token: str,
    *,
    keys: KeyLookup,
    algorithms: tuple[str, ...],
    issuer: str,
    client_id: str,
    nonce: str | None,
    now: float,
    leeway: float,
    access_token: str | None = None,
    max_age: int | None = None,
    trusted_audiences: Collection[str] = (),
) -> dict[str, Any]:
    """The claims of ``token`` when it is a valid ID token for ``client_id``; IdTokenError otherwise.

    ``nonce`` is the value sent in the authorization request (None: none was sent, as on refresh);
    ``access_token`` the one that came with it (its ``at_hash`` is then checked); ``max_age`` the
    one requested (``auth_time`` is then checked).
    """
    # Steps 1 (encrypted ID tokens: not supported, refused as malformed), 6, 7 and 8: the signature,
    # by a key the provider publishes, under an allowed asymmetric algorithm.
    try:
        header, claims = verify(token, keys, algorithms)
    except JoseFailure as failure:
        raise IdTokenError(f"the ID token is refused: {failure.message}", reason=failure.reason) from None
    check_not_another_token(header, claims)
    require(claims, ("iss", "sub", "aud", "exp", "iat"), IdTokenError)
    # Step 2: the issuer is exactly the one the client was configured with (and discovered).
    check_issuer(claims, issuer, IdTokenError)
    # Steps 3 to 5: the client is an audience, every other audience is trusted, azp is the client.
    check_audience_and_azp(claims, client_id, trusted_audiences)
    # Steps 9 and 10: not expired, not issued in the future.
    check_times(claims, now=now, leeway=leeway, error=IdTokenError)
    # Step 11: the nonce is the one this browser's request carried.
    check_nonce(claims, nonce)
    # Step 13: a recent enough authentication when max_age was requested.
    check_auth_time(claims, max_age, now=now, leeway=leeway)
    # 3.1.3.8: the access token is the one the ID token was issued with.
    if access_token is not None:
        check_at_hash(claims, access_token, header["alg"])
    return claims


def check_not_another_token(header: dict[str, Any], claims: dict[str, Any]) -> None:
    """An access token or a logout token, signed by the same keys, is not an ID token (a logout
    token has no nonce, so on refresh, where no nonce is expected, only this tells them apart)."""
    typ = header.get("typ")
    if (isinstance(typ, str) and typ.lower() in OTHER_TYPES) or "events" in claims:
        raise IdTokenError("the token is not an ID token (typ or events)", reason="wrong_type")


def check_audience_and_azp(claims: dict[str, Any], client_id: str, trusted: Collection[str] = ()) -> None:
    """Steps 3 to 5: ``aud`` contains ``client_id`` and no untrusted audience; with several
    audiences ``azp`` must be present; when present it must be ``client_id``."""
    listed = audiences(claims)
    if client_id not in listed:
        raise IdTokenError(f"the ID token is not meant for client {client_id!r}", reason="wrong_audience")
    others = [aud for aud in listed if aud != client_id and aud not in trusted]
    if others:
        raise IdTokenError(
            "the ID token is also meant for an audience this client does not trust", reason="wrong_audience"
        )
    azp = claims.get("azp")
    if len(listed) > 1 and azp is None:
        raise IdTokenError("an ID token with several audiences must name its azp", reason="wrong_azp")
    if azp is not None and azp != client_id:
        raise IdTokenError("the ID token was issued to another party (azp)", reason="wrong_azp")


def check_nonce(claims: dict[str, Any], nonce: str | None) -> None:
    """Step 11: the ``nonce`` claim equals the nonce sent (compared in constant time)."""
    if nonce is None:
        return
    found = claims.get("nonce")
    if not isinstance(found, str) or not hmac.compare_digest(found.encode(), nonce.encode()):
        raise IdTokenError("the ID token's nonce is not the one of this sign-in", reason="nonce_mismatch")


def check_auth_time(claims: dict[str, Any], max_age: int | None, *, now: float, leeway: float) -> None:
    """Step 13: with ``max_age``, ``auth_time`` is present and no older than ``max_age`` seconds."""
    auth_time = claims.get("auth_time")
    if auth_time is not None and (not isinstance(auth_time, int | float) or isinstance(auth_time, bool)):
        raise IdTokenError("the ID token's auth_time is not a number", reason="malformed")
    if max_age is None:
        return
    if auth_time is None:
        raise IdTokenError("max_age was requested but the ID token has no auth_time", reason="missing_claim")
    if now > auth_time + max_age + leeway:
        raise IdTokenError("the person signed in longer ago than max_age allows", reason="auth_too_old")


def check_at_hash(claims: dict[str, Any], access_token: str, alg: str) -> None:
    """3.1.3.8: when the ID token has ``at_hash``, it is the half hash of the access token."""
    at_hash = claims.get("at_hash")
    if at_hash is None:
        return
    try:
        expected = half_hash(access_token, alg)
    except (KeyError, UnicodeEncodeError):
        raise IdTokenError(
            "the access token cannot be matched to the ID token", reason="at_hash_mismatch"
        ) from None
    if not isinstance(at_hash, str) or not hmac.compare_digest(at_hash.encode(), expected.encode()):
        raise IdTokenError(
            "the access token is not the one the ID token was issued with", reason="at_hash_mismatch"
        )
