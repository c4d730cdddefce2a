"""Protocol endpoints: discovery, JWKS, /authorize (+ resume and consent), /token, /userinfo,
/revoke (RFC 7009), /introspect (RFC 7662) and /logout (RP-Initiated Logout 1.0).

The redirect rule (RFC 6749 4.1.2.1, node-oidc-provider's golden rule): an error goes back to the
client only once its client_id and redirect_uri are verified; otherwise the person sees an error
page. Every authorization response, success or error, query or form_post, carries ``iss``
(RFC 9207).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidRequestError
from authlib.oidc.core.errors import (
    ConsentRequiredError,
    InteractionRequiredError,
    LoginRequiredError,
    RequestNotSupportedError,
    RequestURINotSupportedError,
)
from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from idp.accounts.identity import proofing_meets
from idp.accounts.organisations import Acting
from idp.audit.events import AuditEvent
from idp.authn.results import level_rank
from idp.errors import InteractionExpired, KeyUnavailable
from idp.http.context import (
    INTERACTION_COOKIE,
    SSO_COOKIE,
    clear_cookie,
    client_ip,
    read_cookie,
    services,
    set_cookie,
)
from idp.http.errors import error_page
from idp.inbound import identifier_or_none
from idp.keys.signer import InvalidToken
from idp.oidc.acr import AcrRequirement, UnmetAuthenticationRequirementsError, requirement
from idp.oidc.claims import STAFF_CLAIMS, releases_staff_claims
from idp.oidc.claims_request import CLAIM_SCOPE, ClaimsRequest, InvalidClaimsRequest, parse_claims_request
from idp.oidc.clients import RegisteredClient
from idp.oidc.consent import ConsentRequest, needs_consent
from idp.oidc.discovery import provider_metadata
from idp.oidc.freshness import fresh_since
from idp.oidc.logout import PARAMETERS as LOGOUT_PARAMETERS
from idp.oidc.logout import CheckedLogout, InvalidLogoutRequest, LogoutRequest
from idp.oidc.server import AuthorizationRequest, AuthorizedUser
from idp.oidc.tokens import AuthContext
from idp.sessions.interactions import Interaction
from idp.sessions.service import LOGOUT, SsoSession
from idp.settings import LOA_SUBSTANTIAL, MFA_REQUIRED_ACCOUNT_TYPES

log = logging.getLogger("idp.oidc")
bp = Blueprint("oidc", __name__)

RESPONSE_MODES = ("query", "form_post")


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
    reg = services()
    reg.keystore.record_publication()  # rotations run elsewhere wait for this max-age too
    response = jsonify(reg.keystore.jwks())
    # The same setting bounds how soon a new key may sign (keys/keystore.py): never contradictory.
    response.headers["Cache-Control"] = f"public, max-age={reg.settings.jwks_max_age}"
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
    params = _request_params()
    if request.method == "POST" and _known_client_and_redirect(params):
        # A cross-site POST carries no SameSite=Lax cookie, so the SSO session is invisible here.
        # Park the request and continue with a top-level GET, which does carry it.
        interaction = services().interactions.park(params)
        response = redirect(url_for("oidc.resume", ix=interaction.id), code=303)
        set_cookie(response, INTERACTION_COOKIE, interaction.id, max_age=services().settings.interaction_ttl)
        return response
    return _authorize(params, None)


def _known_client_and_redirect(params: dict[str, list[str]]) -> bool:
    client_ids, redirect_uris = params.get("client_id", []), params.get("redirect_uri", [])
    if len(client_ids) != 1 or len(redirect_uris) != 1 or any(len(v) > 1 for v in params.values()):
        return False  # let validation answer at once (error page or redirect)
    client = services().clients.active(client_ids[0])
    return client is not None and client.check_redirect_uri(redirect_uris[0])


@bp.get("/authorize/resume")
def resume() -> Response:
    """Continue a parked authorization request (after sign-in, or after a cross-site POST)."""
    reg = services()
    interaction = reg.interactions.load(request.args.get("ix"), read_cookie(INTERACTION_COOKIE))
    return _authorize(interaction.params, interaction)


def _finish(response: Response, params: dict[str, str], redirect_uri: str | None) -> Response:
    """Add ``iss`` (RFC 9207 2) and deliver the response in the requested mode.

    The query is parsed rather than searched: a registered redirect URI may carry its own
    parameters (RFC 6749 3.1.2), and ``?dismiss=1`` must not pass for an ``iss``.
    """
    issuer = services().settings.issuer
    if not response.location:
        return response
    if ("iss", issuer) not in parse_qsl(urlsplit(response.location).query):
        response.location = add_params_to_uri(response.location, [("iss", issuer)])
    if params.get("response_mode") != "form_post" or not redirect_uri:
        return response
    # OAuth 2.0 Form Post Response Mode: the same parameters, POSTed by the browser.
    own = parse_qsl(urlsplit(redirect_uri).query, keep_blank_values=True)
    fields = parse_qsl(urlsplit(response.location).query, keep_blank_values=True)
    fields = [pair for pair in fields if pair not in own]
    page = Response(
        render_template("oidc/form_post.html", action=redirect_uri, fields=fields), mimetype="text/html"
    )
    for header in ("Set-Cookie",):
        for value in response.headers.getlist(header):
            page.headers.add(header, value)
    return page


def _error(oauth_request: AuthorizationRequest, error: OAuth2Error) -> Response:
    """Redirect the error to a verified redirect_uri, or show it on a page."""
    redirect_uri = getattr(error, "redirect_uri", None)
    if redirect_uri:
        error.state = oauth_request.payload.state
        data = dict(oauth_request.payload.data)
        if data.get("response_mode") not in RESPONSE_MODES:
            data.pop("response_mode", None)  # an unusable mode: answer in the default (query)
        return _finish(services().oauth.handle_error_response(oauth_request, error), data, redirect_uri)
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


def _park(
    params: dict[str, list[str]],
    interaction: Interaction | None,
    *,
    acr: str | None = None,
    max_age: str | None = None,
    login: bool = False,
) -> Interaction:
    """The request parked (or its parked form), with what the sign-in pages must know of it: the
    level it needs and from when a proof is fresh enough for it (counted from its parking)."""
    reg = services()
    if interaction is None:
        interaction = reg.interactions.park(params)
    since = fresh_since(max_age=max_age, login=login, parked_at=interaction.created_at, now=reg.clock.now())
    if (interaction.acr, interaction.fresh_since) != (acr, since):
        interaction = reg.interactions.update(interaction, acr=acr, fresh_since=since)
    return interaction


def _go(endpoint: str, interaction: Interaction) -> Response:
    ui_locales = interaction.ui_locales
    extra: dict[str, Any] = {"ui_locales": ui_locales} if ui_locales else {}
    response = redirect(url_for(endpoint, ix=interaction.id, **extra))
    set_cookie(response, INTERACTION_COOKIE, interaction.id, max_age=services().settings.interaction_ttl)
    return response


def _hint_subject(hint: str, client: RegisteredClient, redirect_uri: str) -> str:
    """The ``sub`` of an ``id_token_hint`` this IdP issued to ``client`` (expired is fine: OIDC
    Core 3.1.2.1); InvalidRequestError otherwise, sent back to the (verified) ``redirect_uri``."""
    reg = services()
    try:
        _header, claims = reg.verifier.verify(hint, typ="jwt")
    except InvalidToken:
        raise InvalidRequestError(
            "id_token_hint is not an ID token issued by Hawiya", redirect_uri=redirect_uri
        ) from None
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if claims.get("iss") != reg.settings.issuer or client.client_id not in audiences:
        raise InvalidRequestError("id_token_hint was not issued to this client", redirect_uri=redirect_uri)
    return str(claims.get("sub", ""))


def _check_request(data: dict[str, str], redirect_uri: str, client: RegisteredClient) -> ClaimsRequest:
    """Parameters Authlib does not check: request objects, response_mode, claims (raises OAuth2Error)."""
    if "request" in data:
        raise RequestNotSupportedError(redirect_uri=redirect_uri)
    if "request_uri" in data:
        raise RequestURINotSupportedError(redirect_uri=redirect_uri)
    if data.get("response_mode", "query") not in RESPONSE_MODES:
        raise InvalidRequestError("response_mode must be query or form_post", redirect_uri=redirect_uri)
    try:
        return parse_claims_request(data.get("claims")).within(client.scope)
    except InvalidClaimsRequest as bad:
        raise InvalidRequestError(str(bad), redirect_uri=redirect_uri) from None


def _requirement(
    data: dict[str, str], claims_request: ClaimsRequest, client: RegisteredClient, account_type: str | None
) -> AcrRequirement:
    """The level the request needs: its acr_values and essential acr claim, the client's minimum,
    and (``account_type`` known) the account's (staff must use MFA)."""
    return requirement(
        acr_values=data.get("acr_values"),
        essential=claims_request.essential_acr,
        minimums=(
            client.min_acr,
            LOA_SUBSTANTIAL if account_type in MFA_REQUIRED_ACCOUNT_TYPES else None,
        ),
    )


