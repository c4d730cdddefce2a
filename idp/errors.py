"""Typed domain errors.

Every error carries a stable ``code`` (for logs, tests and the CLI) and a ``message`` that is safe to
show to the person or operator: it never contains a secret, password, code or token. One mapper in
``idp.http.errors`` turns them into responses; the CLI prints ``message`` on one line.
Protocol errors are Authlib's ``OAuth2Error`` classes, whose class attribute is the RFC's wire code.
"""

from __future__ import annotations


class HawiyaError(Exception):
    """Base of every domain error."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigurationError(HawiyaError):
    """Settings are missing or contradict each other; raised at start-up (fail fast)."""

    code = "configuration_error"
    status = 500


class InvalidInput(HawiyaError):
    """Input from an operator or a person failed validation."""

    code = "invalid_input"


class NotFound(HawiyaError):
    """The thing asked for does not exist (or is not visible to the caller)."""

    code = "not_found"
    status = 404


class Conflict(HawiyaError):
    """The thing to create already exists."""

    code = "conflict"
    status = 409


class WeakPassword(InvalidInput):
    """A new password breaks the password policy (NIST SP 800-63B-4 section 3.1.1.2)."""

    code = "weak_password"
    #: The least length the refused password needed (8 or 15 by account type), for the page to say.
    minimum: int | None = None


class AuthenticationFailed(HawiyaError):
    """Sign-in failed. The message never says whether the user exists."""

    code = "authentication_failed"
    status = 401


class TooManyAttempts(HawiyaError):
    """Too many failed sign-ins for this account in the throttling window."""

    code = "too_many_attempts"
    status = 429


class InvalidCode(AuthenticationFailed):
    """A one-time code (TOTP or recovery code) is wrong, malformed or already used."""

    code = "invalid_code"


class NotAllowed(HawiyaError):
    """A policy forbids this change (for example removing the last factor of a staff account)."""

    code = "not_allowed"
    status = 403


class InteractionExpired(HawiyaError):
    """The parked authorization request is gone (expired, used, or from another browser)."""

    code = "interaction_expired"


class KeyUnavailable(HawiyaError):
    """No usable signing key, or the master key cannot unseal one."""

    code = "key_unavailable"
    status = 503
