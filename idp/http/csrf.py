"""CSRF protection on every form: Flask-WTF's CSRFProtect, hardened against malformed bodies.

Flask-WTF looks for a prefixed token by calling ``key.endswith`` on every form field name; a
multipart part whose name does not parse (``name="\\n"``) reaches it as ``None`` and raised
AttributeError, a server error. Such a form simply has no token: it is refused like any other.
"""

from __future__ import annotations

from flask import request, session
from flask_wtf.csrf import CSRFProtect


def renew_form_session() -> None:
    """Start a new form session at an authentication step (sign-in, step-up, password re-entry):
    Flask-WTF keeps the CSRF token in it (``csrf_token``), so a token known before the step
    (planted with a form cookie, or read over a shoulder) is refused after it, and a new one is
    made for the next page."""
    session.clear()


class HardenedCSRFProtect(CSRFProtect):
    """CSRFProtect that treats a form with unnamed fields as one without a token."""

    def _get_csrf_token(self) -> str | None:
        if any(not isinstance(key, str) for key in request.form):
            return None
        token: str | None = super()._get_csrf_token()
        return token