def _acting_for(account_id: str, data: dict[str, str], interaction: Interaction | None) -> Acting | None:
    """Acting on behalf (the ``business`` scope): the organisation the person chose on the picker
    page, else the one the agency hinted at (``org_hint``: id or registration number), if the person
    may act for it now; None when they still have to choose."""
    reg = services()
    chosen = interaction.extra.get("organisation") if interaction is not None else None
    acting = reg.organisations.acting(account_id, chosen) if chosen else None
    if acting is None and data.get("org_hint"):
        acting = reg.organisations.acting(account_id, data["org_hint"])
    return acting


def _authorize(
    params: dict[str, list[str]], interaction: Interaction | None, *, denied: bool = False
) -> Response:
    reg = services()
    oauth_request = AuthorizationRequest(reg.settings.issuer + "/authorize", params)
    handle = read_cookie(SSO_COOKIE)
    session = reg.sessions.find(handle)
    person = reg.accounts.find(session.account_id) if session else None
    user = None
    if session is not None and person is not None and person.active:
        user = AuthorizedUser(person, AuthContext(session.auth_result, session.sid))

    try:
        grant = reg.oauth.get_consent_grant(request=oauth_request, end_user=user)
        claims_request = _check_request(oauth_request.payload.data, grant.redirect_uri, grant.request.client)
        client: RegisteredClient = grant.request.client
        data = oauth_request.payload.data
        hint = data.get("id_token_hint")
        hint_sub = _hint_subject(hint, client, grant.redirect_uri) if hint else None
    except OAuth2Error as error:
        return _error(oauth_request, error)

    prompts = set(data.get("prompt", "").split())
    max_age, login = data.get("max_age"), "login" in prompts
    # What the request itself needs; the account's own minimum joins once the person is known.
    asked = _requirement(data, claims_request, client, None)
    signed_in_here = interaction is not None and interaction.authenticated
    # Only the factors proven recently enough for this request count (max_age, prompt=login).
    since = fresh_since(
        max_age=max_age,
        login=login,
        parked_at=interaction.created_at if interaction else None,
        now=reg.clock.now(),
    )
    fresh = session.assess(since) if user is not None and session is not None else None
    someone_else = (
        user is not None and hint_sub is not None and hint_sub != reg.subjects.subject(client, user.person.id)
    )
    if someone_else and signed_in_here:
        # OIDC Core 3.1.2.1: the hint names the person the client expects; whoever signed in on
        # the way is not them, and the client must not get a code for someone else.
        return _error(
            oauth_request,
            LoginRequiredError(
                "the person signed in is not the one id_token_hint names", redirect_uri=grant.redirect_uri
            ),
        )
    if user is None or fresh is None or someone_else:
        if "none" in prompts:
            return _error(oauth_request, LoginRequiredError(redirect_uri=grant.redirect_uri))
        return _go("authn.signin", _park(params, interaction, acr=asked.level, max_age=max_age, login=login))
    # What is asserted (acr, amr, auth_time) rests on the fresh proofs alone.
    user = replace(user, context=AuthContext(fresh, user.context.sid))

    # How well the identity was proven is not how strongly the person signed in: no step-up helps.
    if not proofing_meets(user.person.proofing_level, client.min_proofing):
        return _error(
            oauth_request,
            UnmetAuthenticationRequirementsError(
                f"the person's identity is not proven to the level this service requires "
                f"({client.min_proofing})",
                redirect_uri=grant.redirect_uri,
            ),
        )
    # Step-up (issue 5): the fresh proofs must reach what the client, the request and policy require.
    needed = _requirement(data, claims_request, client, user.person.account_type)
    if not needed.satisfiable:
        return _error(oauth_request, UnmetAuthenticationRequirementsError(redirect_uri=grant.redirect_uri))
    if needed.level is not None and not fresh.meets(needed.level):
        if level_rank(reg.mfa.reachable_level(user.person.id)) < level_rank(needed.level):
            return _error(
                oauth_request,
                UnmetAuthenticationRequirementsError(
                    "the person holds no factor that reaches the requested level",
                    redirect_uri=grant.redirect_uri,
                ),
            )
        if reg.mfa.offer(fresh, needed.level).anything:
            # The missing (or stale) factor alone, on top of what is fresh.
            if "none" in prompts:
                return _error(oauth_request, InteractionRequiredError(redirect_uri=grant.redirect_uri))
            return _go(
                "authn.factor", _park(params, interaction, acr=needed.level, max_age=max_age, login=login)
            )
        # Nothing the person holds lifts what is fresh (the password is stale too): sign in again.
        if "none" in prompts:
            return _error(oauth_request, LoginRequiredError(redirect_uri=grant.redirect_uri))
        return _go("authn.signin", _park(params, interaction, acr=needed.level, max_age=max_age, login=login))

    scopes = set(oauth_request.scope.split())
    if "business" in scopes and not denied:
        acting = _acting_for(user.person.id, data, interaction)
        if acting is None:
            if not reg.organisations.memberships_of(user.person.id):
                nobody = "the person acts for no organisation that can be chosen"
                return _error(oauth_request, AccessDeniedError(nobody, redirect_uri=grant.redirect_uri))
            if "none" in prompts:
                return _error(oauth_request, InteractionRequiredError(redirect_uri=grant.redirect_uri))
            return _go("oidc.organisation", _park(params, interaction))
        user = replace(user, acting=acting)

    if denied:
        reg.consents.deny(user.person.id, client.client_id)
    else:
        missing = reg.consents.missing(user.person.id, client.client_id, scopes, claims_request.personal)
        consented = interaction is not None and interaction.consented
        if missing and client.first_party and "consent" not in prompts:
            # A government service staff marked first-party: consent is implied, and recorded.
            reg.consents.grant(user.person.id, client.client_id, missing, implied=True)
        elif (missing or "consent" in prompts) and not consented:
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
    return _finish(response, data, grant.redirect_uri)


