"""Identity attributes of individuals and staff: the national identity number's rule, nationality
codes, proofing levels and staff roles, each checked in one place.

The national identity number is 11 digits whose last is a check digit. The national register's
exact rule is the register's to give; until then Hawiya uses a weighted modulus-11 check (the
family most civil-ID schemes belong to): with the weights ``2 1 6 3 7 9 10 5 8 4`` over the first
ten digits, the check digit is ``11 - (sum mod 11)``, where 11 means 0 and 10 means the number was
never issued. Replace ``national_id_problem`` to adopt the register's rule; nothing else changes.
"""

from __future__ import annotations

import re

#: How the person's identity was established, weakest first: what they said of themselves, an
#: identity document checked remotely, the document checked in person at a service counter.
#: Separate from how strongly they sign in (acr); a client may require a minimum (min_proofing).
PROOFING_LEVELS = ("self_asserted", "document_check", "counter")
#: Roles a staff account may hold; each gates operations (see ``idp.admin.permissions``).
STAFF_ROLES = ("admin", "key-officer", "auditor", "helpdesk")

_WEIGHTS = (2, 1, 6, 3, 7, 9, 10, 5, 8, 4)
_DIGITS = re.compile(r"[0-9]{11}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_PASSPORT = re.compile(r"[A-Z0-9]{5,20}")


def proofing_rank(level: str | None) -> int:
    """The strength of a proofing level (0 self_asserted, 1 document_check, 2 counter); -1 otherwise."""
    return PROOFING_LEVELS.index(level) if level in PROOFING_LEVELS else -1


def proofing_meets(level: str | None, required: str | None) -> bool:
    """True when an identity proven at ``level`` satisfies a ``required`` minimum (None: any)."""
    return required is None or proofing_rank(level) >= proofing_rank(required)


def check_digit(first_ten: str) -> int | None:
    """The check digit of the first ten digits, or None when no number ends them."""
    total = sum(int(digit) * weight for digit, weight in zip(first_ten, _WEIGHTS, strict=True))
    remainder = 11 - total % 11
    if remainder == 11:
        return 0
    return None if remainder == 10 else remainder


def national_id_problem(value: str) -> str | None:
    """Why ``value`` is not a national identity number, or None when it is one."""
    if not _DIGITS.fullmatch(value):
        return "a national identity number is 11 digits"
    if value[0] == "0":
        return "a national identity number does not start with 0"
    if check_digit(value[:10]) != int(value[10]):
        return "the national identity number's check digit is wrong"
    return None


def with_check_digit(first_ten: str) -> str | None:
    """``first_ten`` completed by its check digit (for making test and demo numbers)."""
    digit = check_digit(first_ten)
    return None if digit is None else first_ten + str(digit)


def normalise_country(value: str) -> str:
    """An ISO 3166-1 alpha-2 code in capitals (``kw`` -> ``KW``); ValueError otherwise."""
    code = value.strip().upper()
    if not _COUNTRY.fullmatch(code):
        raise ValueError("nationality must be a two-letter country code (ISO 3166-1), for example KW")
    return code


def normalise_passport(value: str) -> str:
    """A passport number without spaces, in capitals; ValueError otherwise."""
    number = value.replace(" ", "").upper()
    if not _PASSPORT.fullmatch(number):
        raise ValueError("a passport number is 5-20 letters and digits")
    return number
