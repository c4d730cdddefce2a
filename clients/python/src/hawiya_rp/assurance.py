"""Levels of assurance: Hawiya's ``acr`` values (OIDC Core 2 ``acr``, 3.1.2.1 ``acr_values``).

Hawiya's three levels are ordered, low < substantial < high, and a stronger sign-in satisfies a
weaker demand. An application names a level (``"high"``) or its URN; ``acr`` values of other
providers are compared for equality only.
"""

from __future__ import annotations

#: Hawiya's level names and the ``acr`` values they stand for, weakest first.
LEVELS: dict[str, str] = {
    "low": "urn:hawiya:loa:low",
    "substantial": "urn:hawiya:loa:substantial",
    "high": "urn:hawiya:loa:high",
}
_RANK = {acr: rank for rank, acr in enumerate(LEVELS.values())}


def to_acr(level_or_acr: str) -> str:
    """The ``acr`` value for a level name (``"high"``) or an ``acr`` value (returned unchanged)."""
    value = level_or_acr.strip()
    if not value:
        raise ValueError("an assurance level cannot be empty")
    return LEVELS.get(value.lower(), value)


def meets(acr: str | None, required: str | None) -> bool:
    """True when a sign-in at ``acr`` satisfies ``required`` (a level name or an ``acr``)."""
    if not required:
        return True
    if not acr:
        return False
    wanted = to_acr(required)
    if acr in _RANK and wanted in _RANK:
        return _RANK[acr] >= _RANK[wanted]
    return acr == wanted