def _client_of(interaction: Interaction) -> RegisteredClient:
    """The (still active) client a parked request came from; InteractionExpired otherwise."""
    client = services().clients.active(interaction.param("client_id") or "")
    if client is None:
        raise InteractionExpired(_("This service is no longer available."))
    return client


def _consent_request(interaction: Interaction) -> tuple[RegisteredClient, ConsentRequest]:
    """The client, and everything it asks the person to allow."""
    client = _client_of(interaction)
    scopes = {s for s in client.get_allowed_scope(interaction.param("scope")).split() if needs_consent(s)}
    try:
        claims = parse_claims_request(interaction.param("claims")).within(client.scope).personal
    except InvalidClaimsRequest:
        claims = set()
    return client, ConsentRequest(frozenset(scopes), frozenset(claims))


@bp.route("/authorize/organisation", methods=["GET", "POST"])
def organisation() -> Response:
    """Ask which organisation the person acts for (the ``business`` scope)."""
    reg = services()
    interaction = reg.interactions.load(request.values.get("ix"), read_cookie(INTERACTION_COOKIE))
    session = reg.sessions.find(read_cookie(SSO_COOKIE))
    if session is None:
        return _go("authn.signin", interaction)
    client = _client_of(interaction)
    choices = reg.organisations.memberships_of(session.account_id)
    error = None
    if request.method == "POST":
        if request.form.get("decision") == "cancel":
            return _authorize(interaction.params, interaction, denied=True)
        picked = request.form.get("organisation", "")
        acting = reg.organisations.acting(session.account_id, picked) if picked else None
        if acting is not None:
            interaction = reg.interactions.update(
                interaction, extra={**interaction.extra, "organisation": acting.organisation.id}
            )
            return _authorize(interaction.params, interaction)
        error = "not_usable"
    body = render_template(
        "oidc/organisation.html",
        client=client,
        choices=choices,
        hint=interaction.param("org_hint"),
        ix=interaction.id,
        error=error,
    )
    return Response(body, status=400 if error else 200, mimetype="text/html")


