"""The sign-in between a right password and a finished second step.

A person whose account has a second factor (or must enrol one) is not signed in by the password
alone: no SSO session exists until the second step succeeds, so abandoning the code page leaves
nothing usable behind. What the password proved waits here, in the ephemeral store under the
SHA-256 of a random handle that only this browser holds (a cookie), for ``ttl`` seconds.

A new password voids the account's pending sign-ins (``password_changed``): whoever typed the old
one cannot finish a sign-in with it after a reset. The store has no index of them per account, so
a mark with the time of the change outlives every pending sign-in started before it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, replace

from idp.authn.assurance import password_only
from idp.authn.results import AuthResult
from idp.clock import Clock
from idp.storage.ephemeral import EphemeralStore


def _void_key(account_id: str) -> str:
    return "pending-void:" + account_id


@dataclass(frozen=True)
class PendingSignin:
    """A password that was right, waiting for its second step."""

    account_id: str
    #: When the password was checked: the ``auth_time`` of the sign-in it completes.
    auth_time: int
    #: ``factor`` or ``enrol`` (see idp.authn.mfa).
    step: str
    created_at: float
    #: The TOTP enrolment shown on the enrolment page (reloading it shows the same secret).
    enrolment: str | None = None
    #: The first step proved more than a password: an activation code handed over out of band, or
    #: a code mailed to the address of record (typed on the enrolment page, or at registration).
    #: Only then may a first second factor be enrolled (idp/authn/binding.py).
    confirmed: bool = False
    #: The code to the address of record was mailed for this sign-in (a reload sends no other).
    code_sent: bool = False

    @property
    def result(self) -> AuthResult:
        """What the password alone proved."""
        return password_only(self.account_id, self.auth_time)


class PendingSignins:
    """Start, find, update and finish pending sign-ins."""

    def __init__(self, store: EphemeralStore, clock: Clock, *, ttl: int) -> None:
        self._store = store
        self._clock = clock
        self.ttl = ttl

    @staticmethod
    def _key(handle: str) -> str:
        return "pending:" + hashlib.sha256(handle.encode()).hexdigest()

    def start(self, password: AuthResult, step: str, *, confirmed: bool = False) -> str:
        """Park what the password proved (and whether an out-of-band code came with it); the handle
        for the browser's cookie."""
        handle = secrets.token_urlsafe(32)
        pending = PendingSignin(
            password.account_id, password.auth_time, step, self._clock.now(), confirmed=confirmed
        )
        self._save(handle, pending)
        return handle

    def find(self, handle: str | None) -> PendingSignin | None:
        """The live pending sign-in behind ``handle``, or None (also when the account's password
        was set anew after it started)."""
        if not handle:
            return None
        raw = self._store.get(self._key(handle))
        if raw is None:
            return None
        try:
            pending = PendingSignin(**json.loads(raw))
        except (ValueError, TypeError):
            return None
        voided = self._store.get(_void_key(pending.account_id))
        if voided is not None and pending.created_at < float(voided):
            return None
        return pending

    def password_changed(self, account_id: str, *, via: str, ip: str | None) -> None:
        """Void every pending sign-in of the account started before now (an
        ``AccountService`` password listener)."""
        self._store.put(_void_key(account_id), repr(self._clock.now()).encode(), self.ttl)

    def update(self, handle: str, pending: PendingSignin, **changes: str | bool | None) -> PendingSignin:
        """Store changed fields."""
        updated = replace(pending, **changes)  # type: ignore[arg-type]
        self._save(handle, updated)
        return updated

    def finish(self, handle: str) -> bool:
        """Remove the pending sign-in; True for the one caller that did (it completes once)."""
        return self._store.take(self._key(handle)) is not None

    def _save(self, handle: str, pending: PendingSignin) -> None:
        remaining = int(pending.created_at + self.ttl - self._clock.now())
        self._store.put(self._key(handle), json.dumps(asdict(pending)).encode(), max(1, remaining))
