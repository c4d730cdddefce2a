"""Protocol endpoints: discovery, JWKS, /authorize (+ resume and consent), /token, /userinfo.

The redirect rule (RFC 6749 4.1.2.1, node-oidc-provider's golden rule): an error goes back to the
client only once its client_id and redirect_uri are verified; otherwise the person sees an error
page. Every authorization response, success or error, carries ``iss`` (RFC 9207).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from idp.errors import InteractionExpired
from idp.http.context import INTERACTION_COOKIE, SSO_COOKIE, clear_cookie, services, set_cookie
from idp.http.errors import error_page
from idp.keys.signer import InvalidToken
from idp.oidc.claims import SCOPE_CLAIMS
from idp.oidc.clients import RegisteredClient
from idp.oidc.discovery import provider_metadata
from idp.oidc.server import AuthorizationRequest, AuthorizedUser
from idp.oidc.tokens import AuthContext
from idp.sessions.interactions import Interaction

log = logging.getLogger("idp.oidc")
bp = Blueprint("oidc", __name__)


# -- discovery ----------------------------------------------------------------------------------


@bp.get("/.well-known/openid-configuration")
def discovery() -> Response:
    """OpenID Provider metadata (OIDC Discovery 4)."""
    response = jsonify(provider_metadata(services().settings.issuer))
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/jwks.json")
def jwks() -> Response:
    """The public signing keys."""
    response = jsonify(services().keystore.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


# -- authorization ------------------------------------------------------------------------------


def _request_params() -> dict[str, list[str]]:
    """Authorization parameters from the query (GET) or the form body (POST, OIDC Core 3.1.2.1)."""
    source = request.form if request.method == "POST" else request.args
    return {key: source.getlist(key) for key in source}


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> Response:
    """The authorization endpoint."""
    return _authorize(_request_params(), None)


@bp.get("/authorize/resume")
def resume() -> Response:
    """Continue a parked authorization request after sign-in."""
    reg = services()
    interaction = reg.interactions.load(request.args.get("ix"), request.cookies.get(INTERACTION_COOKIE))
    return _authorize(interaction.params, interaction)


def _with_iss(response: Response) -> Response:
    """Add ``iss`` to an authorization response redirect (RFC 9207 section 2).

    The query is parsed rather than searched: a registered redirect URI may carry its own
    parameters (RFC 6749 3.1.2), and ``?dismiss=1`` must not pass for an ``iss``.
    """
    issuer = services().settings.issuer
    if response.location and ("iss", issuer) not in parse_qsl(urlsplit(response.location).query):
        response.location = add_params_to_uri(response.location, [("iss", issuer)])
    return response


def _error(oauth_request: AuthorizationRequest, error: OAuth2Error) -> Response:
    """Redirect the error to a verified redirect_uri, or show it on a page."""
    if getattr(error, "redirect_uri", None):
        error.state = oauth_request.payload.state
        return _with_iss(services().oauth.handle_error_response(oauth_request, error))
    log.info("authorization request refused without redirect: %s", error.error)
    return error_page(
        _("This service sent an invalid sign-in request"),
        _(
            "Hawiya could not continue. Go back to the service and try again; "
            "if it keeps happening, contact the service."
        ),
        400,
        code=error.error,
    )


def _max_age_exceeded(params: dict[str, list[str]], auth_time: int, now: float) -> bool:
    raw = (params.get("max_age") or [""])[0]
    if not raw.isdigit():
        return False
    return now - auth_time > int(raw)


def _park(params: dict[str, list[str]], interaction: Interaction | None) -> Interaction:
    return interaction or services().interactions.park(params)


def _go(endpoint: str, interaction: Interaction) -> Response:
    ui_locales = interaction.param("ui_locales")
    extra: dict[str, Any] = {"ui_locales": ui_locales} if ui_locales else {}
    response = redirect(url_for(endpoint, ix=interaction.id, **extra))
    set_cookie(response, INTERACTION_COOKIE, interaction.id, max_age=services().settings.interaction_ttl)
    return response


def _authorize(
    params: dict[str, list[str]], interaction: Interaction | None, *, denied: bool = False
) -> Response:
    reg = services()
    oauth_request = AuthorizationRequest(reg.settings.issuer + "/authorize", params)
    handle = request.cookies.get(SSO_COOKIE)
    session = reg.sessions.find(handle)
    person = reg.accounts.find(session.account_id) if session else None
    user = None
    if session is not None and person is not None and person.active:
        user = AuthorizedUser(person, AuthContext(session.auth_result, session.sid))

    try:
        grant = reg.oauth.get_consent_grant(request=oauth_request, end_user=user)
    except OAuth2Error as error:
        return _error(oauth_request, error)

    client: RegisteredClient = grant.request.client
    prompts = set(oauth_request.payload.data.get("prompt", "").split())
    fresh = interaction is not None and interaction.authenticated
    needs_login = user is None or (
        not fresh
        and ("login" in prompts or _max_age_exceeded(params, user.context.auth.auth_time, reg.clock.now()))
    )
    if needs_login:
        if "none" in prompts:
            return _error(oauth_request, LoginRequiredError(redirect_uri=grant.redirect_uri))
        return _go("authn.signin", _park(params, interaction))

    assert user is not None  # noqa: S101 - needs_login covers the None case
    if denied:
        reg.consents.deny(user.person.id, client.client_id)
    else:
        scopes = set(oauth_request.scope.split())
        missing = reg.consents.missing(user.person.id, client.client_id, scopes)
        consented = interaction is not None and interaction.consented
        if (missing or "consent" in prompts) and not consented:
            if "none" in prompts:
                return _error(oauth_request, ConsentRequiredError(redirect_uri=grant.redirect_uri))
            return _go("oidc.consent", _park(params, interaction))

    response = reg.oauth.create_authorization_response(
        request=oauth_request, grant_user=None if denied else user, grant=grant
    )
    if interaction is not None:
        reg.interactions.finish(interaction)
        clear_cookie(response, INTERACTION_COOKIE)
    if session is not None and handle and not denied:
        reg.sessions.add_client(handle, session, client.client_id)
    return _with_iss(response)


def _consent_context(interaction: Interaction) -> tuple[RegisteredClient, list[str]]:
    reg = services()
    client = reg.clients.active(interaction.param("client_id") or "")
    if client is None:
        raise InteractionExpired(_("This service is no longer available."))
    scopes = [s for s in client.get_allowed_scope(interaction.param("scope")).split() if s in SCOPE_CLAIMS]
    return client, scopes


@bp.route("/consent", methods=["GET", "POST"])
def consent() -> Response:
    """Ask the person to allow the agency to receive the requested claims."""
    reg = services()
    ix_id = request.values.get("ix")
    interaction = reg.interactions.load(ix_id, request.cookies.get(INTERACTION_COOKIE))
    session = reg.sessions.find(request.cookies.get(SSO_COOKIE))
    if session is None:
        return _go("authn.signin", interaction)
    client, scopes = _consent_context(interaction)
    if request.method == "POST":
        if request.form.get("decision") == "approve":
            reg.consents.grant(session.account_id, client.client_id, set(scopes))
            interaction = reg.interactions.update(interaction, consented=True)
            return _authorize(interaction.params, interaction)
        return _authorize(interaction.params, interaction, denied=True)
    return Response(
        render_template(
            "oidc/consent.html",
            client=client,
            scopes=scopes,
            scope_claims=SCOPE_CLAIMS,
            ix=interaction.id,
            person=reg.accounts.find(session.account_id),
        ),
        mimetype="text/html",
    )


# -- token and userinfo -------------------------------------------------------------------------


@bp.post("/token")
def token() -> Response:
    """The token endpoint (RFC 6749 3.2); Authlib validates, Hawiya signs."""
    repeated = sorted(key for key in request.form if len(request.form.getlist(key)) > 1)
    if repeated:
        # RFC 6749 3.2: parameters MUST NOT be included more than once (Authlib takes the first).
        response = jsonify(error="invalid_request", error_description=f"repeated parameter {repeated[0]}")
        response.status_code = 400
    else:
        response = services().oauth.create_token_response()
    response.headers["Cache-Control"] = "no-store"
    return response


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        return request.form.get("access_token") or None
    return None


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """UserInfo (OIDC Core 5.3), with RFC 6750 errors."""
    access_token = _bearer_token()
    if access_token is None:
        response = jsonify(error="invalid_request", error_description="a bearer token is required")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="hawiya"'
        return response
    try:
        claims: dict[str, Any] = services().userinfo.claims(access_token)
    except InvalidToken as exc:
        response = jsonify(error="invalid_token", error_description=str(exc))
        response.status_code = 401
        response.headers["WWW-Authenticate"] = (
            f'Bearer realm="hawiya", error="invalid_token", error_description="{exc}"'
        )
        return response
    response = jsonify(claims)
    response.headers["Cache-Control"] = "no-store"
    return response