@bp.route("/consent", methods=["GET", "POST"])
def consent() -> Response:
    """Ask the person to allow the agency to receive the requested claims."""
    reg = services()
    interaction = reg.interactions.load(request.values.get("ix"), read_cookie(INTERACTION_COOKIE))
    session = reg.sessions.find(read_cookie(SSO_COOKIE))
    if session is None:
        return _go("authn.signin", interaction)
    client, asked = _consent_request(interaction)
    if request.method == "POST":
        if request.form.get("decision") == "approve":
            reg.consents.grant(session.account_id, client.client_id, asked)
            interaction = reg.interactions.update(interaction, consented=True)
            return _authorize(interaction.params, interaction)
        return _authorize(interaction.params, interaction, denied=True)
    scope_claims = {c for s in asked.scopes for c, scope in CLAIM_SCOPE.items() if scope == s}
    person = reg.accounts.find(session.account_id)
    # Staff claims only ever reach a client of the person's own agency: promise nothing else.
    staff_released = releases_staff_claims(person, client.agency)
    shown = {s for s in asked.scopes if s != "staff" or staff_released}
    hidden = set() if staff_released else set(STAFF_CLAIMS)
    return Response(
        render_template(
            "oidc/consent.html",
            client=client,
            scopes=sorted(shown),
            claims=sorted(asked.claims - scope_claims - hidden),
            ix=interaction.id,
            person=person,
        ),
        mimetype="text/html",
    )


