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

Each factor is recorded as a ``Proof`` with its own time (idp/authn/results.py), and what a set of
proofs is worth is decided there, for the proofs fresh enough for a request. The second-factor page
asks ``factor_offer`` which of the person's factors can lift what is fresh to the level asked, and
offers only those.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from idp.authn.factors import TOTP, WEBAUTHN, Factor
from idp.authn.results import PASSWORD, AuthResult, Proof, assess, level_rank, merge
from idp.settings import ACR_VALUES, LOA_HIGH, LOA_LOW, LOA_SUBSTANTIAL, MFA_REQUIRED_ACCOUNT_TYPES

#: How each second factor is reported (RFC 8176).
FACTOR_AMR = {"totp": ("otp",), "recovery_code": ("otp",)}


def password_proof(at: int) -> Proof:
    """A right password: level low on its own."""
    return Proof(PASSWORD, at, LOA_LOW, (PASSWORD,))


def code_proof(method: str, at: int) -> Proof:
    """A right TOTP or recovery code: substantial, and only beside a password."""
    return Proof(method, at, LOA_SUBSTANTIAL, FACTOR_AMR[method], needs_password=True)


def passkey_proof(at: int, *, backup_eligible: bool, user_verified: bool, hardware_attested: bool) -> Proof:
    """A WebAuthn assertion. One that verified its user is two factors on its own; one that did not
    is something the person has, which counts only beside their password."""
    flags = {
        "backup_eligible": backup_eligible,
        "user_verified": user_verified,
        "hardware_attested": hardware_attested,
    }
    return Proof(WEBAUTHN, at, passkey_level(**flags), passkey_amr(**flags), needs_password=not user_verified)


def _proven(account_id: str, proofs: tuple[Proof, ...]) -> AuthResult:
    """What ``proofs`` prove together (they always prove something: a password or a key)."""
    result = assess(account_id, proofs)
    if result is None:
        raise ValueError("these proofs prove nothing on their own")
    return result


def password_only(account_id: str, auth_time: int) -> AuthResult:
    """A password sign-in: ``pwd``, level low."""
    return _proven(account_id, (password_proof(auth_time),))


def with_second_factor(result: AuthResult, method: str, at: int) -> AuthResult:
    """``result`` (which carries ``pwd``) completed by a code proven at ``at``: level substantial."""
    return _proven(result.account_id, merge(result.proven, (code_proof(method, at),)))


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


def credential_level(factor: Factor) -> str:
    """The level a registered WebAuthn credential reaches when it verifies its user as registered."""
    return passkey_level(
        backup_eligible=bool(factor.backup_eligible),
        user_verified=bool(factor.user_verified),
        hardware_attested=bool(factor.hardware_attested),
    )


def with_passkey(
    result: AuthResult, *, backup_eligible: bool, user_verified: bool, hardware_attested: bool, at: int
) -> AuthResult:
    """``result`` (a password, or a session being stepped up) completed by a WebAuthn assertion
    made at ``at``."""
    proof = passkey_proof(
        at, backup_eligible=backup_eligible, user_verified=user_verified, hardware_attested=hardware_attested
    )
    return _proven(result.account_id, merge(result.proven, (proof,)))


def passwordless(
    account_id: str, auth_time: int, *, backup_eligible: bool, hardware_attested: bool
) -> AuthResult:
    """A sign-in with a discoverable credential and user verification (required), no password."""
    proof = passkey_proof(
        auth_time, backup_eligible=backup_eligible, user_verified=True, hardware_attested=hardware_attested
    )
    return _proven(account_id, (proof,))


def factor_level(factors: Iterable[Factor]) -> str:
    """The highest level a password plus one of the confirmed ``factors`` reaches (a WebAuthn
    credential by what its registration proved and verified)."""
    best = LOA_LOW
    for factor in factors:
        if factor.kind == WEBAUTHN:
            level = credential_level(factor)
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


def next_level(acr: str) -> str:
    """The level above ``acr`` (high stays high): what a step-up is for when nobody said."""
    rank = level_rank(acr)
    return ACR_VALUES[min(max(rank, 0) + 1, len(ACR_VALUES) - 1)] if rank >= 0 else LOA_LOW


@dataclass(frozen=True)
class FactorOffer:
    """What the second-factor page offers, for the level asked: only what can reach it, so that
    nothing is spent (a recovery code) that could not satisfy the request."""

    #: Whose factors these are.
    account_id: str
    #: The level asked (None: any).
    level: str | None
    #: A code (TOTP or recovery code) can reach it.
    codes: bool
    #: The person's WebAuthn credentials (authenticator ids) that can reach it.
    key_ids: tuple[str, ...]
    #: The person has an authenticator app (the page says which code to type).
    has_app: bool

    @property
    def keys(self) -> bool:
        """True when one of the person's WebAuthn credentials can reach the level."""
        return bool(self.key_ids)

    @property
    def anything(self) -> bool:
        """True when something on offer can reach the level."""
        return self.codes or self.keys


def factor_offer(base: AuthResult, factors: Iterable[Factor], asked: str | None) -> FactorOffer:
    """Which of the person's ``factors`` can lift ``base`` (the fresh proofs the page builds on) to
    ``asked``. A code reaches substantial and only beside a fresh password; a WebAuthn credential
    reaches its own level (passkey_level), beside a fresh password or, when it verifies its user,
    alone. A credential's user verification is known from its registration (an assertion that does
    not verify its user reaches less, and is simply not enough)."""
    factors = list(factors)
    password = base.rests_on(PASSWORD)

    def reaches(level: str) -> bool:
        return asked is None or level_rank(level) >= level_rank(asked)

    keys = [factor for factor in factors if factor.kind == WEBAUTHN]
    usable_keys = [
        factor for factor in keys if (password or factor.user_verified) and reaches(credential_level(factor))
    ]
    return FactorOffer(
        account_id=base.account_id,
        level=asked,
        codes=password and bool(factors) and reaches(LOA_SUBSTANTIAL),
        key_ids=tuple(factor.id for factor in usable_keys),
        has_app=any(factor.kind == TOTP for factor in factors),
    )
