"""Known devices: browsers that have signed in to an account before (NIST SP 800-63B-4 3.2.2).

The per-account cap on failed passwords (``idp.authn.throttle``) stops guessing from many
addresses, but it would also lock the person out while the attack lasts. A browser that gave the
account's right password holds a device cookie for it, and passes the cap: the person keeps
signing in from their own browser while strangers' browsers are refused. It still counts towards
the per-address limits, and its wrong passwords still count, so the cookie only buys back the
person's own access, never more guesses.

The cookie holds up to ``MAX_ENTRIES`` entries, one per account that signed in on the browser
(newest first): ``<issued>.<mac>``, where the MAC is HMAC-SHA256 under an instance secret over the
account id and the issue time. The account id is not in the cookie, so it names nobody; an entry
is worth nothing for another account, and nothing without the secret. Entries expire after
``ttl`` seconds (the cookie's own lifetime): a browser not used for that long is a stranger again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.clock import Clock

#: Accounts remembered per browser (a shared family computer, a person with two accounts).
MAX_ENTRIES = 5
#: Longest cookie value read (5 entries of ~55 characters, with room to spare).
MAX_COOKIE = 512


def _entries(cookie: str | None) -> list[str]:
    if not cookie or len(cookie) > MAX_COOKIE:
        return []
    return [entry for entry in cookie.split("~") if entry][:MAX_ENTRIES]


class KnownDevices:
    """Issue and recognise device cookies bound to accounts."""

    def __init__(self, key: bytes, clock: Clock, audit: AuditLog, *, ttl: int) -> None:
        self._key = key
        self._clock = clock
        self._audit = audit
        self.ttl = ttl

    def _mac(self, account_id: str, issued: int) -> str:
        digest = hmac.new(self._key, f"device:{account_id}:{issued}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def _valid(self, entry: str, account_id: str) -> bool:
        issued_text, _, mac = entry.partition(".")
        if not issued_text.isdigit() or not mac:
            return False
        issued = int(issued_text)
        if issued + self.ttl <= self._clock.now():
            return False
        return hmac.compare_digest(mac, self._mac(account_id, issued))

    def recognises(self, cookie: str | None, account_id: str) -> bool:
        """True when ``cookie`` carries a live entry for ``account_id``."""
        return any(self._valid(entry, account_id) for entry in _entries(cookie))

    def remember(self, cookie: str | None, account_id: str, *, ip: str | None = None) -> str:
        """The cookie value after ``account_id`` signed in on the browser: a fresh entry for it
        first, then the browser's other live entries (the oldest dropped past ``MAX_ENTRIES``).
        A browser the account did not know yet is audited (``signin.new_device``: the person is
        told)."""
        if not self.recognises(cookie, account_id):
            self._audit.record(AuditEvent.SIGNIN_NEW_DEVICE, subject=account_id, ip=ip)
        fresh = f"{int(self._clock.now())}.{self._mac(account_id, int(self._clock.now()))}"
        others = [entry for entry in _entries(cookie) if not self._valid(entry, account_id)]
        live = [entry for entry in others if self._live(entry)]
        return "~".join([fresh, *live][:MAX_ENTRIES])

    def _live(self, entry: str) -> bool:
        issued_text, _, mac = entry.partition(".")
        return issued_text.isdigit() and bool(mac) and int(issued_text) + self.ttl > self._clock.now()