# -- token, userinfo, revocation, introspection ---------------------------------------------------


def _repeated_parameter() -> Response | None:
    """RFC 6749 3.2: request parameters MUST NOT be included more than once (Authlib takes the first)."""
    if any(not isinstance(key, str) for key in request.form):
        # A multipart part whose name did not parse (werkzeug gives it None): no parameter at all.
        description = "a form field has no name"
    else:
        repeated = sorted(key for key in request.form if len(request.form.getlist(key)) > 1)
        if not repeated:
            return None
        description = f"repeated parameter {repeated[0]}"
    response = jsonify(error="invalid_request", error_description=description)
    response.status_code = 400
    return response


def _oauth_error(error: OAuth2Error) -> Response:
    status, body, headers = error()
    response = jsonify(body)
    response.status_code = status
    for name, value in headers:
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


#: Seconds a client is asked to wait when no token can be signed (Retry-After, RFC 9110 10.2.3).
SIGNING_RETRY_AFTER = 5


@bp.post("/token")
def token() -> Response:
    """The token endpoint (RFC 6749 3.2); Authlib validates, Hawiya signs."""
    try:
        response: Response = _repeated_parameter() or services().oauth.create_token_response()
    except KeyUnavailable as unavailable:
        # The signer (an HSM, KMS or signing service) cannot sign: a transient outage to the
        # client, in the protocol's vocabulary (RFC 6749 4.1.2.1's temporarily_unavailable).
        log.error("no token could be signed: %s", unavailable.message)
        response = jsonify(
            error="temporarily_unavailable", error_description="tokens cannot be signed right now; try again"
        )
        response.status_code = 503
        response.headers["Retry-After"] = str(SIGNING_RETRY_AFTER)
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


