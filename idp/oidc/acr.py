"""What level of assurance an authorization request needs (OIDC Core 3.1.2.1 ``acr_values``,
5.5.1.1 an essential ``acr`` claim, and the client's registered minimum).

Hawiya's levels are ordered (low < substantial < high) and a stronger authentication satisfies a
weaker requirement; the ID token always carries the level the session really reached.

- ``acr_values`` is a list of preferences (3.1.2.1: "in order of preference"). Hawiya reads it as
  "at least the weakest Hawiya level listed": a session already at or above one of the listed
  levels is fine as it is, a session below all of them is stepped up to the weakest one. Values
  Hawiya does not know are ignored (15.1), so ``acr_values=1 2`` asks for nothing.
- An essential ``acr`` claim with ``value`` or ``values`` is read the same way, except that when it
  names no Hawiya level at all it can never be met (5.5.1.1: treated as a failed authentication,
  reported as ``unmet_authentication_requirements``).
- A client may be registered with a minimum level (``min_acr``), and an account type may have one
  (staff must use MFA). The requirement is the strongest of all of these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from authlib.oauth2 import OAuth2Error

from idp.authn.results import level_rank
from idp.settings import ACR_VALUES


class UnmetAuthenticationRequirementsError(OAuth2Error):
    """OpenID Connect Core Error Code unmet_authentication_requirements 1.0, section 1."""

    error = "unmet_authentication_requirements"


@dataclass(frozen=True)
class AcrRequirement:
    """The least Hawiya level that satisfies a request (None: any), and whether it can be met."""

    level: str | None
    satisfiable: bool = True


def _weakest_known(values: Iterable[str]) -> str | None:
    known = [value for value in values if value in ACR_VALUES]
    return min(known, key=level_rank) if known else None


def requirement(
    *, acr_values: str | None, essential: list[str], minimums: Iterable[str | None] = ()
) -> AcrRequirement:
    """Combine every source of an authentication requirement into the strongest one."""
    levels = [_weakest_known((acr_values or "").split()), *minimums]
    satisfiable = True
    if essential:
        asked = _weakest_known(essential)
        satisfiable = asked is not None
        levels.append(asked)
    known = [level for level in levels if level in ACR_VALUES]
    level = max(known, key=level_rank) if known else None
    return AcrRequirement(level, satisfiable)
