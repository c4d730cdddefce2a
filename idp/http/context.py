"""Request-scoped helpers: the registry, the client IP, cookies with the deployment's flags.

On an https issuer the cookies that carry a sign-in (``SSO_COOKIE``, ``PENDING_COOKIE``,
``INTERACTION_COOKIE``) are named with the ``__Host-`` prefix (RFC 6265bis 4.1.3.2): a browser
accepts such a cookie only with Secure, Path=/ and no Domain, so no other host under the same
domain (a sibling agency's site, a forgotten test server) can plant or overwrite one, and a cookie
planted without the prefix is never read. Plain-http development on localhost cannot send Secure
cookies, so there the names stay bare. Views read these cookies with ``read_cookie`` and write them
with ``set_cookie``/``clear_cookie``, which apply the prefix.
"""

from __future__ import annotations

from typing import cast

from flask import current_app, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from idp.registry import Registry

SSO_COOKIE = "hawiya_sso"
INTERACTION_COOKIE = "hawiya_ix"
#: A sign-in waiting for its second step (idp/authn/flow.py).
PENDING_COOKIE = "hawiya_pending"
LANG_COOKIE = "hawiya_lang"
#: The browser signed in to these accounts before (idp/authn/devices.py): it passes their failure cap.
DEVICE_COOKIE = "hawiya_device"
#: The cookies named with ``__Host-`` on an https issuer.
HOST_ONLY_COOKIES = frozenset({SSO_COOKIE, INTERACTION_COOKIE, PENDING_COOKIE, DEVICE_COOKIE})
HOST_PREFIX = "__Host-"


def interaction_ui_locales() -> str | None:
    """The ``ui_locales`` of the parked authorization request this request is a step of (named by
    its ``ix`` and this browser's cookie), so that each of its pages, a form re-shown with an error
    included, speaks the language the agency asked for or the person chose (read once a request)."""
    if "_hawiya_ix_locales" not in g:
        try:
            ix = request.values.get("ix")
        except HTTPException:  # an oversized or malformed body: the error page must still render
            ix = request.args.get("ix")
        found = services().interactions.find(ix, read_cookie(INTERACTION_COOKIE)) if ix else None
        g._hawiya_ix_locales = found.ui_locales if found is not None else None
    return cast("str | None", g._hawiya_ix_locales)


def services() -> Registry:
    """The registry of the current app."""
    return cast(Registry, current_app.extensions["hawiya"])


def client_ip() -> str | None:
    """The caller's address (after ProxyFix, when proxies are trusted)."""
    return request.remote_addr


def cookie_name(name: str) -> str:
    """The name a cookie really has in this deployment (``__Host-`` prefixed where it applies)."""
    if name in HOST_ONLY_COOKIES and services().settings.secure_cookies:
        return HOST_PREFIX + name
    return name


def read_cookie(name: str) -> str | None:
    """The value of the cookie ``name`` (by its real name) on this request, if any."""
    return request.cookies.get(cookie_name(name))


def set_cookie(
    response: Response, name: str, value: str, *, max_age: int | None = None, http_only: bool = True
) -> None:
    """Set a cookie: HttpOnly, SameSite=Lax, Path=/, no Domain, Secure except on plain-http
    localhost (which the ``__Host-`` prefix needs)."""
    response.set_cookie(
        cookie_name(name),
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
        cookie_name(name), path="/", secure=services().settings.secure_cookies, httponly=True, samesite="Lax"
    )
