"""The address of record confirms a first second factor: a stolen password alone cannot make
its holder the only one able to sign in.

Before the *first* second factor of a password-only account is bound (in the account area), the
person types a one-time code mailed to the account's verified address (``email_verified``), and
the owner learns of the attempt from that mail. The pending code lives in the ephemeral store for
``CODE_TTL`` seconds as a SHA-256 (never the code), for the session that asked (its ``sid``) only;
``MAX_TRIES`` wrong codes drop it and refuse new ones until the window passes, and at most
``MAX_SENDS`` mails go out per window (a resend never resets the count). A right code is consumed
atomically (``take``: of twin requests one wins) and leaves a confirmation for that session, spent
when the factor is bound. An account without a verified address is refused: staff at a service
centre bind its first factor.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets

from idp.accounts.service import Person
from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.clock import Clock
from idp.emails import MailRenderer
from idp.errors import HawiyaError, InvalidCode, NotAllowed, TooManyAttempts
from idp.mail import Mail, MailSender
from idp.storage.ephemeral import EphemeralStore

log = logging.getLogger("idp.accounts.first_factor")

#: How long a mailed code works, seconds.
CODE_TTL = 600
CODE_DIGITS = 6
#: Wrong codes per account in ``CODE_TTL`` before codes are refused (10^6 / 5: no guessing).
MAX_TRIES = 5
#: Mails per account in ``CODE_TTL``.
MAX_SENDS = 5


class NoAddressOfRecord(NotAllowed):
    """The account has no verified email address to confirm a first factor with."""

    def __init__(self) -> None:
        super().__init__(
            "a first authenticator needs a verified email address; visit a service centre",
            code="no_verified_email",
        )


class ConfirmationMailUnavailable(HawiyaError):
    """The mail with the code could not be handed to the mail sender."""

    code = "mail_unavailable"
    status = 503


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _pending_key(account_id: str) -> str:
    return f"binding-code:{account_id}"


def _tries_key(account_id: str) -> str:
    return f"binding-tries:{account_id}"


def _sends_key(account_id: str) -> str:
    return f"binding-sends:{account_id}"


def _confirmed_key(account_id: str, sid: str) -> str:
    return f"binding-confirmed:{account_id}:{_sha256(sid)}"


class FirstFactorConfirmations:
    """Mail, check and consume the code that lets a session bind an account's first factor."""

    def __init__(
        self, store: EphemeralStore, mail: MailSender, renderer: MailRenderer, clock: Clock, audit: AuditLog
    ) -> None:
        self._store = store
        self._mail = mail
        self._renderer = renderer
        self._clock = clock
        self._audit = audit

    def confirmed(self, account_id: str, sid: str) -> bool:
        """True when session ``sid`` confirmed the address of record within ``CODE_TTL``."""
        return self._store.get(_confirmed_key(account_id, sid)) is not None

    def send(self, person: Person, sid: str, *, locale: str = "ar", ip: str | None = None) -> str:
        """Mail a new code to ``person``'s verified address for session ``sid`` (an earlier code
        stops working); the address. NoAddressOfRecord, TooManyAttempts or
        ConfirmationMailUnavailable."""
        if not (person.email and person.email_verified):
            self._audit.record(
                AuditEvent.FIRST_FACTOR_REFUSED, subject=person.id, ip=ip, detail={"reason": "no_address"}
            )
            raise NoAddressOfRecord()
        if self._blocked(person.id) or self._store.incr(_sends_key(person.id), CODE_TTL) > MAX_SENDS:
            self._audit.record(
                AuditEvent.FIRST_FACTOR_REFUSED, subject=person.id, ip=ip, detail={"reason": "throttled"}
            )
            raise TooManyAttempts("too many codes asked for; try again later")
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        record = {"sid": _sha256(sid), "code": _sha256(f"{person.id}:{code}")}
        self._store.put(_pending_key(person.id), json.dumps(record).encode(), CODE_TTL)
        try:
            rendered = self._renderer.render("first_factor_code", locale, code=code, minutes=CODE_TTL // 60)
            self._mail.send(Mail(person.email, rendered.subject, rendered.body))
        except OSError:
            log.warning("a first-factor confirmation mail could not be sent")
            self._store.delete(_pending_key(person.id))
            raise ConfirmationMailUnavailable(
                "the mail with your code could not be sent; try again later"
            ) from None
        self._audit.record(AuditEvent.FIRST_FACTOR_CODE_SENT, subject=person.id, ip=ip)
        return person.email

    def confirm(self, account_id: str, sid: str, code: str, *, ip: str | None = None) -> None:
        """Check the mailed ``code`` for session ``sid``: the session may then bind the first
        factor. InvalidCode (wrong, expired, another session's) or TooManyAttempts."""
        if self._blocked(account_id):
            self._audit.record(
                AuditEvent.FIRST_FACTOR_REFUSED, subject=account_id, ip=ip, detail={"reason": "throttled"}
            )
            raise TooManyAttempts("too many wrong codes; try again later")
        typed = code.strip()
        raw = self._store.get(_pending_key(account_id))
        record = json.loads(raw) if raw is not None else {}
        right = (
            len(typed) == CODE_DIGITS
            and typed.isdigit()
            and hmac.compare_digest(str(record.get("sid", "")), _sha256(sid))
            and hmac.compare_digest(str(record.get("code", "")), _sha256(f"{account_id}:{typed}"))
        )
        # Of twin requests with the right code, exactly one takes it.
        if not right or self._store.take(_pending_key(account_id)) is None:
            if self._store.incr(_tries_key(account_id), CODE_TTL) >= MAX_TRIES:
                self._store.delete(_pending_key(account_id))
            self._audit.record(
                AuditEvent.FIRST_FACTOR_REFUSED, subject=account_id, ip=ip, detail={"reason": "wrong_code"}
            )
            raise InvalidCode("the code is not correct")
        self._store.put(_confirmed_key(account_id, sid), b"1", CODE_TTL)
        self._audit.record(AuditEvent.FIRST_FACTOR_CONFIRMED, subject=account_id, ip=ip)

    def consume(self, account_id: str, sid: str) -> None:
        """Spend the session's confirmation (its first factor is bound)."""
        self._store.delete(_confirmed_key(account_id, sid))

    def _blocked(self, account_id: str) -> bool:
        tries = self._store.get(_tries_key(account_id))
        return tries is not None and int(tries) >= MAX_TRIES
