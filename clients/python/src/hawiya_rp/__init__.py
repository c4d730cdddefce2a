"""hawiya-rp: sign people in with Hawiya (OpenID Connect) and protect agency APIs.

The core is framework-free (``hawiya_rp.client``, ``hawiya_rp.resource``); the Flask integration is
``hawiya_rp.flask``. Start with ``OpenIDClient(ClientConfig(issuer, client_id, redirect_uri, ...))``.
"""

from hawiya_rp.assurance import LEVELS, meets, to_acr
from hawiya_rp.backchannel import LogoutToken, MemoryReplayCache, ReplayCache
from hawiya_rp.client import AuthorizationRequest, ClientConfig, OpenIDClient, TokenSet
from hawiya_rp.errors import (
    AccessTokenError,
    AssuranceTooLow,
    AuthorizationError,
    DiscoveryError,
    HawiyaRPError,
    IdTokenError,
    IssuerMismatch,
    LogoutTokenError,
    NetworkError,
    StateMismatch,
    TokenEndpointError,
    UserinfoError,
)
from hawiya_rp.http import HttpClient, Response, UrllibClient
from hawiya_rp.keys import generate_private_jwk, public_jwk
from hawiya_rp.resource import AccessTokenValidator, IntrospectionValidator

__version__ = "0.1.0"

__all__ = [
    "LEVELS",
    "AccessTokenError",
    "AccessTokenValidator",
    "AssuranceTooLow",
    "AuthorizationError",
    "AuthorizationRequest",
    "ClientConfig",
    "DiscoveryError",
    "HawiyaRPError",
    "HttpClient",
    "IdTokenError",
    "IntrospectionValidator",
    "IssuerMismatch",
    "LogoutToken",
    "LogoutTokenError",
    "MemoryReplayCache",
    "NetworkError",
    "OpenIDClient",
    "ReplayCache",
    "Response",
    "StateMismatch",
    "TokenEndpointError",
    "TokenSet",
    "UrllibClient",
    "UserinfoError",
    "generate_private_jwk",
    "meets",
    "public_jwk",
    "to_acr",
]
