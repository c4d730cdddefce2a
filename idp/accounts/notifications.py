"""Security notifications, and the "this wasn't me" link each one carries.

When a second factor is bound or removed, recovery codes are made again, or a password is changed
or set, the person is mailed (in her language, the other after; Arabic first when hers is unknown).
The mail says what changed and when, never a secret: no code, token or password.

The ``Notifier`` listens to the audit log (``AuditLog.listen``): every one of these changes is
recorded by the service that makes it (``Authenticators``, ``Passkeys``, ``RecoveryCodes``,
``ActivationCodes`` ...), whatever page, console or command asked for it, so listening there
notifies for every route, present and future, without each service knowing about mail.

Each mail carries a link to ``/account/not-me?token=...``: a single-use token, stored only as its
SHA-256 in the ephemeral store, expiring after ``ttl``. Confirming it (``NotMeReports.report``)
ends every session of the account and revokes its refresh tokens (with the access tokens they
issued), so whoever made the change is thrown out; the person is then told to change her password.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from idp.accounts.service import AccountService
from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.clock import Clock
from idp.emails import MailRenderer
from idp.errors import HawiyaError, NotFound
from idp.mail import Mail, MailSender
from idp.storage.ephemeral import EphemeralStore

log = logging.getLogger("idp.accounts.notifications")

#: The notices, by the audit event that triggers each (the template has the same name).
NOTICES: Mapping[AuditEvent, str] = {
    AuditEvent.AUTHENTICATOR_ADDED: "factor_added",
    AuditEvent.AUTHENTICATOR_REMOVED: "factor_removed",
    AuditEvent.RECOVERY_CODES_GENERATED: "recovery_codes",
    AuditEvent.PASSWORD_CHANGED: "password_changed",
    AuditEvent.SIGNIN_NEW_DEVICE: "new_device",
}
_KEY = "not-me:"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NotMeGrant:
    """What a "this wasn't me" token stands for."""

    account_id: str
    #: Which notice it came in (``factor_added`` ...).
    notice: str


class NotMeLinks:
    """Single-use, expiring tokens for the "this wasn't me" link; stored hashed."""

    def __init__(self, store: EphemeralStore, *, ttl: int) -> None:
        self._store = store
        self.ttl = ttl

    def mint(self, account_id: str, notice: str) -> str:
        """A new token for ``account_id`` (only its hash is kept)."""
        token = secrets.token_urlsafe(32)
        value = json.dumps({"account_id": account_id, "notice": notice}).encode()
        self._store.put(_KEY + _digest(token), value, self.ttl)
        return token

    def peek(self, token: str) -> NotMeGrant | None:
        """What ``token`` stands for while it is unused and unexpired, else None (it stays usable)."""
        return self._decode(self._store.get(_KEY + _digest(token))) if token else None

    def take(self, token: str) -> NotMeGrant | None:
        """Spend ``token`` (atomically: a second use, or a racing twin, gets None)."""
        return self._decode(self._store.take(_KEY + _digest(token))) if token else None

    @staticmethod
    def _decode(raw: bytes | None) -> NotMeGrant | None:
        if raw is None:
            return None
        data = json.loads(raw)
        return NotMeGrant(data["account_id"], data["notice"])


class Notifier:
    """Mails a person when the security of her account changed (an ``AuditLog`` listener)."""

    def __init__(
        self,
        accounts: AccountService,
        mail: MailSender,
        links: NotMeLinks,
        renderer: MailRenderer,
        clock: Clock,
        *,
        not_me_url: str,
    ) -> None:
        self._accounts = accounts
        self._mail = mail
        self._links = links
        self._renderer = renderer
        self._clock = clock
        self._not_me_url = not_me_url

    def observe(
        self, event: AuditEvent, subject: str | None, actor: str | None, detail: Mapping[str, Any]
    ) -> None:
        """The audit listener: notify the subject of a change in ``NOTICES``."""
        notice = NOTICES.get(event)
        if notice is None or subject is None:
            return
        if event is AuditEvent.AUTHENTICATOR_ADDED and detail.get("provisioned"):
            return  # made by operator tooling (the demo) before the person ever signed in
        self.notify(subject, notice, kind=str(detail.get("kind", "")))

    def notify(self, account_id: str, notice: str, *, kind: str = "") -> bool:
        """Mail ``notice`` to the person; False when she has no address (nothing to send to). A
        notification that cannot be queued is logged, never raised: the change itself is done."""
        try:
            person = self._accounts.get(account_id)
        except NotFound:
            return False
        if not person.email:
            return False
        try:
            token = self._links.mint(account_id, notice)
            now = self._clock.now()
            name_en = person.name or person.username
            rendered = self._renderer.render(
                notice,
                person.locale,
                name_en=name_en,
                name_ar=person.name_ar or name_en,
                kind=kind,
                when=datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M UTC"),
                until=datetime.fromtimestamp(now + self._links.ttl, UTC).strftime("%Y-%m-%d %H:%M UTC"),
                not_me_url=f"{self._not_me_url}?token={token}",
            )
            self._mail.send(Mail(person.email, rendered.subject, rendered.body))
        except (HawiyaError, OSError):
            log.warning("the %s notification for account %s could not be queued", notice, account_id)
            return False
        return True


@dataclass(frozen=True)
class NotMeOutcome:
    """What confirming a "this wasn't me" link did."""

    account_id: str
    sessions_ended: int
    refresh_families_revoked: int


class NotMeReports:
    """Confirming a "this wasn't me" link: every session ends, every refresh token is revoked."""

    def __init__(
        self, links: NotMeLinks, evict: Callable[[str, str], tuple[int, int]], audit: AuditLog
    ) -> None:
        """``evict(account_id, reason)`` ends the account's SSO sessions and revokes its refresh
        token families (idp/accounts/eviction.py); how many of each."""
        self._links = links
        self._evict = evict
        self._audit = audit

    def valid(self, token: str) -> bool:
        """True while ``token`` can still be confirmed (the page shows the button only then)."""
        return self._links.peek(token) is not None

    def report(self, token: str, *, ip: str | None = None) -> NotMeOutcome:
        """Spend ``token`` and secure its account; NotFound when it is unknown, used or expired."""
        grant = self._links.take(token)
        if grant is None:
            raise NotFound("this link is not valid: it may have expired or been used already")
        sessions, families = self._evict(grant.account_id, "not_me")
        self._audit.record(
            AuditEvent.ACCOUNT_NOT_ME_REPORTED,
            subject=grant.account_id,
            ip=ip,
            detail={"notice": grant.notice, "sessions_ended": sessions, "refresh_families_revoked": families},
        )
        return NotMeOutcome(grant.account_id, sessions, families)
