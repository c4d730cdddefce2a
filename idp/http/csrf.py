"""CSRF protection on every form: Flask-WTF's CSRFProtect, hardened against malformed bodies.

Flask-WTF looks for a prefixed token by calling ``key.endswith`` on every form field name; a
multipart part whose name does not parse (``name="\\n"``) reaches it as ``None`` and raised
AttributeError, a server error. Such a form simply has no token: it is refused like any other.
"""

from __future__ import annotations

from flask import request
from flask_wtf.csrf import CSRFProtect


class HardenedCSRFProtect(CSRFProtect):
    """CSRFProtect that treats a form with unnamed fields as one without a token."""

    def _get_csrf_token(self) -> str | None:
        if any(not isinstance(key, str) for key in request.form):
            return None
        token: str | None = super()._get_csrf_token()
        return token
