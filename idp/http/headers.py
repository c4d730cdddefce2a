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


def init_app(app: Flask, *, hsts: bool) -> None:
    """Register the after-request hook."""

    @app.after_request
    def _secure(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if hsts:
            headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        if response.mimetype == "text/html" or request.path in (
            "/token",
            "/userinfo",
            "/revoke",
            "/introspect",
        ):
            # Pages may hold codes or personal data; never cache them.
            headers["Cache-Control"] = "no-store"
            headers.setdefault("Pragma", "no-cache")
        return response
