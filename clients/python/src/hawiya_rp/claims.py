"""Registered JWT claims (RFC 7519 4.1) checked the same way for ID tokens, logout tokens and access
tokens: one small named check each, raising the caller's error type with a stable reason."""

from __future__ import annotations

from typing import Any

from hawiya_rp.errors import HawiyaRPError


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def audiences(claims: dict[str, Any]) -> list[str]:
    """The ``aud`` claim as a list (RFC 7519 4.1.3: a string or an array of strings)."""
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(item, str) for item in aud):
        return list(aud)
    return []


def require(claims: dict[str, Any], names: tuple[str, ...], error: type[HawiyaRPError]) -> None:
    """Each of ``names`` is present."""
    for name in names:
        if claims.get(name) in (None, ""):
            raise error(f"the token has no {name} claim", reason="missing_claim")


def check_issuer(claims: dict[str, Any], issuer: str, error: type[HawiyaRPError]) -> None:
    """``iss`` is exactly ``issuer`` (simple string comparison, no normalisation)."""
    if claims.get("iss") != issuer:
        raise error(
            f"the token was issued by {str(claims.get('iss'))[:200]!r}, not {issuer!r}", reason="wrong_issuer"
        )


def check_audience(claims: dict[str, Any], audience: str, error: type[HawiyaRPError]) -> None:
    """``aud`` names ``audience``."""
    if audience not in audiences(claims):
        raise error(f"the token is not meant for {audience!r}", reason="wrong_audience")


def check_times(
    claims: dict[str, Any],
    *,
    now: float,
    leeway: float,
    error: type[HawiyaRPError],
    exp_required: bool = True,
) -> None:
    """``exp`` is not past and ``iat`` not in the future, each give or take ``leeway`` seconds."""
    exp, iat = claims.get("exp"), claims.get("iat")
    if exp is None and exp_required:
        raise error("the token has no exp claim", reason="missing_claim")
    if iat is None:
        raise error("the token has no iat claim", reason="missing_claim")
    if (exp is not None and not _is_number(exp)) or not _is_number(iat):
        raise error("the token's exp or iat is not a number", reason="malformed")
    if exp is not None and now > exp + leeway:
        raise error("the token has expired", reason="expired")
    if iat > now + leeway:
        raise error("the token was issued in the future (check the clocks)", reason="issued_in_future")
