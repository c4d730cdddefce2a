"""Valid identity numbers for tests (the checksum rule is idp.accounts.identity's)."""

from __future__ import annotations

from idp.accounts.identity import with_check_digit


def national_id(seed: int) -> str:
    """A valid, distinct national identity number for each ``seed``."""
    for step in range(10):
        number = with_check_digit(f"2{(seed * 10 + step) % 10**9:09d}")
        if number is not None:
            return number
    raise AssertionError("unreachable: one of ten consecutive numbers has a check digit")
