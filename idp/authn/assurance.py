"""Levels of assurance: what an authentication is worth (``acr``) and how it happened (``amr``).

==============================  =========  ===========  ==========================================
Hawiya ``acr``                  NIST AAL   eIDAS        reached by
==============================  =========  ===========  ==========================================
``urn:hawiya:loa:low``          AAL1       low          a password alone
``urn:hawiya:loa:substantial``  AAL2       substantial  password + TOTP, or password + recovery code
``urn:hawiya:loa:high``         AAL3       high         a device-bound WebAuthn credential with user
                                                        verification (arrives with the passkey slice)
==============================  =========  ===========  ==========================================

(NIST SP 800-63B-4 authenticator assurance levels; eIDAS Implementing Regulation 2015/1502 levels.)

``amr`` values are those of RFC 8176: ``pwd`` for the password, ``otp`` for a one-time code, and
``mfa`` whenever two independent factors were used. A recovery code is a look-up secret (NIST
SP 800-63B-4 3.1.2): a single-use code from a list the person holds, which RFC 8176 has no value
for; Hawiya reports it as ``otp`` (it is a one-time password) with ``pwd`` and ``mfa``, so an agency
sees the same ``amr`` for either way of reaching ``substantial``. The audit trail tells them apart.
"""

from __future__ import annotations

from dataclasses import replace

from idp.authn.results import AuthResult, level_rank
from idp.settings import LOA_LOW, LOA_SUBSTANTIAL, MFA_REQUIRED_ACCOUNT_TYPES

#: How each second factor is reported (RFC 8176).
FACTOR_AMR = {"totp": ("otp",), "recovery_code": ("otp",)}


def password_only(account_id: str, auth_time: int) -> AuthResult:
    """A password sign-in: ``pwd``, level low."""
    return AuthResult(account_id=account_id, auth_time=auth_time, amr=("pwd",), acr=LOA_LOW)


def with_second_factor(result: AuthResult, method: str) -> AuthResult:
    """``result`` (which carries ``pwd``) completed by a second factor: level substantial."""
    amr = tuple(dict.fromkeys((*result.amr, *FACTOR_AMR[method], "mfa")))
    acr = result.acr if level_rank(result.acr) > level_rank(LOA_SUBSTANTIAL) else LOA_SUBSTANTIAL
    return replace(result, amr=amr, acr=acr)


def factor_level(kinds: set[str]) -> str:
    """The highest level a password plus one of the confirmed authenticators ``kinds`` reaches.

    WebAuthn reaches ``high`` only with the passkey slice (device-bound, user verification); until
    then no factor goes beyond ``substantial``.
    """
    return LOA_SUBSTANTIAL if kinds & {"totp"} else LOA_LOW


def account_minimum(account_type: str) -> str:
    """The least level an account of this type may hold a session at (staff must use MFA)."""
    return LOA_SUBSTANTIAL if account_type in MFA_REQUIRED_ACCOUNT_TYPES else LOA_LOW
