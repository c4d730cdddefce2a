"""The sign-in page (username and password)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from idp.errors import AuthenticationFailed, TooManyAttempts
from idp.http.context import INTERACTION_COOKIE, SSO_COOKIE, client_ip, services, set_cookie
from idp.sessions.interactions import Interaction

bp = Blueprint("authn", __name__)


def _interaction() -> Interaction | None:
    ix = request.values.get("ix")
    if not ix:
        return None
    return services().interactions.load(ix, request.cookies.get(INTERACTION_COOKIE))


def _page(
    interaction: Interaction | None,
    *,
    error: str | None = None,
    username: str = "",
    status: int = 200,
) -> Response:
    reg = services()
    client = None
    if interaction is not None:
        client = reg.clients.active(interaction.param("client_id") or "")
        username = username or interaction.param("login_hint") or ""
    body = render_template(
        "authn/signin.html",
        ix=interaction.id if interaction else None,
        client=client,
        username=username,
        error=error,
    )
    return Response(body, status=status, mimetype="text/html")


@bp.get("/signin")
def signin() -> Response:
    """Show the sign-in form."""
    return _page(_interaction())


@bp.post("/signin")
def signin_submit() -> Response:
    """Check the credentials; on success start the SSO session and continue."""
    reg = services()
    interaction = _interaction()
    username = request.form.get("username", "")[:150]
    password = request.form.get("password", "")[:1024]
    try:
        result = reg.passwords.authenticate(username, password, ip=client_ip())
    except (AuthenticationFailed, TooManyAttempts) as failure:
        return _page(interaction, error=failure.code, username=username, status=401)

    old = request.cookies.get(SSO_COOKIE)
    if old:
        reg.sessions.end(old, reason="replaced")
    handle, _session = reg.sessions.start(result, ip=client_ip())
    if interaction is not None:
        reg.interactions.update(interaction, authenticated=True)
        response = redirect(url_for("oidc.resume", ix=interaction.id))
    else:
        response = redirect(url_for("sessions.home"))
    set_cookie(response, SSO_COOKIE, handle)
    return response
