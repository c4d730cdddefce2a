"""Recovery codes: ten single-use look-up secrets (NIST SP 800-63B-4 3.1.2) for when the phone
with the authenticator app is lost.

Each code is 12 characters from a 31-character alphabet without look-alikes (59 random bits), shown as
``xxxx-xxxx-xxxx`` once, when made. Hawiya stores only HMAC-SHA256 of each code under an instance
secret (sealed under the master key): the codes are random, not passwords, so a slow hash adds
nothing, and without the instance secret a copy of the table cannot even be checked offline.
Spending one is a single conditional UPDATE, so a code works once however many requests race.
Making a new set replaces the old one entirely.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.clock import Clock
from idp.storage.repositories.authenticators import RecoveryCodeRepository

COUNT = 10
LENGTH = 12
#: Lower-case letters and digits without 0/o, 1/l/i: easy to read back from paper.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


@dataclass(frozen=True)
class RecoveryStatus:
    """How many of the account's codes are left."""

    unused: int
    total: int


def normalise(code: str) -> str:
    """A typed code reduced to its characters: case, spaces and hyphens do not matter."""
    return "".join(ch for ch in code.lower() if ch not in " -\t")


def is_well_formed(code: str) -> bool:
    """True when a normalised ``code`` could be a recovery code."""
    return len(code) == LENGTH and all(ch in ALPHABET for ch in code)


def _display(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, LENGTH, 4))


class RecoveryCodes:
    """Make, count and spend an account's recovery codes."""

    def __init__(self, repository: RecoveryCodeRepository, key: bytes, clock: Clock, audit: AuditLog) -> None:
        self._repository = repository
        self._key = key
        self._clock = clock
        self._audit = audit

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    def _hash(self, code: str) -> str:
        return hmac.new(self._key, normalise(code).encode(), hashlib.sha256).hexdigest()

    def generate(self, account_id: str, *, ip: str | None = None) -> list[str]:
        """A new set of codes, replacing every earlier one; returned once, never again."""
        codes = ["".join(secrets.choice(ALPHABET) for _ in range(LENGTH)) for _ in range(COUNT)]
        self._repository.replace(account_id, [self._hash(code) for code in codes], self._now())
        self._audit.record(
            AuditEvent.RECOVERY_CODES_GENERATED, subject=account_id, ip=ip, detail={"count": COUNT}
        )
        return [_display(code) for code in codes]

    def use(self, account_id: str, code: str, *, ip: str | None = None) -> int | None:
        """Spend ``code``; how many unused codes remain, or None when it is not a live code."""
        normal = normalise(code)
        if not is_well_formed(normal):
            return None
        if not self._repository.consume(account_id, self._hash(normal), self._now()):
            return None
        remaining = self.status(account_id).unused
        self._audit.record(
            AuditEvent.RECOVERY_CODE_USED, subject=account_id, ip=ip, detail={"remaining": remaining}
        )
        return remaining

    def status(self, account_id: str) -> RecoveryStatus:
        """How many codes the account has left, of how many."""
        unused, total = self._repository.counts(account_id)
        return RecoveryStatus(unused, total)

    def clear(self, account_id: str) -> None:
        """Drop every code (the account no longer has a factor they could stand in for)."""
        self._repository.delete_all(account_id)
