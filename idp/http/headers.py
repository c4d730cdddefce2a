"""Security headers on every response.

CSP allows nothing from another origin; ``frame-ancestors 'none'`` and X-Frame-Options stop
clickjacking. ``form-action`` is left out on purpose: Chrome applies it to the redirect that follows
a form submission, which would block the consent form's redirect back to the agency.
"""

from __future__ import annotations

from flask import Flask, Response, request

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
    "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def security_headers(*, hsts: bool) -> list[tuple[str, str]]:
    """The headers every response carries (unless a view set its own value)."""
    headers = [
        ("Content-Security-Policy", CSP),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ]
    if hsts:
        headers.append(("Strict-Transport-Security", "max-age=63072000; includeSubDomains"))
    return headers


#: Machine endpoints whose answers hold tokens or personal data: never cached.
NO_STORE_PATHS = ("/token", "/userinfo", "/revoke", "/introspect")


def init_app(app: Flask, *, hsts: bool) -> None:
    """Register the after-request hook."""
    always = security_headers(hsts=hsts)

    @app.after_request
    def _secure(response: Response) -> Response:
        headers = response.headers
        for name, value in always:
            headers.setdefault(name, value)
        if response.mimetype == "text/html" or request.path in NO_STORE_PATHS:
            # Pages may hold codes or personal data; never cache them.
            headers["Cache-Control"] = "no-store"
            headers.setdefault("Pragma", "no-cache")
        return response
