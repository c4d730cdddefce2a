"""Time-based one-time passwords (RFC 6238) — the only module that imports pyotp.

Secrets are 160 random bits (RFC 4226 section 4, R6), in base32 for authenticator apps. A code is
accepted in the current 30-second step or one step either side (RFC 6238 section 5.2 allows a
small window for clock drift and typing time); the matched step is returned so the caller can
refuse a second use of it (5.2: a verifier MUST NOT accept the same OTP twice).
"""

from __future__ import annotations

import hmac

import pyotp

#: RFC 6238 defaults, which every authenticator app supports.
STEP_SECONDS = 30
DIGITS = 6
#: Steps accepted either side of the current one.
TOLERANCE = 1


def new_secret() -> str:
    """A fresh random shared secret (base32, 160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, *, account_name: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account_name, issuer_name=issuer
    )


#: Arabic-Indic (U+0660-0669) and Extended Arabic-Indic (U+06F0-06F9) digits, as phones with an
#: Arabic keyboard type them, read as the ASCII digits they are.
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")


def normalise(code: str) -> str:
    """A typed code without spaces, with Arabic-Indic digits read as ASCII digits."""
    return "".join(code.split()).translate(_DIGITS)


def is_well_formed(code: str) -> bool:
    """True for exactly six ASCII digits (anything else cannot be a code)."""
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def matching_step(secret: str, code: str, *, at: float, tolerance: int = TOLERANCE) -> int | None:
    """The time step (``at // 30`` give or take ``tolerance``) whose code is ``code``, or None."""
    code = normalise(code)
    if not is_well_formed(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = int(at) // STEP_SECONDS
    found = None
    # Every candidate is compared, in constant time, so timing does not tell which step matched.
    for offset in range(-tolerance, tolerance + 1):
        step = current + offset
        if hmac.compare_digest(totp.generate_otp(step), code) and found is None:
            found = step
    return found


def code_at(secret: str, at: float) -> str:
    """The code for the instant ``at`` (the demo and operators' tooling; tests use pyotp directly)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).at(int(at))