@dataclass(frozen=True)
class _TokenCall:
    """An authenticated call about one token (RFC 7009 2.1, RFC 7662 2.1)."""

    client: RegisteredClient
    token: str
    hint: str | None


def _token_call(endpoint: str) -> _TokenCall | Response:
    """Authenticate the caller and read ``token`` and ``token_type_hint``, or the error response."""
    refused = _repeated_parameter()
    if refused is not None:
        return refused
    try:
        client = services().oauth.authenticate_endpoint_client(endpoint)
    except OAuth2Error as error:
        return _oauth_error(error)
    token_value = request.form.get("token")
    if not token_value:
        return _oauth_error(InvalidRequestError("the token parameter is required"))
    return _TokenCall(client, token_value, request.form.get("token_type_hint"))


@bp.post("/revoke")
def revoke() -> Response:
    """Token revocation (RFC 7009): refresh tokens (their family) and access tokens (deny-list)."""
    reg = services()
    call = _token_call("revocation")
    if isinstance(call, Response):
        return call
    # RFC 7009 2.1: the hint only orders the search; a hint Hawiya does not know is ignored.
    attempts = [
        lambda: reg.refresh.revoke_token(call.token, call.client.client_id),
        lambda: reg.access_tokens.revoke(call.token, call.client),
    ]
    if call.hint == "access_token":
        attempts.reverse()
    if any(attempt() for attempt in attempts):
        reg.audit.record(
            AuditEvent.TOKEN_REVOKED,
            client_id=call.client.client_id,
            detail={"hint": call.hint if call.hint in ("access_token", "refresh_token") else None},
        )
    # RFC 7009 2.2: 200 whether or not the token was valid, so nothing is learned by probing.
    done = Response("", status=200)
    done.headers["Cache-Control"] = "no-store"
    return done


@bp.post("/introspect")
def introspect() -> Response:
    """Token introspection (RFC 7662) for confidential clients."""
    call = _token_call("introspection")
    if isinstance(call, Response):
        return call
    response = jsonify(services().introspection.introspect(call.token, call.hint, call.client))
    response.headers["Cache-Control"] = "no-store"
    return response


# -- RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0; the rules: idp/oidc/logout.py) ----

#: A logout request POSTed cross-site waits under this cookie for the GET that sees the session.
LOGOUT_COOKIE = "hawiya_logout"


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Response:
    """The end_session_endpoint (section 2: GET and POST)."""
    if request.method == "GET":
        return _logout(_request_params())
    # A cross-site POST carries no SameSite=Lax cookie, so the SSO session is invisible here (and
    # the person would be told they are signed out while they are not). Park the request and
    # continue with a top-level GET, which does carry it.
    reg = services()
    interaction = reg.interactions.park(_request_params())
    ui_locales = interaction.param("ui_locales")
    extra: dict[str, Any] = {"ui_locales": ui_locales} if ui_locales else {}
    response = redirect(url_for("oidc.logout_resume", ix=interaction.id, **extra), code=303)
    set_cookie(response, LOGOUT_COOKIE, interaction.id, max_age=reg.settings.interaction_ttl)
    return response


@bp.get("/logout/resume")
def logout_resume() -> Response:
    """Continue a logout request that was POSTed."""
    reg = services()
    interaction = reg.interactions.load(request.args.get("ix"), request.cookies.get(LOGOUT_COOKIE))
    reg.interactions.finish(interaction)
    response = _logout(interaction.params)
    clear_cookie(response, LOGOUT_COOKIE)
    return response


