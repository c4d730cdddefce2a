"""Throttling failed authentication attempts (NIST SP 800-63B-4 3.2.2: at most 100 consecutive
failures per account), per account and per client IP address.

The per-account limit stops guessing one person's secret; the per-IP limit stops one address
spraying many accounts, each below its own limit. A success clears the account's count only: it
says nothing about the other accounts the address tried.
"""

from __future__ import annotations

import hashlib

from idp.storage.ephemeral import EphemeralStore


class Throttle:
    """Counters of failures in a fixed window, in the ephemeral store."""

    def __init__(
        self, store: EphemeralStore, *, name: str, max_failures: int, ip_max_failures: int, window: int
    ) -> None:
        self._store = store
        self._name = name
        self._max_failures = max_failures
        self._ip_max_failures = ip_max_failures
        self._window = window

    def _keys(self, subject: str, ip: str | None) -> tuple[str, str | None]:
        hashed = hashlib.sha256(subject.encode()).hexdigest()
        return f"{self._name}-fail:{hashed}", f"{self._name}-fail-ip:{ip}" if ip else None

    def blocked(self, subject: str, ip: str | None) -> bool:
        """True when ``subject`` or ``ip`` has used up its failures in this window."""
        account_key, ip_key = self._keys(subject, ip)
        account = self._store.get(account_key)
        if account is not None and int(account) >= self._max_failures:
            return True
        by_ip = self._store.get(ip_key) if ip_key else None
        return by_ip is not None and int(by_ip) >= self._ip_max_failures

    def failed(self, subject: str, ip: str | None) -> None:
        """Count one failure for ``subject`` and ``ip``."""
        account_key, ip_key = self._keys(subject, ip)
        self._store.incr(account_key, self._window)
        if ip_key:
            self._store.incr(ip_key, self._window)

    def succeeded(self, subject: str) -> None:
        """Clear ``subject``'s count (not the address's)."""
        self._store.delete(self._keys(subject, None)[0])
