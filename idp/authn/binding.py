"""Binding rules: what a session must have proven before it changes how the account is secured.

Binding or removing a factor (an authenticator app, a passkey, a security key), making new recovery
codes and changing the password need an authentication at or above the account's *reachable* level
(what the password plus what the person holds can reach, ``SecondFactor.reachable_level``), proven
within ``reauth_max_age`` seconds. Only the proofs made in that window count
(``SsoSession.assess``): re-entering the password never makes a code typed an hour ago fresh, so a
stolen password alone never binds, removes or replaces anything on an account that holds a factor.
Below the level, the person re-enters the password (nothing is fresh, or the account reaches only
``low``) or gives a factor (``/signin/factor?renew=1``).

The first factor of a password-only account needs more: idp/accounts/first_factor.py.
"""

from __future__ import annotations

from idp.authn.results import AuthResult
from idp.settings import LOA_LOW

#: What ``change_needs`` asks for before a change: the password again, or a factor.
REAUTH = "reauth"
STEP_UP = "step_up"


def change_needs(fresh: AuthResult | None, reachable: str) -> str | None:
    """What a change to how the account is secured still needs: None (``fresh``, what the session
    proved within the window, reaches ``reachable``), ``REAUTH`` (nothing fresh, or the account
    reaches only low: the password again) or ``STEP_UP`` (a factor, on top of the fresh proofs)."""
    if fresh is not None and fresh.meets(reachable):
        return None
    if fresh is None or reachable == LOA_LOW:
        return REAUTH
    return STEP_UP
