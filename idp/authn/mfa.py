"""The second factor: when it is asked, checking it (TOTP or recovery code), and the account-level
rules around authenticators (staff keep one; recovery codes exist only beside a factor).

Failed codes are throttled per account in the ephemeral store, like passwords: after
``max_failures`` in ``window`` seconds every code is refused until the window passes (NIST SP
800-63B-4 3.2.2 allows at most 100 consecutive failures), and each failure and each refusal is
audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from idp.accounts.service import AccountService
from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.authn import recovery, totp
from idp.authn.assurance import (
    FactorOffer,
    account_minimum,
    factor_level,
    factor_offer,
    lost_high,
    with_passkey,
    with_second_factor,
)
from idp.authn.factors import Authenticators, Factor, TotpReplayed
from idp.authn.passkeys import Passkeys
from idp.authn.recovery import RecoveryCodes
from idp.authn.results import AuthResult
from idp.authn.throttle import Throttle
from idp.authn.webauthn import PasskeyRejected
from idp.clock import Clock
from idp.errors import InvalidCode, TooManyAttempts
from idp.settings import LOA_LOW

#: What the sign-in needs after a right password.
FACTOR = "factor"
ENROL = "enrol"


@dataclass(frozen=True)
class FactorOutcome:
    """A second factor that was accepted, and what the person now holds."""

    result: AuthResult
    #: ``totp``, ``recovery_code`` or ``webauthn``.
    method: str
    #: Recovery codes left, when one was used.
    remaining_codes: int | None = None


@dataclass(frozen=True)
class Enrolled:
    """A confirmed first (or further) authenticator; ``recovery_codes`` when a first set was made."""

    factor: Factor
    recovery_codes: list[str] | None
    #: The sign-in this enrolment completed (when it happened during sign-in).
    result: AuthResult | None = None


class SecondFactor:
    """Ask for, check, enrol and remove second factors."""

    def __init__(
        self,
        accounts: AccountService,
        authenticators: Authenticators,
        codes: RecoveryCodes,
        passkeys: Passkeys,
        throttle: Throttle,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self._accounts = accounts
        self._authenticators = authenticators
        self._codes = codes
        self._passkeys = passkeys
        self._throttle = throttle
        self._audit = audit
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock.now())

    # -- policy -----------------------------------------------------------------------------------

    def next_step(self, account_id: str) -> str | None:
        """After a right password: ``factor`` (the account has one: always asked), ``enrol`` (the
        account must use MFA and has none yet) or None (the password is all there is)."""
        if self._authenticators.confirmed_kinds(account_id):
            return FACTOR
        person = self._accounts.find(account_id)
        if person is not None and account_minimum(person.account_type) != LOA_LOW:
            return ENROL
        return None

    def reachable_level(self, account_id: str) -> str:
        """The highest level a password plus what the person holds can reach."""
        return factor_level(self._authenticators.factors(account_id))

    def offer(self, base: AuthResult, asked: str | None) -> FactorOffer:
        """What the second-factor page may offer to lift ``base`` (what is fresh) to ``asked``."""
        return factor_offer(base, self._authenticators.factors(base.account_id), asked)

    def lost_high(self, account_id: str) -> bool:
        """True when the person's keys reached high before proof of hardware was required and
        nothing they hold reaches it now (idp.authn.assurance.lost_high)."""
        return lost_high(self._authenticators.factors(account_id))

    def must_keep_a_factor(self, account_id: str) -> bool:
        """True when policy forbids removing the account's last factor (staff)."""
        person = self._accounts.find(account_id)
        return person is not None and account_minimum(person.account_type) != LOA_LOW

    # -- checking a code --------------------------------------------------------------------------

    def verify(self, base: AuthResult, code: str, *, ip: str | None = None) -> FactorOutcome:
        """Check a TOTP or recovery ``code`` for ``base``'s account; the stronger result, or
        InvalidCode / TooManyAttempts."""
        account_id = base.account_id
        if self._throttle.blocked(account_id, ip):
            self._audit.record(AuditEvent.FACTOR_THROTTLED, subject=account_id, ip=ip)
            raise TooManyAttempts("too many wrong codes; try again later")

        typed = totp.normalise(code)
        method, reason, remaining = "unknown", "malformed", None
        if self._authenticators.confirmed_kinds(account_id):
            try:
                if totp.is_well_formed(typed):
                    method = "totp"
                    self._authenticators.verify_totp(account_id, typed)
                    reason = ""
                elif recovery.is_well_formed(recovery.normalise(typed)):
                    method, reason = "recovery_code", "wrong"
                    remaining = self._codes.use(account_id, typed, ip=ip)
                    if remaining is not None:
                        reason = ""
            except TotpReplayed:
                reason = "replayed"
            except InvalidCode:
                reason = "wrong"
        if reason:
            self._throttle.failed(account_id, ip)
            self._audit.record(
                AuditEvent.FACTOR_FAILED,
                subject=account_id,
                ip=ip,
                detail={"method": method, "reason": reason},
            )
            if reason == "replayed":
                raise TotpReplayed("this code was already used; wait for the next one")
            raise InvalidCode("the code is not correct")

        self._throttle.succeeded(account_id)
        result = with_second_factor(base, method, self._now())
        self._audit.record(
            AuditEvent.FACTOR_SUCCEEDED,
            subject=account_id,
            ip=ip,
            detail={"method": method, "amr": list(result.amr), "acr": result.acr},
        )
        return FactorOutcome(result, method, remaining)

    def verify_passkey(
        self, base: AuthResult, ceremony_id: str, credential: str, *, ip: str | None = None
    ) -> FactorOutcome:
        """Check a WebAuthn assertion by one of ``base``'s account's credentials (a second factor
        or a step-up); the stronger result, or PasskeyRejected / TooManyAttempts."""
        account_id = base.account_id
        if self._throttle.blocked(account_id, ip):
            self._audit.record(AuditEvent.FACTOR_THROTTLED, subject=account_id, ip=ip)
            raise TooManyAttempts("too many failed attempts; try again later")
        try:
            use = self._passkeys.verify_assertion(ceremony_id, credential, account_id=account_id)
        except PasskeyRejected as rejected:
            self._throttle.failed(account_id, ip)
            self._audit.record(
                AuditEvent.FACTOR_FAILED,
                subject=account_id,
                ip=ip,
                detail={"method": "webauthn", "reason": rejected.reason},
            )
            raise
        self._throttle.succeeded(account_id)
        result = with_passkey(
            base,
            backup_eligible=use.backup_eligible,
            user_verified=use.user_verified,
            hardware_attested=use.hardware_attested,
            at=self._now(),
        )
        self._audit.record(
            AuditEvent.FACTOR_SUCCEEDED,
            subject=account_id,
            ip=ip,
            detail={
                "method": "webauthn",
                "amr": list(result.amr),
                "acr": result.acr,
                "authenticator": use.authenticator_id,
            },
        )
        return FactorOutcome(result, "webauthn")

    # -- enrolment and removal --------------------------------------------------------------------

    def confirm_totp(
        self,
        account_id: str,
        authenticator_id: str,
        code: str,
        *,
        label: str = "",
        base: AuthResult | None = None,
        ip: str | None = None,
    ) -> Enrolled:
        """Confirm a TOTP enrolment; the first factor of an account also gets recovery codes.

        During sign-in (``base``: what the password proved) the confirming code is the second
        factor: the result completes the sign-in at ``substantial``.
        """
        first = not self._authenticators.confirmed_kinds(account_id)
        factor = self._authenticators.confirm_totp(account_id, authenticator_id, code, label=label, ip=ip)
        codes = self._codes.generate(account_id, ip=ip) if first else None
        result = None
        if base is not None:
            result = with_second_factor(base, "totp", self._now())
            self._audit.record(
                AuditEvent.FACTOR_SUCCEEDED,
                subject=account_id,
                ip=ip,
                detail={"method": "totp", "amr": list(result.amr), "acr": result.acr, "enrolment": True},
            )
        return Enrolled(factor, codes, result)

    def register_passkey(
        self,
        account_id: str,
        ceremony_id: str,
        credential: str,
        *,
        label: str,
        ip: str | None = None,
        high_assurance: bool = False,
    ) -> Enrolled:
        """Keep a newly created WebAuthn credential (``high_assurance``: a security key for
        high-assurance services, attested); the account's first factor also gets recovery codes
        (PasskeyRejected when the response is refused)."""
        first = not self._authenticators.confirmed_kinds(account_id)
        factor = self._passkeys.finish_registration(
            account_id, ceremony_id, credential, label=label, ip=ip, high_assurance=high_assurance
        )
        codes = self._codes.generate(account_id, ip=ip) if first else None
        return Enrolled(factor, codes)

    def remove(self, account_id: str, authenticator_id: str, *, ip: str | None = None) -> int:
        """Remove an authenticator (never a staff account's last); how many remain. Without any
        factor left, the recovery codes go too: they only ever stand in for one."""
        left = self._authenticators.remove(
            account_id, authenticator_id, keep_one=self.must_keep_a_factor(account_id), ip=ip
        )
        if left == 0:
            self._codes.clear(account_id)
        return left
