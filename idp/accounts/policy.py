"""The password policy of NIST SP 800-63B-4 section 3.1.1.2.

Length only, no composition rules; at least 15 characters where the password alone signs in, 8
where a second factor is always required (both configurable); at most 64 characters are required to
be accepted and we accept up to 256; passwords on a list of commonly used or breached passwords are
refused, as are passwords that repeat the username.
The shipped list (``data/common-passwords.txt``) is described in ``data/README.md``.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib import resources

from idp.errors import WeakPassword

MAX_LENGTH = 256


@cache
def common_passwords() -> frozenset[str]:
    """The shipped blocklist, lower-cased."""
    text = resources.files("idp.accounts").joinpath("data/common-passwords.txt").read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def normalise(password: str) -> str:
    """NFKC normalisation, so the same password typed on two keyboards hashes the same (3.1.1.2)."""
    return unicodedata.normalize("NFKC", password)


class PasswordPolicy:
    """Checks a new password."""

    def __init__(self, *, min_length: int, min_length_mfa: int) -> None:
        self.min_length = min_length
        self.min_length_mfa = min_length_mfa

    def check(self, password: str, *, username: str = "", mfa_required: bool = False) -> None:
        """Raise WeakPassword with a translatable reason when ``password`` breaks the policy."""
        password = normalise(password)
        minimum = self.min_length_mfa if mfa_required else self.min_length
        if len(password) < minimum:
            too_short = WeakPassword(
                f"the password must have at least {minimum} characters", code="password_too_short"
            )
            too_short.minimum = minimum
            raise too_short
        if len(password) > MAX_LENGTH:
            raise WeakPassword(
                f"the password must have at most {MAX_LENGTH} characters", code="password_too_long"
            )
        lowered = password.lower()
        if lowered in common_passwords():
            raise WeakPassword("the password is too common; choose another", code="password_common")
        if username and username.lower() in lowered:
            raise WeakPassword("the password must not contain the username", code="password_has_username")
