"""OpenID Provider metadata (OIDC Discovery 1.0 section 3, RFC 8414). Every value is true of this
deployment: nothing is advertised that is not served."""

from __future__ import annotations

from typing import Any

from idp.keys.keystore import SUPPORTED_ALGS
from idp.oidc.claims import SCOPE_CLAIMS
from idp.oidc.clients import CLIENT_AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS, GRANT_TYPES, SCOPES
from idp.oidc.jose import ASSERTION_ALGS
from idp.settings import ACR_VALUES, LOCALES


def provider_metadata(issuer: str) -> dict[str, Any]:
    """The discovery document for ``issuer``."""
    claims = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid"]
    for names in SCOPE_CLAIMS.values():
        claims.extend(names)
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks.json",
        "scopes_supported": list(SCOPES),
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        # RP-Initiated Logout 1.0 2.1.
        "end_session_endpoint": f"{issuer}/logout",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": list(GRANT_TYPES),
        "subject_types_supported": ["pairwise", "public"],
        "id_token_signing_alg_values_supported": list(SUPPORTED_ALGS),
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": list(dict.fromkeys(claims)),
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
        "acr_values_supported": list(ACR_VALUES),
        "ui_locales_supported": list(LOCALES),
        "claims_locales_supported": list(LOCALES),
        "display_values_supported": ["page", "popup", "touch"],
        "authorization_response_iss_parameter_supported": True,
        # Back-Channel Logout 1.0 2.1: logout tokens go to clients' back-channel URIs, with sid.
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "service_documentation": f"{issuer}/",
    }
