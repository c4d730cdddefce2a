"""Levels of assurance: what an authentication is worth (``acr``) and how it happened (``amr``).

``acr`` states the strength of the *authentication* only, as NIST SP 800-63B-4 authenticator
assurance levels (AAL); it says nothing of identity proofing (that is the ``proofing_level``
claim). Each row is exactly what the functions below assert:

==============================  ========  =====================================================
Hawiya ``acr``                  NIST      reached by
==============================  ========  =====================================================
``urn:hawiya:loa:low``          AAL1      a password alone
``urn:hawiya:loa:substantial``  AAL2      password + TOTP, password + recovery code, password +
                                          any WebAuthn credential; or, with no password, a
                                          WebAuthn credential with user verification that is
                                          *not* proven hardware (an ordinary passkey, synced or
                                          not, self attestation, no attestation)
``urn:hawiya:loa:high``         AAL3      a WebAuthn credential whose registration verified an
                                          attestation chain to a trust anchor (FIDO MDS3 entry
                                          or operator root), from a model the AAGUID policy
                                          admits, not backup-eligible, used *with* user
                                          verification; with or without a password
==============================  ========  =====================================================

Why proof: AAL3 needs a device-bound, non-exportable key. The backup-eligible (BE) and user-verified
(UV) flags are the authenticator's word about itself, and any software can set them (a Python
script registered a BE=0, UV=1 credential with ``attestation: none`` and signed in at high until
this rule). Only an attestation statement signed by a key whose chain ends at a root Hawiya trusts
says which model made the credential; the FIDO metadata (or the operator, for their own roots)
vouches that the model keeps keys in hardware. That proof is stored with the credential
(``hardware_attested``) and never inferred from flags. BE=1 (a synced passkey: exportable by
design) or UV missing still stops at substantial, attested or not. Ordinary passkeys are
registered with ``attestation: none`` (privacy: the model stays unknown) and so stop at substantial.

``amr`` values are those of RFC 8176: ``pwd`` for the password, ``otp`` for a one-time code, and
``mfa`` whenever two independent factors were used. A WebAuthn credential adds ``hwk`` only when
it is proven hardware (the attested, device-bound key above: "proof-of-possession of a
hardware-secured key"), else ``swk`` (nothing proves where the key lives); ``user`` (the presence
test every ceremony makes) and ``pin`` when the authenticator verified the user: WebAuthn says
*that* it did, not whether by PIN or biometrics, so ``pin`` stands for both. A passkey with user
verification is two factors on its own (the device, and the PIN or biometric that unlocks it), so
a passwordless sign-in reports ``mfa`` too. A recovery code is a look-up secret (NIST SP
800-63B-4 3.1.2): a single-use code from a list the person holds, which RFC 8176 has no value
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


def passkey_amr(*, backup_eligible: bool, user_verified: bool, hardware_attested: bool) -> tuple[str, ...]:
    """What a WebAuthn assertion adds to ``amr``: ``hwk`` only for a key proven to be device-bound
    hardware by a verified attestation (and not backup-eligible), else ``swk``."""
    device_bound = hardware_attested and not backup_eligible
    return ("hwk" if device_bound else "swk", "user", *(("pin",) if user_verified else ()))


def passkey_level(*, backup_eligible: bool, user_verified: bool, hardware_attested: bool) -> str:
    """The level a WebAuthn credential reaches: high only when a verified attestation proved it
    device-bound hardware, it is not backup-eligible, and the user was verified; else substantial.
    The flags alone never reach high: any software can set them."""
    if hardware_attested and user_verified and not backup_eligible:
        return LOA_HIGH
    return LOA_SUBSTANTIAL


def with_passkey(
    result: AuthResult, *, backup_eligible: bool, user_verified: bool, hardware_attested: bool
) -> AuthResult:
    """``result`` (a password, or a session being stepped up) completed by a WebAuthn assertion."""
    flags = {
        "backup_eligible": backup_eligible,
        "user_verified": user_verified,
        "hardware_attested": hardware_attested,
    }
    return _stronger(result, passkey_amr(**flags), passkey_level(**flags))


def passwordless(
    account_id: str, auth_time: int, *, backup_eligible: bool, hardware_attested: bool
) -> AuthResult:
    """A sign-in with a discoverable credential and user verification (required), no password."""
    flags = {
        "backup_eligible": backup_eligible,
        "user_verified": True,
        "hardware_attested": hardware_attested,
    }
    return AuthResult(
        account_id=account_id,
        auth_time=auth_time,
        amr=(*passkey_amr(**flags), "mfa"),
        acr=passkey_level(**flags),
    )


def factor_level(factors: Iterable[Factor]) -> str:
    """The highest level a password plus one of the confirmed ``factors`` reaches (a WebAuthn
    credential by what its registration proved and verified)."""
    best = LOA_LOW
    for factor in factors:
        if factor.kind == WEBAUTHN:
            level = passkey_level(
                backup_eligible=bool(factor.backup_eligible),
                user_verified=bool(factor.user_verified),
                hardware_attested=bool(factor.hardware_attested),
            )
        elif factor.kind == TOTP:
            level = LOA_SUBSTANTIAL
        else:
            continue
        if level_rank(level) > level_rank(best):
            best = level
    return best


def lost_high(factors: Iterable[Factor]) -> bool:
    """True when the person holds a WebAuthn credential that reached high before proof was required
    (not backup-eligible and user-verified by its own flags, no verified attestation) and nothing
    that reaches high now: the people to invite to add a high-assurance security key."""
    held = list(factors)
    self_reported = any(
        factor.kind == WEBAUTHN
        and not factor.backup_eligible
        and factor.user_verified
        and not factor.hardware_attested
        for factor in held
    )
    return self_reported and factor_level(held) != LOA_HIGH


def account_minimum(account_type: str) -> str:
    """The least level an account of this type may hold a session at (staff must use MFA)."""
    return LOA_SUBSTANTIAL if account_type in MFA_REQUIRED_ACCOUNT_TYPES else LOA_LOW
