"""Request-scoped helpers: the registry, the client IP, cookies with the deployment's flags."""

from __future__ import annotations

from typing import cast

from flask import current_app, request
from werkzeug.wrappers import Response

from idp.registry import Registry

SSO_COOKIE = "hawiya_sso"
INTERACTION_COOKIE = "hawiya_ix"
#: A sign-in waiting for its second step (idp/authn/flow.py).
PENDING_COOKIE = "hawiya_pending"
LANG_COOKIE = "hawiya_lang"


def services() -> Registry:
    """The registry of the current app."""
    return cast(Registry, current_app.extensions["hawiya"])


def client_ip() -> str | None:
    """The caller's address (after ProxyFix, when proxies are trusted)."""
    return request.remote_addr


def set_cookie(
    response: Response, name: str, value: str, *, max_age: int | None = None, http_only: bool = True
) -> None:
    """Set a cookie: HttpOnly, SameSite=Lax, Secure except on plain-http localhost."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=services().settings.secure_cookies,
        httponly=http_only,
        samesite="Lax",
    )


def clear_cookie(response: Response, name: str) -> None:
    """Remove a cookie."""
    response.delete_cookie(
        name, path="/", secure=services().settings.secure_cookies, httponly=True, samesite="Lax"
    )
