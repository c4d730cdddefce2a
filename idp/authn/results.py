"""The result of authenticating a person: what the protocol consumes (OIDC Core 2: auth_time,
acr, amr), and the proofs it rests on. ``idp.oidc`` may import this module and nothing else from
``idp.authn``.

A session is not one authentication but a series of proofs, each of one factor at its own time: a
password at sign-in, a code a minute later, the password again an hour later (``/account/reauth``),
a security key for a step-up. What may be asserted for a request depends on which of them are fresh
enough for it (OIDC Core 3.1.2.1 ``max_age``: "the End-User MUST be actively re-authenticated"
when the elapsed time is greater), so every proof keeps its own time and ``assess`` decides:

- only proofs made at or after ``fresh_since`` count (all of them when it is None);
- a factor that counts only beside a password (a code, a security key that did not verify its
  user) counts only when the password is among them;
- the level (``acr``) is the highest any counting proof reaches, ``amr`` lists the counting
  factors, and ``auth_time`` is the *oldest* of them: the authentication asserted is no younger
  than any part of it.

Re-entering the password thus refreshes the password and nothing else: it never makes a code typed
long ago count as fresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from idp.settings import ACR_VALUES, LOA_LOW, LOA_SUBSTANTIAL

#: The factors a proof can be of (``Proof.factor``).
PASSWORD = "pwd"  # noqa: S105 - the name of a factor, not a secret
TOTP = "totp"
RECOVERY_CODE = "recovery_code"
WEBAUTHN = "webauthn"
#: RFC 8176 values that describe a WebAuthn credential (and its ceremony), not a factor of their own.
_WEBAUTHN_AMR = ("hwk", "swk", "user", "pin")


def level_rank(acr: str | None) -> int:
    """The strength of a Hawiya level (0 low, 1 substantial, 2 high); -1 for anything else."""
    return ACR_VALUES.index(acr) if acr in ACR_VALUES else -1


@dataclass(frozen=True)
class Proof:
    """One factor the person proved, when they last proved it, and what it is worth."""

    #: ``pwd``, ``totp``, ``recovery_code`` or ``webauthn``.
    factor: str
    #: When it was proven (seconds since the epoch).
    at: int
    #: The level it reaches: on its own, or beside the password when ``needs_password``.
    level: str
    #: How it is reported (RFC 8176), without ``mfa`` (that describes a combination).
    amr: tuple[str, ...]
    #: True for a factor that counts only beside a (fresh) password.
    needs_password: bool = False

    @property
    def kind(self) -> tuple[str, tuple[str, ...]]:
        """What a newer proof of the same factor replaces (a synced passkey does not replace a
        security key: they reach different levels)."""
        return self.factor, self.amr

    @property
    def factor_count(self) -> int:
        """Independent factors in this proof: two for a credential that verified its user (the
        device, and the PIN or biometric that unlocked it), else one."""
        return 2 if "pin" in self.amr else 1


@dataclass(frozen=True)
class AuthResult:
    """Who signed in, when, how (amr, RFC 8176) and how strongly (acr)."""

    account_id: str
    auth_time: int
    amr: tuple[str, ...] = ("pwd",)
    acr: str = LOA_LOW
    #: The proofs this result rests on. Empty for a result built from ``amr``, ``acr`` and
    #: ``auth_time`` alone (a token grant's, an older stored session's): see ``proven``.
    proofs: tuple[Proof, ...] = ()

    def meets(self, required: str) -> bool:
        """True when this authentication is at least as strong as the level ``required``."""
        return level_rank(self.acr) >= level_rank(required)

    @property
    def proven(self) -> tuple[Proof, ...]:
        """The proofs behind this result; for one without any, every factor its ``amr`` lists,
        proven at its ``auth_time`` and together reaching its ``acr``."""
        return self.proofs or legacy_proofs(self.amr, self.acr, self.auth_time)

    def rests_on(self, factor: str) -> bool:
        """True when this result rests on a proof of ``factor``."""
        return any(proof.factor == factor for proof in self.proven)


def legacy_proofs(amr: Sequence[str], acr: str, at: int) -> tuple[Proof, ...]:
    """The proofs of an authentication known only by its ``amr``, ``acr`` and single time (a
    session stored before proofs had times): each factor listed, proven at ``at``. The factors
    beside the password are given the level the whole reached, so the whole still reaches it."""
    password = PASSWORD in amr
    proofs: list[Proof] = []
    if password:
        proofs.append(Proof(PASSWORD, at, LOA_LOW, (PASSWORD,)))
    key = tuple(value for value in amr if value in _WEBAUTHN_AMR)
    others = [value for value in dict.fromkeys(amr) if value not in (PASSWORD, "mfa", *_WEBAUTHN_AMR)]
    # A code never reaches more than substantial, whatever else was used beside it.
    code_level = LOA_SUBSTANTIAL if level_rank(acr) > level_rank(LOA_SUBSTANTIAL) else acr
    for value in others:
        factor = TOTP if value == "otp" else value
        proofs.append(Proof(factor, at, code_level, (value,), needs_password=password))
    if key:
        proofs.append(Proof(WEBAUTHN, at, acr, key, needs_password=password and "pin" not in key))
    if len(proofs) == 1 and password:
        proofs[0] = Proof(PASSWORD, at, acr, (PASSWORD,))  # an odd old record: keep what it said
    return tuple(proofs)


def merge(proofs: Iterable[Proof], newer: Iterable[Proof]) -> tuple[Proof, ...]:
    """``proofs`` with ``newer`` ones in: a proof of the same kind is replaced in place (keeping
    the order factors were first proven in), a new kind is added at the end."""
    merged = {proof.kind: proof for proof in proofs}
    for proof in newer:
        merged[proof.kind] = proof
    return tuple(merged.values())


def assess(
    account_id: str, proofs: Iterable[Proof], *, fresh_since: float | None = None
) -> AuthResult | None:
    """What ``proofs`` made at or after ``fresh_since`` prove (all of them when None): None when
    they prove nothing (none is fresh, or only factors that need a password that is not)."""
    fresh = [proof for proof in proofs if fresh_since is None or proof.at >= fresh_since]
    password = any(proof.factor == PASSWORD for proof in fresh)
    counting = [proof for proof in fresh if password or not proof.needs_password]
    if not counting:
        return None
    amr: list[str] = []
    factors = 0
    for proof in counting:
        amr.extend(proof.amr)
        factors += proof.factor_count
        if factors >= 2:
            amr.append("mfa")  # RFC 8176: two independent factors were used
    return AuthResult(
        account_id=account_id,
        auth_time=min(proof.at for proof in counting),
        amr=tuple(dict.fromkeys(amr)),
        acr=max((proof.level for proof in counting), key=level_rank),
        proofs=tuple(counting),
    )
