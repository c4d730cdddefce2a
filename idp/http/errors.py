"""The one place errors become responses.

Domain errors render a page (or JSON for API paths) with their safe message; protocol errors are
mapped where they arise (Authlib's OAuth2Error carries the RFC code). Anything unexpected is logged
with its traceback and answered with a plain page that reveals nothing.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from idp.errors import HawiyaError

log = logging.getLogger("idp.http")

API_PATHS = ("/token", "/userinfo", "/revoke", "/introspect", "/jwks.json", "/.well-known/")


def wants_json() -> bool:
    """True for machine endpoints."""
    return request.path.startswith(API_PATHS)


def error_page(title: str, message: str, status: int, *, code: str = "error") -> Response:
    """Render the error page."""
    if wants_json():
        response = jsonify(error=code, error_description=message)
    else:
        response = Response(
            render_template("error.html", title=title, message=message, code=code),
            mimetype="text/html",
        )
    response.status_code = status
    return response


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(HawiyaError)
    def _domain(error: HawiyaError) -> Response:
        log.info("domain error %s on %s", error.code, request.path)
        return error_page(_("Something went wrong"), error.message, error.status, code=error.code)

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError) -> Response:
        log.info("CSRF check failed on %s", request.path)
        return error_page(
            _("This form has expired"),
            _("For your security the form could not be accepted. Go back, reload the page and try again."),
            400,
            code="csrf_failed",
        )

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        status = error.code or 500
        if wants_json():
            # Machine endpoints answer in the protocol's vocabulary (RFC 6749 5.2), in English.
            response = jsonify(error="invalid_request", error_description=error.description)
            response.status_code = status
            return response
        titles = {404: _("Page not found"), 405: _("Method not allowed")}
        return error_page(
            titles.get(status, _("The request could not be handled")),
            _("Check the address, or go back to the service you came from."),
            status,
            code="invalid_request" if status == 400 else f"http_{status}",
        )

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_page(
            _("Something went wrong"),
            _("An unexpected error happened. Please try again in a moment."),
            500,
            code="server_error",
        )
