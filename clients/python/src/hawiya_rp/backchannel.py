"""Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0, section 2.6 "Logout Token
Validation"), and the memory of the ``jti`` values already accepted.

The provider POSTs a signed logout token to the relying party when a person's session ends; the
relying party then ends its own sessions of that ``sid`` (or ``sub``). A token is accepted once: its
``jti`` goes into a ``ReplayCache`` until it can no longer be valid. The in-memory cache serves one
process; several processes must share one (a Redis ``SET NX EX`` behind the same protocol).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hawiya_rp.claims import check_audience, check_issuer, check_times, require
from hawiya_rp.errors import LogoutTokenError
from hawiya_rp.jose import JoseFailure, KeyLookup, verify

#: The member of ``events`` that makes a JWT a logout token (section 2.4).
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: How old (by ``iat``) a logout token without ``exp`` may be; it bounds how long its jti is kept.
MAX_TOKEN_AGE = 300
#: ``typ`` header values a logout token may carry (section 2.4 recommends ``logout+jwt``).
_TYPES = ("jwt", "logout+jwt", "application/logout+jwt")


@dataclass(frozen=True)
class LogoutToken:
    """A valid logout token: end the sessions of ``sid`` (when given), else of ``sub``."""

    sub: str | None
    sid: str | None
    jti: str
    iat: int


class ReplayCache(Protocol):
    """Remembers keys for a while; one shared by every process that receives logout tokens."""

    def add(self, key: str, ttl: int) -> bool:
        """Record ``key`` for ``ttl`` seconds; False when it was already recorded (a replay)."""
        ...


class MemoryReplayCache:
    """A ``ReplayCache`` in this process's memory (bounded; expired keys are swept as it grows)."""

    def __init__(self, clock: Callable[[], float], *, max_entries: int = 100_000) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, key: str, ttl: int) -> bool:
        """Record ``key`` for ``ttl`` seconds; False when it is already there and not expired."""
        now = self._clock()
        with self._lock:
            until = self._until.get(key)
            if until is not None and until > now:
                return False
            if len(self._until) >= self._max_entries:
                self._until = {k: t for k, t in self._until.items() if t > now}
                if len(self._until) >= self._max_entries:
                    # Full of live entries: refusing is safer than forgetting a jti.
                    return False
            self._until[key] = now + ttl
            return True


def validate_logout_token(
    token: str,
    *,
    keys: KeyLookup,
    algorithms: tuple[str, ...],
    issuer: str,
    client_id: str,
    now: float,
    leeway: float,
    replay: ReplayCache,
) -> LogoutToken:
    """The logout token's subject and session when ``token`` is valid; LogoutTokenError otherwise."""
    # Step 3: the signature, as for an ID token (alg allow-list, a published key); a token of
    # another type (typ) is refused before any key is looked up.
    try:
        _, claims = verify(token, keys, algorithms, check_header=_check_typ)
    except JoseFailure as failure:
        raise LogoutTokenError(
            f"the logout token is refused: {failure.message}", reason=failure.reason
        ) from None
    # Step 4: iss, aud and iat as for an ID token; exp when present.
    require(claims, ("iss", "aud", "iat", "jti"), LogoutTokenError)
    check_issuer(claims, issuer, LogoutTokenError)
    check_audience(claims, client_id, LogoutTokenError)
    check_times(claims, now=now, leeway=leeway, error=LogoutTokenError, exp_required=False)
    if "exp" not in claims and now > claims["iat"] + MAX_TOKEN_AGE + leeway:
        raise LogoutTokenError("the logout token is too old", reason="expired")
    # Step 5: a sub, a sid, or both.
    sub, sid = _string_or_none(claims, "sub"), _string_or_none(claims, "sid")
    if sub is None and sid is None:
        raise LogoutTokenError("the logout token names neither sub nor sid", reason="missing_claim")
    # Step 6: events has the back-channel logout member, and its value is a JSON object.
    check_events(claims)
    # Step 7: no nonce (an ID token is not a logout token).
    if "nonce" in claims:
        raise LogoutTokenError("a logout token must not have a nonce", reason="nonce_present")
    # Step 8 (optional there, done here): a jti is accepted once.
    jti = claims["jti"]
    if not isinstance(jti, str):
        raise LogoutTokenError("the logout token's jti is not a string", reason="malformed")
    until = claims.get("exp", claims["iat"] + MAX_TOKEN_AGE)
    if not replay.add(f"logout:{issuer}:{jti}", max(1, int(until + leeway - now) + 1)):
        raise LogoutTokenError("this logout token was already received", reason="replayed")
    return LogoutToken(sub=sub, sid=sid, jti=jti, iat=int(claims["iat"]))


def _check_typ(header: dict[str, Any]) -> None:
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in _TYPES):
        raise LogoutTokenError("the token is not a logout token (typ)", reason="wrong_type")


def check_events(claims: dict[str, Any]) -> None:
    """Section 2.6 step 6: ``events`` is an object with the logout event member, itself an object."""
    events = claims.get("events")
    if not isinstance(events, dict):
        raise LogoutTokenError("the logout token has no events claim", reason="missing_event")
    if not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise LogoutTokenError(
            "the logout token does not carry the back-channel logout event", reason="wrong_event"
        )


def _string_or_none(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise LogoutTokenError(f"the logout token's {name} is not a string", reason="malformed")
    return value
