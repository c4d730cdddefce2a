"""Self-registration for visitors: an account is created only once its email address is proven.

Citizens and residents never register themselves (the national register is their source, see
``idp.accounts.activation``); a visitor gives a username, an email address, their names, passport
number and nationality, and a password. Nothing is created yet: the request waits in the ephemeral
store for ``registration_ttl`` seconds (24 hours), its password already hashed (Argon2id), under the
SHA-256 of a random link code, and a mail carries both a 6-digit code and a link
``/register/verify?code=...``. The 6-digit code works only in the browser that registered (a
cookie names the request), so guessing 6 digits never reaches anyone else's request, and each
request allows ``MAX_TRIES`` wrong codes before it is dropped; the link carries 256 random bits and
works from any browser. Either creates the visitor account (email verified, proofing level
``self_asserted``); only the browser that registered is signed in.

Email enumeration: a taken username is refused on the form (the person must choose another, and
usernames are no secret once anyone can register), but the form never tells whether an address
has an account. Whatever the address, the page says a code was sent *if the address can be used*;
an address that already has an account receives a mail saying so (and how to sign in) instead of
a code, so only its owner learns it. Both paths hash the password, store a request (a decoy one
for a taken address) and send one mail, and a decoy request fails codes exactly like a real one.
Starts are throttled per address and per client address; wrong codes per client address.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import asdict, dataclass
from typing import Any, NoReturn

from idp.accounts.attempts import AttemptLimit
from idp.accounts.service import AccountService, NewAccount, Person
from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.clock import Clock
from idp.emails import MailRenderer
from idp.errors import Conflict, HawiyaError, InvalidCode, InvalidInput, TooManyAttempts
from idp.mail import Mail, MailSender
from idp.storage.ephemeral import EphemeralStore

log = logging.getLogger("idp.accounts.registration")

#: Wrong 6-digit codes one request allows before it is dropped (10^6 / 5: no guessing).
MAX_TRIES = 5
CODE_DIGITS = 6
_NAME_MAX = 100


@dataclass(frozen=True)
class RegistrationRequest:
    """What a visitor typed on the registration form."""

    username: str
    email: str
    given_name: str
    family_name: str
    passport_number: str
    nationality: str
    password: str
    name_ar: str | None = None


@dataclass(frozen=True)
class Started:
    """A registration waiting for its code: ``handle`` goes in the browser's cookie."""

    handle: str
    email: str


@dataclass(frozen=True)
class PendingView:
    """What the link's confirmation page shows before the account is created."""

    username: str
    email: str


@dataclass(frozen=True)
class Registered:
    """A new visitor account; ``same_browser`` when it was confirmed in the browser that
    registered (which may then be signed in)."""

    person: Person
    same_browser: bool


