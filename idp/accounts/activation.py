"""Activation codes: the first credential of a person created by staff or by import.

Citizens and residents come from the national register, so nobody chooses their password for
them: staff (or the import) create the account without one and issue a one-time activation code,
mailed to the person or printed at the counter. The person types it at ``/activate`` with a new
password (the password policy applies, 8 characters for accounts that must use MFA, else 15) and
is then signed in, or sent to enrol their second factor first when their account must use one.

A code is 12 characters from a 31-character alphabet without look-alikes (59 random bits), shown
as ``XXXX-XXXX-XXXX`` in capitals (so it never reads like a recovery code) and typed in any case,
with or without separators. It lives ``activation_ttl`` seconds (7 days by default), works once,
and a new code for the same person ends every earlier unused one. Hawiya stores only HMAC-SHA256
of the code under an instance secret, like recovery codes (``idp.authn.recovery``): the code is
random, so a slow hash adds nothing, and without the secret a copy of the table cannot even be
checked offline. Spending one and setting the password is one transaction whose first statement
is a conditional UPDATE, so a code works once however many requests race. Unknown, used, expired
and throttled attempts are refused and audited with their reason; wrong codes are throttled per
client address. The code itself is never logged or audited.

A code resets the password of an account that already has one, so it is a way in for whoever gets
it: helpdesk may not issue one for an account with second factors (``ActivationNeedsApproval``;
resetting those will need a second staff member's approval), and redeeming one evicts everyone
signed in to the account (``AccountService.password_changed``, idp/accounts/eviction.py). A code
the mail sender took is recorded with its address: redeeming it proves the person reads that
address, which becomes verified (while it is still the account's); a code handed over at a counter
proves nothing about any address.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn, Protocol

from idp.accounts.attempts import AttemptLimit
from idp.accounts.service import AccountService, Person
from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.clock import Clock
from idp.emails import MailRenderer
from idp.errors import InvalidCode, NotAllowed, TooManyAttempts
from idp.mail import Mail, MailSender
from idp.storage.models import ActivationCode
from idp.storage.repositories.activation import ActivationCodeRepository

log = logging.getLogger("idp.accounts.activation")

LENGTH = 12
#: Capital letters and digits without 0/O, 1/I/L: easy to read from paper and to dictate.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
#: Why a code was refused (the ``reason`` of ``ActivationRefused`` and of the audit event).
REASONS = ("unknown", "used", "expired", "inactive")


@dataclass(frozen=True)
class IssuedCode:
    """A new activation code, in the form people read (shown or printed once, never stored)."""

    code: str
    expires_at: datetime
    #: The address it was mailed to, when it was.
    sent_to: str | None = None
    #: True when mailing was asked for and the mail could not be handed to the sender.
    mail_failed: bool = False


class ActivationRefused(InvalidCode):
    """An activation code that cannot be used: ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the activation code cannot be used ({reason})", code=f"activation_{reason}")
        self.reason = reason


class ActivationNeedsApproval(NotAllowed):
    """The account has second factors: a code would let whoever holds it around them."""

    code = "activation_needs_approval"

    def __init__(self) -> None:
        super().__init__(
            "the account has second factors, so an activation code needs a second staff member's "
            "approval, which Hawiya does not offer yet; the person can sign in with a second factor "
            "or a recovery code, or ask an administrator to remove their factors first"
        )


class FactorReader(Protocol):
    """What issuing reads of authenticators (``idp.authn.factors.Authenticators`` fits it)."""

    def factors(self, account_id: str) -> Sequence[object]:
        """The account's confirmed authenticators."""
        ...


def normalise(code: str) -> str:
    """A typed code reduced to its characters: case, spaces and hyphens do not matter."""
    return "".join(ch for ch in code.upper() if ch not in " -\t")


def is_well_formed(code: str) -> bool:
    """True when a normalised ``code`` could be an activation code."""
    return len(code) == LENGTH and all(ch in ALPHABET for ch in code)


