"""Levels of assurance: what an authentication is worth (``acr``) and how it happened (``amr``).

==============================  =========  ===========  ==========================================
Hawiya ``acr``                  NIST AAL   eIDAS        reached by
==============================  =========  ===========  ==========================================
``urn:hawiya:loa:low``          AAL1       low          a password alone
``urn:hawiya:loa:substantial``  AAL2       substantial  password + TOTP, password + recovery code,
                                                        password + any WebAuthn credential, or a
                                                        synced passkey (backup-eligible) with user
                                                        verification, with or without a password
``urn:hawiya:loa:high``         AAL3       high         a device-bound WebAuthn credential (not
                                                        backup-eligible) with user verification,
                                                        with or without a password
==============================  =========  ===========  ==========================================

Why a synced passkey stops at substantial: NIST SP 800-63B-4 AAL3 needs a non-exportable key, and
a passkey that syncs to a cloud account is exportable by design. A credential whose authenticator
did not verify the user is something the person *has*; beside a password it makes two factors,
but Hawiya does not assume a hardware key from a response that says nothing of it (``attestation:
none``), so it too stops at substantial.

(NIST SP 800-63B-4 authenticator assurance levels; eIDAS Implementing Regulation 2015/1502 levels.)

``amr`` values are those of RFC 8176: ``pwd`` for the password, ``otp`` for a one-time code, and
``mfa`` whenever two independent factors were used. A WebAuthn credential adds ``hwk`` (a
device-bound key) or ``swk`` (a synced passkey, whose key lives in software outside the device),
``user`` (the presence test every ceremony makes) and ``pin`` when the authenticator verified the
user: WebAuthn says *that* it did, not whether by PIN or biometrics, so ``pin`` stands for both.
A passkey with user verification is two factors on its own (the device, and the PIN or biometric
that unlocks it), so a passwordless sign-in reports ``mfa`` too. A recovery code is a look-up secret (NIST
SP 800-63B-4 3.1.2): a single-use code from a list the person holds, which RFC 8176 has no value
for; Hawiya reports it as ``otp`` (it is a one-time password) with ``pwd`` and ``mfa``, so an agency
sees the same ``amr`` for either way of reaching ``substantial``. The audit trail tells them apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from idp.authn.factors import TOTP, WEBAUTHN, Factor
from idp.authn.results import AuthResult, level_rank
from idp.settings import LOA_HIGH, LOA_LOW, LOA_SUBSTANTIAL, MFA_REQUIRED_ACCOUNT_TYPES

#: How each second factor is reported (RFC 8176).
FACTOR_AMR = {"totp": ("otp",), "recovery_code": ("otp",)}


def password_only(account_id: str, auth_time: int) -> AuthResult:
    """A password sign-in: ``pwd``, level low."""
    return AuthResult(account_id=account_id, auth_time=auth_time, amr=("pwd",), acr=LOA_LOW)


def _stronger(result: AuthResult, extra_amr: tuple[str, ...], level: str) -> AuthResult:
    amr = tuple(dict.fromkeys((*result.amr, *extra_amr, "mfa")))
    acr = result.acr if level_rank(result.acr) > level_rank(level) else level
    return replace(result, amr=amr, acr=acr)


def with_second_factor(result: AuthResult, method: str) -> AuthResult:
    """``result`` (which carries ``pwd``) completed by a code: level substantial."""
    return _stronger(result, FACTOR_AMR[method], LOA_SUBSTANTIAL)


def passkey_amr(*, backup_eligible: bool, user_verified: bool) -> tuple[str, ...]:
    """What a WebAuthn assertion adds to ``amr``."""
    return ("swk" if backup_eligible else "hwk", "user", *(("pin",) if user_verified else ()))


def passkey_level(*, backup_eligible: bool, user_verified: bool) -> str:
    """The level a WebAuthn credential reaches: high only device-bound and user-verified."""
    return LOA_HIGH if user_verified and not backup_eligible else LOA_SUBSTANTIAL


def with_passkey(result: AuthResult, *, backup_eligible: bool, user_verified: bool) -> AuthResult:
    """``result`` (a password, or a session being stepped up) completed by a WebAuthn assertion."""
    flags = {"backup_eligible": backup_eligible, "user_verified": user_verified}
    return _stronger(result, passkey_amr(**flags), passkey_level(**flags))


def passwordless(account_id: str, auth_time: int, *, backup_eligible: bool) -> AuthResult:
    """A sign-in with a discoverable credential and user verification (required), no password."""
    flags = {"backup_eligible": backup_eligible, "user_verified": True}
    return AuthResult(
        account_id=account_id,
        auth_time=auth_time,
        amr=(*passkey_amr(**flags), "mfa"),
        acr=passkey_level(**flags),
    )


def factor_level(factors: Iterable[Factor]) -> str:
    """The highest level a password plus one of the confirmed ``factors`` reaches."""
    best = LOA_LOW
    for factor in factors:
        if factor.kind == WEBAUTHN:
            level = passkey_level(
                backup_eligible=bool(factor.backup_eligible), user_verified=bool(factor.user_verified)
            )
        elif factor.kind == TOTP:
            level = LOA_SUBSTANTIAL
        else:
            continue
        if level_rank(level) > level_rank(best):
            best = level
    return best


def account_minimum(account_type: str) -> str:
    """The least level an account of this type may hold a session at (staff must use MFA)."""
    return LOA_SUBSTANTIAL if account_type in MFA_REQUIRED_ACCOUNT_TYPES else LOA_LOW
