"""The home page (who is signed in) and local sign-out."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from idp.http.context import SSO_COOKIE, clear_cookie, services

bp = Blueprint("sessions", __name__)


@bp.get("/")
def home() -> Response:
    """What Hawiya is, and who is signed in on this browser."""
    reg = services()
    session = reg.sessions.find(request.cookies.get(SSO_COOKIE))
    person = reg.accounts.find(session.account_id) if session else None
    return Response(render_template("home.html", person=person), mimetype="text/html")


@bp.post("/signout")
def signout() -> Response:
    """End this browser's SSO session."""
    handle = request.cookies.get(SSO_COOKIE)
    if handle:
        services().sessions.end(handle, reason="signout")
    response = redirect(url_for("sessions.home"))
    clear_cookie(response, SSO_COOKIE)
    return response