def display(code: str) -> str:
    """``XXXX-XXXX-XXXX``."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def _subject(ip: str | None) -> str:
    # Wrong codes name no account: the client address is what the throttle counts.
    return f"ip:{ip or '-'}"


class ActivationCodes:
    """Issue activation codes and let people spend one on their first password."""

    def __init__(
        self,
        repository: ActivationCodeRepository,
        accounts: AccountService,
        factors: FactorReader,
        mail: MailSender,
        throttle: AttemptLimit,
        key: bytes,
        clock: Clock,
        audit: AuditLog,
        *,
        ttl: int,
        activate_url: str,
        renderer: MailRenderer,
    ) -> None:
        self._repository = repository
        self._accounts = accounts
        self._factors = factors
        self._mail = mail
        self._throttle = throttle
        self._key = key
        self._clock = clock
        self._audit = audit
        self.ttl = ttl
        self._activate_url = activate_url
        self._renderer = renderer

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    def _hash(self, normal: str) -> str:
        return hmac.new(self._key, normal.encode(), hashlib.sha256).hexdigest()

    def issue(self, account_id: str, *, actor: str | None, send: bool, ip: str | None = None) -> IssuedCode:
        """A new code for the account (its earlier unused codes stop working). With ``send``, it
        is also mailed to the person's address when they have one. Returned either way, for
        counter staff to print; never kept in clear. ActivationNeedsApproval when the account has
        second factors."""
        person = self._accounts.get(account_id)
        if self._factors.factors(person.id):
            self._audit.record(
                AuditEvent.ACTIVATION_CODE_WITHHELD,
                actor=actor,
                subject=person.id,
                ip=ip,
                detail={"reason": "second_factors"},
            )
            raise ActivationNeedsApproval()
        code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        now = self._now()
        expires_at = now + timedelta(seconds=self.ttl)
        code_hash = self._hash(code)
        self._repository.issue(person.id, code_hash, now=now, expires_at=expires_at)
        shown = display(code)
        sent_to, failed = None, False
        if send and person.email:
            try:
                self._mail.send(self._mail_for(person, shown, expires_at))
                sent_to = person.email
                self._repository.mark_mailed(code_hash, sent_to)
            except OSError:  # SMTP refused or unreachable: the operator still has the code to hand over
                failed = True
                log.warning("the activation mail for account %s could not be sent", person.id)
        detail: dict[str, object] = {"sent": sent_to is not None, "expires_at": expires_at.isoformat()}
        if failed:
            detail["mail_failed"] = True
        self._audit.record(
            AuditEvent.ACTIVATION_CODE_ISSUED, actor=actor, subject=person.id, ip=ip, detail=detail
        )
        return IssuedCode(shown, expires_at, sent_to, failed)

    def use(self, code: str, *, new_password: str, ip: str | None = None) -> Person:
        """Spend ``code`` on the person's first password; the person. ActivationRefused (unknown,
        used, expired, inactive), TooManyAttempts, or WeakPassword (the code stays unspent)."""
        subject = _subject(ip)
        if self._throttle.blocked(subject, ip):
            self._audit.record(AuditEvent.ACTIVATION_THROTTLED, ip=ip)
            raise TooManyAttempts("too many wrong activation codes; try again later")
        normal = normalise(code)
        row = self._repository.by_hash(self._hash(normal)) if is_well_formed(normal) else None
        if row is None:
            self._refuse("unknown", None, ip)
        if row.used_at is not None:
            self._refuse("used", row, ip)
        if row.expires_at <= self._now():
            self._refuse("expired", row, ip)
        person = self._accounts.get(row.account_id)
        if not person.active:
            self._refuse("inactive", row, ip)
        # The policy first: a password it refuses must not cost the person their code.
        password_hash = self._accounts.hash_new_password(
            new_password, username=person.username, account_type=person.account_type
        )
        # Only the address the code went to, if it is still the account's, is proven.
        mailed = row.mailed_to is not None
        verify = mailed and person.email is not None and person.email.lower() == (row.mailed_to or "").lower()
        if not self._repository.redeem(row.id, person.id, password_hash, self._now(), verify_email=verify):
            self._refuse("used", row, ip)  # a twin request spent it (or it expired) meanwhile
        self._throttle.succeeded(subject)
        self._audit.record(
            AuditEvent.ACTIVATION_CODE_USED,
            subject=person.id,
            ip=ip,
            detail={"delivery": "mail" if mailed else "counter", "email_verified": verify},
        )
        self._accounts.password_changed(person.id, via="activation_code", ip=ip)
        return self._accounts.get(person.id) if verify else person

    def _refuse(self, reason: str, row: ActivationCode | None, ip: str | None) -> NoReturn:
        self._throttle.failed(_subject(ip), ip)
        self._audit.record(
            AuditEvent.ACTIVATION_CODE_REFUSED,
            subject=row.account_id if row is not None else None,
            ip=ip,
            detail={"reason": reason},
        )
        raise ActivationRefused(reason)

    def _mail_for(self, person: Person, code: str, expires_at: datetime) -> Mail:
        name_en = person.name or person.username
        rendered = self._renderer.render(
            "activation_code",
            person.locale,
            name_en=name_en,
            name_ar=person.name_ar or name_en,
            code=code,
            url=self._activate_url,
            until=expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        )
        assert person.email is not None  # noqa: S101 - only people with an address are mailed
        return Mail(to=person.email, subject=rendered.subject, body=rendered.body)
