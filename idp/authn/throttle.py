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


#: What ``SigninThrottle.attempt`` decided: go on and check the password, or refuse unchecked.
ALLOWED = "allowed"
#: This (account, address) pair used up its failures: blocked for a window that doubles each time.
PAIR_BLOCKED = "pair_blocked"
#: The address used up its failures across accounts (spraying).
ADDRESS_BLOCKED = "address_blocked"
#: The account used up its failures from everywhere (NIST's cap), and the browser is not known.
ACCOUNT_CAPPED = "account_capped"


class SigninThrottle:
    """Password sign-in throttling that protects the account without locking its person out.

    Three limits, each in the ephemeral store:

    * per (account, client address): ``max_failures`` attempts in ``window`` seconds, then the
      pair is blocked for ``window``, twice that the next time, and so on up to ``block_max``
      (the doubling is forgotten after a success from the pair, or twice ``block_max`` after its
      first block). Someone guessing from one address is slowed down exponentially; the person at
      another address is not affected at all.
    * per account: ``account_max_failures`` attempts (NIST SP 800-63B-4 3.2.2: 100) in
      ``account_window`` seconds from browsers that never signed in to the account, whatever
      their address (a botnet). A known device (``idp.authn.devices``) passes this cap; its wrong
      passwords still count.
    * per address: ``ip_max_failures`` failures across accounts in ``window`` seconds (spraying;
      the same counter the passkey sign-in uses).

    Attempts are counted *before* the password is checked, with the store's atomic ``incr``: of
    any number of concurrent guesses, only as many as the limit are ever checked (reading the
    count, checking, then counting would let them all through). So a pair's count includes its
    successes; a success clears it. The per-account count is not cleared by a success (it would
    give a guesser a fresh allowance each time the person signs in); it expires with its window.
    Nothing here sleeps: a refused attempt costs the worker one store round-trip.
    """

    def __init__(
        self,
        store: EphemeralStore,
        *,
        max_failures: int,
        window: int,
        block_max: int,
        account_max_failures: int,
        account_window: int,
        ip_max_failures: int,
        name: str = "signin",
    ) -> None:
        self._store = store
        self._max_failures = max_failures
        self._window = window
        self._block_max = max(block_max, window)
        self._account_max = account_max_failures
        self._account_window = account_window
        self._ip_max = ip_max_failures
        self._name = name

    def _pair(self, subject: str, ip: str | None) -> str:
        hashed = hashlib.sha256(f"{subject}\n{ip or '-'}".encode()).hexdigest()
        return f"{self._name}-pair:{hashed}"

    def _account(self, subject: str) -> str:
        return f"{self._name}-account:{hashlib.sha256(subject.encode()).hexdigest()}"

    def _ip(self, ip: str | None) -> str | None:
        # The same key as ``Throttle`` named "signin": passkey failures count against it too.
        return f"{self._name}-fail-ip:{ip}" if ip else None

    def attempt(self, subject: str, ip: str | None, *, known_device: bool) -> str:
        """Count an attempt for ``subject`` from ``ip`` and say whether its password may be
        checked (``ALLOWED``) or why not. Call ``failed`` or ``succeeded`` after checking."""
        pair = self._pair(subject, ip)
        if self._store.get(pair + ":blocked") is not None:
            return PAIR_BLOCKED
        ip_key = self._ip(ip)
        by_ip = self._store.get(ip_key) if ip_key else None
        if by_ip is not None and int(by_ip) >= self._ip_max:
            return ADDRESS_BLOCKED
        count = self._store.incr(pair, self._window)
        if count > self._max_failures:
            if count == self._max_failures + 1:  # exactly one racer starts the block
                self._block(pair)
            return PAIR_BLOCKED
        if known_device:
            return ALLOWED  # its failures count towards the cap after the check (``failed``)
        if self._store.incr(self._account(subject), self._account_window) > self._account_max:
            return ACCOUNT_CAPPED
        return ALLOWED

    def _block(self, pair: str) -> None:
        # The n-th block in a row lasts window * 2**(n-1), capped.
        level = self._store.incr(pair + ":level", self._block_max * 2)
        duration = min(self._window * 2 ** min(level - 1, 30), self._block_max)
        self._store.put(pair + ":blocked", b"1", duration)
        # The pair's count is left to expire with its window, which ends before the block does (a
        # block lasts at least a window): deleting it would let a racer that is between its look
        # at the block and its increment start counting from one again.

    def failed(self, subject: str, ip: str | None, *, known_device: bool) -> None:
        """The checked password was wrong: count it for the address (and, from a known device,
        for the account, whose count ``attempt`` skipped)."""
        ip_key = self._ip(ip)
        if ip_key:
            self._store.incr(ip_key, self._window)
        if known_device:
            self._store.incr(self._account(subject), self._account_window)

    def succeeded(self, subject: str, ip: str | None) -> None:
        """The right password: the pair's count and its doubling start over."""
        pair = self._pair(subject, ip)
        self._store.delete(pair)
        self._store.delete(pair + ":level")
