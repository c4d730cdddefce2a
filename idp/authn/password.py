"""Password sign-in (NIST SP 800-63B-4 section 3.1.1).

No user enumeration: an unknown username, a disabled account and a wrong password give the same
error after the same work (a dummy Argon2id verification for unknown users). Attempts are counted
before the password is checked, per (account, address), per account and per address
(``idp.authn.throttle.SigninThrottle``); a browser that signed in to the account before (its device
cookie, ``idp.authn.devices``) passes the per-account cap, so guessing from elsewhere never locks
the person out of their own browser.
"""

from __future__ import annotations

from idp.accounts.passwords import PasswordHasher
from idp.accounts.policy import normalise
from idp.accounts.service import AccountService
from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.authn.assurance import password_only
from idp.authn.devices import KnownDevices
from idp.authn.results import AuthResult
from idp.authn.throttle import ALLOWED, SigninThrottle
from idp.clock import Clock
from idp.errors import AuthenticationFailed, TooManyAttempts

_FAILED = "the username or password is not correct"


class PasswordAuthenticator:
    """Check a username and password."""

    def __init__(
        self,
        accounts: AccountService,
        hasher: PasswordHasher,
        throttle: SigninThrottle,
        devices: KnownDevices,
        clock: Clock,
        audit: AuditLog,
    ) -> None:
        self._accounts = accounts
        self._hasher = hasher
        self._throttle = throttle
        self._devices = devices
        self._clock = clock
        self._audit = audit

    def authenticate(
        self, username: str, password: str, *, ip: str | None = None, device: str | None = None
    ) -> AuthResult:
        """An AuthResult for the right password; AuthenticationFailed or TooManyAttempts else.
        ``device`` is the browser's device cookie, if it sent one."""
        username = username.strip()
        subject = username.lower()
        record = self._accounts.signin_record(username) if username else None
        known = record is not None and self._devices.recognises(device, record.person.id)
        verdict = self._throttle.attempt(subject, ip, known_device=known)
        if verdict != ALLOWED:
            self._audit.record(
                AuditEvent.SIGNIN_THROTTLED, ip=ip, detail={"username": username, "limit": verdict}
            )
            raise TooManyAttempts("too many failed attempts; try again later")

        candidate = normalise(password)
        if record is None or record.password_hash is None:
            self._hasher.verify_dummy(candidate)
            ok = False
        else:
            ok = self._hasher.verify(candidate, record.password_hash) and record.person.active

        if not ok or record is None:
            self._throttle.failed(subject, ip, known_device=known)
            self._audit.record(
                AuditEvent.SIGNIN_FAILED,
                subject=record.person.id if record else None,
                ip=ip,
                detail={"method": "pwd"},
            )
            raise AuthenticationFailed(_FAILED)

        assert record.password_hash is not None  # noqa: S101 - checked above
        if self._hasher.needs_rehash(record.password_hash):
            self._accounts.replace_password_hash(record.person.id, self._hasher.hash(candidate))
            self._audit.record(AuditEvent.PASSWORD_REHASHED, subject=record.person.id)
        self._throttle.succeeded(subject, ip)
        result = password_only(record.person.id, int(self._clock.now()))
        self._audit.record(
            AuditEvent.SIGNIN_SUCCEEDED, subject=record.person.id, ip=ip, detail={"amr": ["pwd"]}
        )
        return result