def _logout(params: dict[str, list[str]]) -> Response:
    """Sign out at once for a hint of this very session; otherwise ask the person first."""
    reg = services()
    handle = read_cookie(SSO_COOKIE)
    session = reg.sessions.find(handle)
    try:
        checked = reg.rp_logout.check(LogoutRequest.from_params(params))
    except InvalidLogoutRequest as bad:
        log.info("logout request refused: %s", bad)
        claimed = (params.get("client_id") or [""])[0]
        _audit_logout("invalid_request", session, client_id=identifier_or_none(claimed))
        if session is None:
            return error_page(
                _("This service sent an invalid sign-out request"),
                _("You are not signed in to Hawiya on this browser, so there is nothing to sign out of."),
                400,
                code=InvalidLogoutRequest.error,
            )
        return _logout_confirmation(None, session, status=400)
    if session is None:
        _audit_logout("not_signed_in", None, checked)
        return _signed_out(checked)
    if handle and reg.rp_logout.names_session(checked, session):
        reg.sessions.end(handle, reason=LOGOUT, ip=client_ip())
        _audit_logout("signed_out", session, checked)
        return _signed_out(checked)
    _audit_logout("confirmation_shown", session, checked)
    return _logout_confirmation(checked, session)


@bp.post("/logout/confirm")
def logout_confirm() -> Response:
    """The person's answer on the confirmation page (Hawiya's own form, CSRF-protected)."""
    reg = services()
    handle = read_cookie(SSO_COOKIE)
    params = {name: request.form.getlist(name) for name in LOGOUT_PARAMETERS if name in request.form}
    try:
        checked: CheckedLogout | None = reg.rp_logout.check(LogoutRequest.from_params(params))
    except InvalidLogoutRequest:
        checked = None  # the page offered a plain sign-out: no redirect
    session = reg.sessions.find(handle)
    if request.form.get("decision") != "signout":
        _audit_logout("declined", session, checked)
        # Back to the service when it may be (it ended its own session already), else home.
        target = checked.redirect_to if checked is not None and checked.redirect_to else None
        return redirect(target or url_for("sessions.home"), code=303)
    if handle and session is not None:
        reg.sessions.end(handle, reason=LOGOUT, ip=client_ip())
    _audit_logout("confirmed" if session is not None else "not_signed_in", session, checked)
    return _signed_out(checked)


def _logout_confirmation(
    checked: CheckedLogout | None, session: SsoSession, *, status: int = 200
) -> Response:
    """The "Sign out of Hawiya?" page; for an invalid request it signs out without redirecting."""
    body = render_template(
        "oidc/logout.html",
        client=checked.client if checked is not None else None,
        fields=checked.request.as_params() if checked is not None else {},
        person=services().accounts.find(session.account_id),
        problem=checked is None,
    )
    return Response(body, status=status, mimetype="text/html")


def _signed_out(checked: CheckedLogout | None) -> Response:
    """To the registered post-logout redirect URI (with ``state``), or the signed-out page."""
    if checked is not None and checked.redirect_to:
        response = redirect(checked.redirect_to, code=303)
    else:
        refused = checked is not None and checked.redirect_refused
        response = Response(render_template("oidc/logout_done.html", refused=refused), mimetype="text/html")
    clear_cookie(response, SSO_COOKIE)
    return response


def _audit_logout(
    outcome: str,
    session: SsoSession | None,
    checked: CheckedLogout | None = None,
    *,
    client_id: str | None = None,
) -> None:
    """Record ``logout.requested``: the client, the outcome, how the hint fared, the redirect."""
    if checked is not None and checked.client is not None:
        client_id = checked.client.client_id
    elif checked is not None and checked.hint is not None:
        client_id = checked.hint.client_id  # a client no longer active, named by Hawiya's own token
    if checked is None:
        redirect_to = "none"
    elif checked.redirect_to:
        redirect_to = "registered"
    else:
        redirect_to = "refused" if checked.redirect_refused else "none"
    services().audit.record(
        AuditEvent.LOGOUT_REQUESTED,
        subject=session.account_id if session is not None else None,
        client_id=client_id,
        ip=client_ip(),
        detail={
            "outcome": outcome,
            "hint": checked.hint_status if checked is not None else None,
            "redirect": redirect_to,
            "sid": session.sid if session is not None else None,
        },
    )