class RegistrationRefused(InvalidCode):
    """A code or link that creates nothing: ``wrong``, ``too_many``, ``unknown`` or ``taken``."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the registration cannot be completed ({reason})", code=f"registration_{reason}")
        self.reason = reason


class MailUnavailable(HawiyaError):
    """The mail with the code could not be handed to the mail sender."""

    code = "mail_unavailable"
    status = 503


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _request_key(ident: str) -> str:
    return f"registration:{ident}"


def _browser_key(handle: str) -> str:
    return f"registration-browser:{_sha256(handle)}"


def _tries_key(ident: str) -> str:
    return f"registration-tries:{ident}"


def _code_hash(ident: str, code: str) -> str:
    return _sha256(f"{ident}:{code}")


class Registrations:
    """Start, confirm and complete visitors' self-registrations."""

    def __init__(
        self,
        accounts: AccountService,
        store: EphemeralStore,
        mail: MailSender,
        start_limit: AttemptLimit,
        code_limit: AttemptLimit,
        clock: Clock,
        audit: AuditLog,
        *,
        ttl: int,
        verify_url: str,
        signin_url: str,
        renderer: MailRenderer,
    ) -> None:
        self._accounts = accounts
        self._store = store
        self._mail = mail
        self._start_limit = start_limit
        self._code_limit = code_limit
        self._clock = clock
        self._audit = audit
        self.ttl = ttl
        self._verify_url = verify_url
        self._signin_url = signin_url
        self._renderer = renderer

    # -- the form ---------------------------------------------------------------------------------

    def start(self, form: RegistrationRequest, *, locale: str = "ar", ip: str | None = None) -> Started:
        """Check the form and mail a code (or, for an address with an account, a notice). The
        same answer either way. InvalidInput, WeakPassword, Conflict (username taken),
        TooManyAttempts or MailUnavailable."""
        email = form.email.strip()
        if self._start_limit.blocked(email.lower(), ip):
            self._refused("throttled", ip)
            raise TooManyAttempts("too many registrations; try again later")
        new = self._checked(form, email)
        password_hash = self._accounts.hash_new_password(
            form.password, username=new.username, account_type="visitor"
        )
        # Every attempt that gets this far counts: it probes a username or sends a mail.
        self._start_limit.failed(email.lower(), ip)
        if self._accounts.by_username(new.username) is not None:
            raise Conflict("that username is taken; choose another", code="username_taken")

        handle = secrets.token_urlsafe(32)
        in_use = self._accounts.email_in_use(email)
        link = secrets.token_urlsafe(32)
        ident = _sha256(link)
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        if in_use:
            mail = self._in_use_mail(email, locale)
        else:
            record = {
                "account": asdict(new),
                "password_hash": password_hash,
                "code": _code_hash(ident, code),
                "created_at": self._clock.now(),
            }
            self._store.put(_request_key(ident), json.dumps(record).encode(), self.ttl)
            mail = self._code_mail(email, new.username, code, link, locale)
        # A taken address gets a decoy request: its codes fail exactly like a real one's.
        self._store.put(_browser_key(handle), ident.encode(), self.ttl)
        try:
            self._mail.send(mail)
        except OSError:
            log.warning("a registration mail could not be sent")
            self._store.delete(_request_key(ident))
            raise MailUnavailable("the mail with your code could not be sent; try again later") from None
        self._audit.record(
            AuditEvent.REGISTRATION_STARTED,
            ip=ip,
            detail={"username": new.username, "address_in_use": in_use},
        )
        return Started(handle, email)

    def _checked(self, form: RegistrationRequest, email: str) -> NewAccount:
        given, family = form.given_name.strip(), form.family_name.strip()
        name_ar = (form.name_ar or "").strip() or None
        if not email:
            raise InvalidInput("an email address is needed to confirm the account", code="email_missing")
        if not given or not family:
            raise InvalidInput("given name and family name are needed", code="name_missing")
        if max(len(given), len(family), len(name_ar or "")) > _NAME_MAX:
            raise InvalidInput(f"names have at most {_NAME_MAX} characters", code="name_too_long")
        return self._accounts.check(
            NewAccount(
                account_type="visitor",
                username=form.username.strip(),
                email=email,
                email_verified=True,
                name=f"{given} {family}",
                given_name=given,
                family_name=family,
                name_ar=name_ar,
                passport_number=form.passport_number,
                nationality=form.nationality,
                proofing_level="self_asserted",
            )
        )

    # -- the code and the link --------------------------------------------------------------------

    def verify_code(self, handle: str | None, code: str, *, ip: str | None = None) -> Registered:
        """Complete the registration this browser started with its 6-digit ``code``."""
        self._check_limit(ip)
        ident_raw = self._store.get(_browser_key(handle)) if handle else None
        if ident_raw is None:
            self._fail("wrong", ip)
        ident = ident_raw.decode()
        raw = self._store.get(_request_key(ident))
        typed = code.strip()
        right = (
            raw is not None
            and len(typed) == CODE_DIGITS
            and typed.isdigit()
            and hmac.compare_digest(_code_hash(ident, typed), str(json.loads(raw).get("code", "")))
        )
        if not right:
            tries = self._store.incr(_tries_key(ident), self.ttl)
            if tries >= MAX_TRIES:
                self._store.delete(_request_key(ident))
                self._store.delete(_browser_key(handle or ""))
                self._fail("too_many", ip)
            self._fail("wrong", ip)
        return self._complete(ident, handle, same_browser=True, via="code", ip=ip)

    def pending(self, link: str) -> PendingView | None:
        """What the link would create, or None when it is unknown, used or expired."""
        raw = self._store.get(_request_key(_sha256(link))) if link else None
        if raw is None:
            return None
        account = json.loads(raw)["account"]
        return PendingView(account["username"], account["email"])

    def verify_link(self, link: str, handle: str | None, *, ip: str | None = None) -> Registered:
        """Complete the registration the mailed link names (from any browser)."""
        self._check_limit(ip)
        if not link:
            self._fail("unknown", ip)
        ident = _sha256(link)
        mine = self._store.get(_browser_key(handle)) if handle else None
        return self._complete(
            ident, handle, same_browser=mine is not None and mine.decode() == ident, via="link", ip=ip
        )

    def _complete(
        self, ident: str, handle: str | None, *, same_browser: bool, via: str, ip: str | None
    ) -> Registered:
        raw = self._store.take(_request_key(ident))  # of twin requests, one creates the account
        if raw is None:
            self._fail("unknown", ip)
        if handle:
            self._store.delete(_browser_key(handle))
        record: dict[str, Any] = json.loads(raw)
        account = record["account"]
        new = NewAccount(**{**account, "roles": tuple(account.get("roles", ()))})
        try:
            if new.email and self._accounts.email_in_use(new.email):
                raise Conflict("that address has an account now")
            person = self._accounts.create_checked(
                self._accounts.check(new), password_hash=record["password_hash"], actor="self-registration"
            )
        except Conflict:
            self._refused("taken", ip)
            raise RegistrationRefused("taken") from None
        self._audit.record(AuditEvent.REGISTRATION_COMPLETED, subject=person.id, ip=ip, detail={"via": via})
        return Registered(person, same_browser)

    def _check_limit(self, ip: str | None) -> None:
        if self._code_limit.blocked(f"ip:{ip or '-'}", ip):
            self._refused("throttled", ip)
            raise TooManyAttempts("too many wrong codes; try again later")

    def _fail(self, reason: str, ip: str | None) -> NoReturn:
        self._code_limit.failed(f"ip:{ip or '-'}", ip)
        self._refused(reason, ip)
        raise RegistrationRefused(reason)

    def _refused(self, reason: str, ip: str | None) -> None:
        self._audit.record(AuditEvent.REGISTRATION_REFUSED, ip=ip, detail={"reason": reason})

    # -- mail ---------------------------------------------------------------------------------------

    def _code_mail(self, email: str, username: str, code: str, link: str, locale: str) -> Mail:
        url = f"{self._verify_url}?code={link}"
        rendered = self._renderer.render(
            "registration_code", locale, username=username, code=code, url=url, hours=self.ttl // 3600
        )
        return Mail(email, rendered.subject, rendered.body)

    def _in_use_mail(self, email: str, locale: str) -> Mail:
        rendered = self._renderer.render("registration_in_use", locale, url=self._signin_url)
        return Mail(email, rendered.subject, rendered.body)
