"""Every failure the library reports, one class per step of the protocol.

Each error has a ``reason``: a short, stable machine code (``wrong_issuer``, ``expired``...) to log,
count or branch on, and a message that is safe to show or log. Neither ever holds a token, a code, a
secret or a key: at most a claim name, an algorithm or a ``kid``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hawiya_rp.client import AuthorizationRequest


class HawiyaRPError(Exception):
    """Base of every error raised by hawiya_rp."""

    #: The reason when none is given.
    default_reason = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason

    def __str__(self) -> str:
        return f"{self.message} ({self.reason})"


class NetworkError(HawiyaRPError):
    """The OpenID Provider could not be reached, or answered with something that is not JSON."""

    default_reason = "network"


class DiscoveryError(HawiyaRPError):
    """The provider's metadata (OIDC Discovery 1.0) is unreachable, invalid, or lacks an endpoint."""

    default_reason = "discovery_failed"


class StateMismatch(HawiyaRPError):
    """The authorization response does not answer the request this browser made (RFC 6749 10.12)."""

    default_reason = "state_mismatch"


class IssuerMismatch(HawiyaRPError):
    """The authorization response comes from another issuer, or does not say which (RFC 9207): a
    mix-up attack, or a misconfiguration."""

    default_reason = "issuer_mismatch"


class AuthorizationError(HawiyaRPError):
    """The provider answered the authorization request with an error (RFC 6749 4.1.2.1, OIDC Core
    3.1.2.6), for instance ``access_denied`` or ``unmet_authentication_requirements``."""

    default_reason = "authorization_error"

    def __init__(self, error: str, description: str | None = None, *, reason: str | None = None) -> None:
        message = f"the provider answered {error}"
        if description:
            message += f": {description}"
        super().__init__(message, reason=reason or error)
        self.error = error
        self.description = description


class TokenEndpointError(HawiyaRPError):
    """The token endpoint refused a request (RFC 6749 5.2) or answered something unusable."""

    default_reason = "token_endpoint_error"

    def __init__(self, error: str, description: str | None = None, *, reason: str | None = None) -> None:
        message = f"the token endpoint answered {error}"
        if description:
            message += f": {description}"
        super().__init__(message, reason=reason or error)
        self.error = error
        self.description = description


class IdTokenError(HawiyaRPError):
    """An ID token failed one of the checks of OIDC Core 3.1.3.7."""

    default_reason = "invalid_id_token"


class UserinfoError(HawiyaRPError):
    """The userinfo endpoint refused the access token, or answered for another subject."""

    default_reason = "userinfo_failed"


class LogoutTokenError(HawiyaRPError):
    """A back-channel logout token failed one of the checks of OIDC Back-Channel Logout 1.0 2.6."""

    default_reason = "invalid_logout_token"


class AccessTokenError(HawiyaRPError):
    """An access token presented to an API is refused (RFC 6750 3.1).

    ``status`` is 401 with ``error="invalid_token"`` or 403 with ``error="insufficient_scope"``;
    ``www_authenticate()`` is the header the API answers with.
    """

    default_reason = "invalid_token"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        status: int = 401,
        error: str = "invalid_token",
        scope: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.status = status
        self.error = error
        #: The scope the API needed (for ``insufficient_scope``).
        self.scope = scope

    def www_authenticate(self, realm: str | None = None) -> str:
        """The ``WWW-Authenticate`` value for this refusal (RFC 6750 3)."""
        params = [f'realm="{realm}"'] if realm else []
        params.append(f'error="{self.error}"')
        description = self.message.replace("\\", "").replace('"', "'")
        params.append(f'error_description="{description}"')
        if self.scope:
            params.append(f'scope="{self.scope}"')
        return "Bearer " + ", ".join(params)


class AssuranceTooLow(HawiyaRPError):
    """The person signed in at a lower level of assurance than the request demanded.

    ``request`` is a fresh authorization request for the demanded level: store it and redirect the
    browser to ``request.url`` to step up.
    """

    default_reason = "assurance_too_low"

    def __init__(self, *, required: str, actual: str | None, request: AuthorizationRequest) -> None:
        super().__init__(f"level {required} is required, the sign-in reached {actual or 'none'}")
        self.required = required
        self.actual = actual
        self.request = request
