"""Flask integration: sign people in with Hawiya, keep their tokens server-side, protect views and
APIs.

::

    from hawiya_rp.flask import Hawiya, current_user, login_required

    app.config.update(HAWIYA_ISSUER="https://hawiya.gov.example", HAWIYA_CLIENT_ID="permits",
                      HAWIYA_CLIENT_SECRET="...", HAWIYA_REDIRECT_URI="https://permits.example/auth/callback")
    Hawiya(app)

    @app.get("/permits")
    @login_required
    def permits(): return f"Hello {current_user()['name']}"

Routes (a blueprint under ``/auth``): ``login`` (``?next=`` a path of this site, ``?acr=`` a level,
``?lang=`` the page's language), ``callback``, ``logout`` (GET: a confirmation page; POST with
``logout_csrf_token()``: signs out) and ``backchannel-logout`` (OIDC Back-Channel Logout 1.0:
register ``https://<your host>/auth/backchannel-logout`` as the client's ``backchannel_logout_uri``).

Settings are read from ``app.config``, then from the environment for those ``app.config`` leaves
unset (``SETTINGS`` lists them): ``app.config`` wins.

Why the session is built this way:

- The tokens stay in the ``TokenStore``; the browser holds only an opaque random session id. A
  Flask session cookie is signed, not encrypted: anyone holding it can read what is inside.
- The pending authorization request (state, nonce, PKCE verifier) is also kept server-side, under a
  random handle in a short-lived cookie, and is taken from the store exactly once at the callback.
- Every sign-in starts a new session id (no session fixation), and a back-channel logout ends every
  local session of the IdP session (``sid``), or of the person (``sub``) when no ``sid`` is given.
- Cookies are HttpOnly and SameSite=Lax (the callback is a top-level GET from the IdP's site), and
  Secure with the ``__Host-`` prefix unless the redirect URI is plain http on localhost.
- Signing out changes state, so it is a POST carrying a token only this site's pages know (bound to
  the session: an HMAC of its id); any other site, even a sibling under the same domain, can at most
  show the confirmation page.
- The page's language (``?lang=`` on ``/auth/login``, else the app's ``locale_selector``) goes to
  Hawiya as ``ui_locales``; the library's own pages are in Arabic (right to left) or English.
- Nothing here logs a token, a code or a secret: failures are logged by their ``reason`` only.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from hawiya_rp import pages
from hawiya_rp.assurance import LEVELS, meets, to_acr
from hawiya_rp.backchannel import ReplayCache
from hawiya_rp.client import AUTH_METHODS, AuthorizationRequest, ClientConfig, OpenIDClient, TokenSet
from hawiya_rp.errors import (
    AccessTokenError,
    AssuranceTooLow,
    AuthorizationError,
    HawiyaRPError,
    LogoutTokenError,
)
from hawiya_rp.http import HttpClient, UrllibClient
from hawiya_rp.resource import AccessTokenValidator
from hawiya_rp.store import TokenStore, open_store

__all__ = [
    "Hawiya",
    "acr_required",
    "config_from_app",
    "current_token",
    "current_tokens",
    "current_user",
    "login_required",
    "logout_csrf_token",
    "require_token",
    "settings_from_env",
]

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("hawiya_rp.flask")

EXTENSION = "hawiya_rp"
#: Every setting the extension reads (from ``app.config``, else the environment): what it means,
#: and its default.
SETTINGS: dict[str, str] = {
    "HAWIYA_ISSUER": "Hawiya's issuer URL (required), e.g. https://hawiya.gov.example",
    "HAWIYA_CLIENT_ID": "this service's client id at Hawiya (required)",
    "HAWIYA_REDIRECT_URI": "this service's registered https://<host>/auth/callback (required)",
    "HAWIYA_CLIENT_SECRET": "the client secret (client_secret_basic, or client_secret_post); or:",
    "HAWIYA_PRIVATE_JWK_FILE": "a file holding this service's private JWK (private_key_jwt; "
    "make one with `python -m hawiya_rp keygen`)",
    "HAWIYA_AUTH_METHOD": "the token_endpoint_auth_method the client is registered with: "
    + ", ".join(AUTH_METHODS)
    + " (default: private_key_jwt with a key, client_secret_basic with a secret, else none)",
    "HAWIYA_PROXY": "the outbound proxy to reach Hawiya, http://[user:password@]host:port (default: "
    "the environment's HTTPS_PROXY/HTTP_PROXY; NO_PROXY applies to both)",
    "HAWIYA_SCOPE": "the scopes to ask for, as registered for the agency (default: openid)",
    "HAWIYA_STORE": "where sessions live: redis://… or a folder (default: <instance>/hawiya-sessions)",
    "HAWIYA_SESSION_TTL": "how long a local session lasts, in seconds (default: 28800, a working day)",
    "HAWIYA_FETCH_USERINFO": "fetch userinfo at sign-in for current_user() (default: true)",
    "HAWIYA_POST_LOGOUT_REDIRECT_URI": "where Hawiya sends the browser after RP-initiated logout",
    "HAWIYA_COOKIE_NAME": "the session cookie's name (default: hawiya-rp-<client id>)",
    "HAWIYA_API_AUDIENCE": "require_token: this API's resource identifier (the aud of its tokens)",
    "HAWIYA_API_REALM": "require_token: the realm in WWW-Authenticate challenges",
    "HAWIYA_ERROR_TEMPLATE": "a template for error pages (given status, title, message, code, lang, dir)",
}
#: How long a person may take at the IdP between ``/auth/login`` and ``/auth/callback`` (seconds).
PENDING_TTL = 600
#: How long a local session lasts unless ``HAWIYA_SESSION_TTL`` says otherwise (seconds): a working day.
DEFAULT_SESSION_TTL = 8 * 3600
#: Only ``openid`` unless the agency configures more: Hawiya refuses (``invalid_scope``) a scope it
#: knows that the agency's client is not registered for, so a default must not assume any.
DEFAULT_SCOPE = "openid"
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")

bp = Blueprint("hawiya", __name__, url_prefix="/auth")


@dataclass
class _State:
    """What the extension keeps for one app (in ``app.extensions``: the extension never holds the app)."""

    client: OpenIDClient
    store: TokenStore
    http: HttpClient | None
    session_ttl: int
    fetch_userinfo: bool
    secure_cookies: bool
    session_cookie: str
    pending_cookie: str
    api_audience: str | None
    api_realm: str | None
    error_template: str | None
    locale_selector: Callable[[], str | None] | None = None
    validators: dict[str, AccessTokenValidator] = field(default_factory=dict)

    def validator(self, audience: str) -> AccessTokenValidator:
        """One cached validator per audience (its JWKS cache is what makes it fast)."""
        if audience not in self.validators:
            self.validators[audience] = AccessTokenValidator(
                self.client.config.issuer, audience, http=self.http
            )
        return self.validators[audience]


class Hawiya:
    """The Flask extension: ``Hawiya(app)`` or ``hawiya = Hawiya(); hawiya.init_app(app)``.

    ``config`` and ``store`` default to the ``HAWIYA_*`` settings (``SETTINGS`` lists them) of
    ``app.config``, else of the environment. ``http`` replaces the library's HTTP client.
    ``locale_selector`` returns the language of the page being shown (for instance Flask-Babel's
    ``get_locale``): it goes to Hawiya as ``ui_locales`` and chooses the library's own pages' language.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        config: ClientConfig | None = None,
        store: TokenStore | None = None,
        http: HttpClient | None = None,
        locale_selector: Callable[[], Any] | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._http = http
        self._locale_selector = locale_selector
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Configure ``app``: its client, its store and the ``/auth`` routes."""
        settings = settings_of(app)
        config = self._config or config_from_app(settings)
        store = self._store or open_store(
            settings.get("HAWIYA_STORE") or os.path.join(app.instance_path, "hawiya-sessions")
        )
        http = self._http or _http_client(settings.get("HAWIYA_PROXY"))
        secure = not _is_local_http(config.redirect_uri)
        # Cookies are per host, not per port: two services on one host need their own names.
        base = settings.get("HAWIYA_COOKIE_NAME") or "hawiya-rp-" + _UNSAFE_NAME.sub("-", config.client_id)
        prefix = "__Host-" if secure else ""
        # A logout token is accepted once across every process sharing the store (when it can
        # remember: both built-in stores can), else once per process.
        replay = store if callable(getattr(store, "add", None)) else None
        app.extensions[EXTENSION] = _State(
            client=OpenIDClient(config, http=http, replay_cache=cast(ReplayCache | None, replay)),
            store=store,
            http=http,
            session_ttl=int(settings.get("HAWIYA_SESSION_TTL") or DEFAULT_SESSION_TTL),
            fetch_userinfo=_flag(settings.get("HAWIYA_FETCH_USERINFO", True)),
            secure_cookies=secure,
            session_cookie=f"{prefix}{base}",
            pending_cookie=f"{prefix}{base}-pending",
            api_audience=settings.get("HAWIYA_API_AUDIENCE"),
            api_realm=settings.get("HAWIYA_API_REALM"),
            error_template=settings.get("HAWIYA_ERROR_TEMPLATE"),
            locale_selector=self._locale_selector,
        )
        app.register_blueprint(bp)
        app.jinja_env.globals["logout_csrf_token"] = logout_csrf_token
        # Flask-WTF: the IdP's back-channel POST carries no CSRF token, and the logout form carries
        # the library's own (its field is not Flask-WTF's, so Flask-WTF would refuse it).
        csrf = app.extensions.get("csrf")
        if csrf is not None and hasattr(csrf, "exempt"):
            csrf.exempt(backchannel_logout)
            csrf.exempt(logout)

    @staticmethod
    def client() -> OpenIDClient:
        """The current app's OpenID client (for refresh, userinfo, custom requests)."""
        return _state().client

    @staticmethod
    def store() -> TokenStore:
        """The current app's token store."""
        return _state().store


def config_from_app(settings: Mapping[str, Any]) -> ClientConfig:
    """A ``ClientConfig`` from ``HAWIYA_ISSUER``, ``HAWIYA_CLIENT_ID``, ``HAWIYA_REDIRECT_URI`` and,
    optionally, ``HAWIYA_CLIENT_SECRET`` or ``HAWIYA_PRIVATE_JWK_FILE`` (a private JWK as JSON),
    ``HAWIYA_AUTH_METHOD``, ``HAWIYA_SCOPE`` (default ``openid``: add what the agency registered)
    and ``HAWIYA_POST_LOGOUT_REDIRECT_URI``. HawiyaRPError (reason ``configuration``) names what is
    missing or wrong."""
    missing = [name for name in _REQUIRED if not settings.get(name)]
    if missing:
        raise HawiyaRPError(
            f"set {', '.join(missing)} in the app's config or the environment", reason="configuration"
        )
    method = settings.get("HAWIYA_AUTH_METHOD") or None
    if method is not None and method not in AUTH_METHODS:
        raise HawiyaRPError(
            f"HAWIYA_AUTH_METHOD {method!r} is not supported by hawiya_rp; use one of "
            f"{', '.join(AUTH_METHODS)} (and register the client at Hawiya with the same method)",
            reason="configuration",
        )
    private_jwk = None
    if settings.get("HAWIYA_PRIVATE_JWK_FILE"):
        path = Path(settings["HAWIYA_PRIVATE_JWK_FILE"])
        try:
            private_jwk = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise HawiyaRPError(
                f"HAWIYA_PRIVATE_JWK_FILE {path} is not a readable JSON file ({type(exc).__name__})",
                reason="configuration",
            ) from None
    try:
        return _client_config(settings, private_jwk, method)
    except ValueError as error:
        raise HawiyaRPError(f"the HAWIYA_* settings do not fit: {error}", reason="configuration") from None


def _client_config(
    settings: Mapping[str, Any], private_jwk: dict[str, Any] | None, method: str | None
) -> ClientConfig:
    return ClientConfig(
        token_endpoint_auth_method=method,
        issuer=settings["HAWIYA_ISSUER"],
        client_id=settings["HAWIYA_CLIENT_ID"],
        redirect_uri=settings["HAWIYA_REDIRECT_URI"],
        client_secret=settings.get("HAWIYA_CLIENT_SECRET") or None,
        private_jwk=private_jwk,
        scope=settings.get("HAWIYA_SCOPE") or DEFAULT_SCOPE,
        post_logout_redirect_uri=settings.get("HAWIYA_POST_LOGOUT_REDIRECT_URI") or None,
    )


_REQUIRED = ("HAWIYA_ISSUER", "HAWIYA_CLIENT_ID", "HAWIYA_REDIRECT_URI")


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``SETTINGS`` found in the environment (``Hawiya(app)`` reads them itself)."""
    environ = os.environ if environ is None else environ
    return {name: environ[name] for name in SETTINGS if name in environ}


def settings_of(app: Flask, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``SETTINGS`` the extension uses for ``app``: ``app.config``'s, and the environment's for
    those ``app.config`` does not set (None counts as not set)."""
    found: dict[str, Any] = dict(settings_from_env(environ))
    found.update({name: app.config[name] for name in SETTINGS if app.config.get(name) is not None})
    return found


def _http_client(proxy: str | None) -> HttpClient:
    try:
        return UrllibClient(proxy=proxy or None)
    except ValueError as error:
        raise HawiyaRPError(f"HAWIYA_PROXY: {error}", reason="configuration") from None


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off", "")
    return bool(value)


def _state() -> _State:
    state = current_app.extensions.get(EXTENSION)
    if state is None:
        raise RuntimeError("Hawiya is not set up on this app: call Hawiya(app) or init_app(app)")
    return cast(_State, state)


def _is_local_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK


# -- the local session --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Session:
    """A signed-in session: its id (the cookie's value), the stored record, the parsed tokens."""

    id: str
    record: dict[str, Any]
    tokens: TokenSet


def _session() -> _Session | None:
    """This request's signed-in session, read once per request."""
    if "_hawiya_rp_session" not in g:
        g._hawiya_rp_session = _load_session()
    return cast("_Session | None", g._hawiya_rp_session)


def _load_session() -> _Session | None:
    state = _state()
    session_id = request.cookies.get(state.session_cookie)
    record = state.store.get(session_id) if session_id else None
    # Pending sign-ins live in the same store: only a finished sign-in is a session.
    if session_id is None or record is None or record.get("kind") != "session":
        return None
    try:
        tokens = TokenSet.from_dict(record["tokens"])
    except (KeyError, TypeError, ValueError):
        log.warning("a stored session is malformed; treated as signed out")
        return None
    return _Session(session_id, record, tokens)


def current_user() -> dict[str, Any] | None:
    """The signed-in person: the ID token's claims, with what userinfo said when it was fetched (the
    ID token wins where both speak); None when nobody is signed in."""
    found = _session()
    if found is None:
        return None
    return {**(found.record.get("userinfo") or {}), **found.tokens.claims}


def current_tokens() -> TokenSet | None:
    """The signed-in person's tokens (to call an API with), or None."""
    found = _session()
    return found.tokens if found else None


def _here() -> str:
    """Where to come back to after signing in: this page (a GET), else the site's home."""
    if request.method != "GET":
        return "/"
    return request.full_path.rstrip("?") if request.query_string else request.path


def login_required(view: F) -> F:
    """Send a visitor who is not signed in to Hawiya, and back here afterwards."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect(url_for("hawiya.login", next=_here()))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def acr_required(level: str) -> Callable[[F], F]:
    """Demand a level of assurance (``"substantial"``, ``"high"`` or an acr value).

    A visitor signed in below it is sent to Hawiya again asking for the level (a step-up); if Hawiya
    still answers with less, the callback shows a 403 page instead of looping.
    """
    required = _known_level(level)
    if required is None:
        raise ValueError(f"unknown level of assurance {level!r}; use one of {', '.join(LEVELS)}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None or not meets(user.get("acr"), required):
                return redirect(url_for("hawiya.login", next=_here(), acr=level))
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


# -- pages --------------------------------------------------------------------------------------


def _ui_locales() -> str | None:
    """The language of the page the person is on, as the app says it (``?lang=``/the form's
    ``lang``, else the app's ``locale_selector``); None when the app does not say."""
    given = request.values.get("lang", "")[:35].strip()
    if given and all(char.isascii() and (char.isalnum() or char == "-") for char in given):  # a BCP 47 tag
        return given
    selector = _state().locale_selector
    chosen = selector() if selector is not None else None
    return str(chosen) if chosen else None


def _language(stored: str | None = None) -> str:
    """The language of the library's own pages: ``stored`` (the sign-in's), the app's, else the
    browser's (Accept-Language), else English."""
    browser = [tag for tag, _quality in request.accept_languages]
    return pages.choose([stored, _ui_locales(), *browser])


def _page(key: str, status: int, *, lang: str | None = None, code: str | None = None) -> BaseResponse:
    """An error page: the app's ``HAWIYA_ERROR_TEMPLATE`` (given status, title, message, code, lang,
    dir), or the built-in one. Never a token or a description the IdP wrote: only our own words."""
    state = _state()
    lang = lang or _language()
    title, message = pages.text(key, lang)
    if state.error_template:
        body = render_template(
            state.error_template,
            status=status,
            title=title,
            message=message,
            code=code,
            lang=lang,
            dir=pages.direction(lang),
        )
    else:
        body = pages.error_page(lang, title, message, home="/", retry=url_for("hawiya.login", lang=lang))
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = lang
    return response


def _set_cookie(response: BaseResponse, name: str, value: str, *, max_age: int) -> None:
    state = _state()
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=state.secure_cookies, httponly=True, samesite="Lax"
    )


def _clear_cookie(response: BaseResponse, name: str) -> None:
    state = _state()
    response.delete_cookie(name, path="/", secure=state.secure_cookies, httponly=True, samesite="Lax")


def _safe_next(value: str | None) -> str:
    """``next`` only when it is a path on this site (no scheme, no host, no ``//`` or ``\\``)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return "/"
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else "/"


def _known_level(value: str) -> str | None:
    """The acr for a Hawiya level name or acr value; None for anything else."""
    acr = to_acr(value)
    return acr if acr in LEVELS.values() else None


@bp.get("/login")
def login() -> BaseResponse:
    """Start a sign-in at Hawiya (``?next=`` a path of this site, ``?acr=`` a level, ``?lang=`` the
    page's language)."""
    state = _state()
    acr = None
    if request.args.get("acr"):
        acr = _known_level(request.args["acr"])
        if acr is None:
            return _page("unknown_level", 400)
    ui_locales = _ui_locales()
    try:
        auth = state.client.authorization_request(acr=acr, ui_locales=ui_locales)
    except HawiyaRPError as error:
        log.warning("cannot start a sign-in: %s", error.reason)
        return _page("unreachable", 502)
    pending = {
        "kind": "pending",
        "request": auth.to_dict(),
        "next": _safe_next(request.args.get("next")),
        "lang": _language(),
    }
    handle = state.store.create(pending, ttl=PENDING_TTL)
    response = redirect(auth.url)
    _set_cookie(response, state.pending_cookie, handle, max_age=PENDING_TTL)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/callback")
def callback() -> BaseResponse:
    """Finish the sign-in: check the answer, redeem the code, start a new local session."""
    state = _state()
    handle = request.cookies.get(state.pending_cookie)
    # Taken exactly once: a replayed or second callback finds nothing.
    pending = state.store.pop(handle) if handle else None
    if pending is None or pending.get("kind") != "pending":
        return _page("expired", 400)
    lang = _language(pending.get("lang"))  # the pages speak the language the sign-in started in
    auth = AuthorizationRequest.from_dict(pending["request"])
    try:
        tokens = state.client.complete(request.args.to_dict(), auth)
    except AssuranceTooLow as error:
        log.info("sign-in below the level required: %s", error.reason)
        response = _page("assurance_too_low", 403, lang=lang, code="assurance_too_low")
        _clear_cookie(response, state.pending_cookie)
        return response
    except AuthorizationError as error:
        log.info("sign-in refused by the provider: %s", error.reason)
        if error.error == "access_denied":
            response = _page("access_denied", 403, lang=lang)
        elif error.error == "unmet_authentication_requirements":
            response = _page("unmet_authentication_requirements", 403, lang=lang, code=error.error)
        else:
            response = _page("refused", 400, lang=lang)
        _clear_cookie(response, state.pending_cookie)
        return response
    except HawiyaRPError as error:
        log.warning("sign-in failed: %s", error.reason)
        response = _page("unverified", 400, lang=lang)
        _clear_cookie(response, state.pending_cookie)
        return response

    userinfo = _userinfo(state, tokens)
    old = _session()
    if old is not None:  # a new id for every sign-in (no session fixation)
        state.store.delete(old.id)
    record = {
        "kind": "session",
        "sid": tokens.sid,
        "sub": tokens.sub,
        "tokens": tokens.to_dict(),
        "userinfo": userinfo,
        "created_at": int(time.time()),
    }
    session_id = state.store.create(record, ttl=state.session_ttl)
    response = redirect(_safe_next(pending.get("next")))
    _set_cookie(response, state.session_cookie, session_id, max_age=state.session_ttl)
    _clear_cookie(response, state.pending_cookie)
    response.headers["Cache-Control"] = "no-store"
    return response


def _userinfo(state: _State, tokens: TokenSet) -> dict[str, Any] | None:
    """Userinfo (the scope's claims), when the app wants it; a failure leaves the ID token's claims."""
    if not state.fetch_userinfo or not tokens.access_token:
        return None
    try:
        if not state.client.metadata().get("userinfo_endpoint"):
            return None
        return dict(state.client.userinfo(tokens.access_token, expected_sub=tokens.sub))
    except HawiyaRPError as error:
        log.warning("userinfo not fetched: %s", error.reason)
        return None


_LOGOUT_PURPOSE = b"hawiya-rp/logout"


def _csrf_token(session_id: str) -> str:
    # Keyed by the session id, which only this browser (an HttpOnly cookie) and the store know: no
    # other site can compute it, and it tells nothing about the id.
    mac = hmac.new(session_id.encode(), _LOGOUT_PURPOSE, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def logout_csrf_token() -> str:
    """The token a sign-out form POSTs to ``/auth/logout`` as ``hawiya_csrf`` (also a template
    global); empty when nobody is signed in::

        <form method="post" action="{{ url_for('hawiya.logout') }}">
          <input type="hidden" name="hawiya_csrf" value="{{ logout_csrf_token() }}">
          <button>Sign out</button>
        </form>
    """
    found = _session()
    return _csrf_token(found.id) if found is not None else ""


def _logout_confirmation(found: _Session, *, status: int = 200) -> BaseResponse:
    lang = _language()
    other = next(code for code in pages.LANGUAGES if code != lang)
    body = pages.logout_page(
        lang,
        action=url_for("hawiya.logout"),
        token=_csrf_token(found.id),
        home="/",
        other=url_for("hawiya.logout", lang=other),
    )
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = lang
    # The form must not be framed: a click on it is the person's consent.
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    return response


@bp.get("/logout")
def logout_page() -> BaseResponse:
    """Ask the signed-in person to confirm signing out (a GET changes nothing: any site can make a
    browser GET this URL); nobody signed in goes home."""
    found = _session()
    if found is None:
        return redirect("/")
    return _logout_confirmation(found)


@bp.post("/logout")
def logout() -> BaseResponse:
    """End the local session, then the IdP's (RP-initiated logout) when it offers one, else go
    home; only with this site's token (``logout_csrf_token``), else the confirmation page again."""
    state = _state()
    found = _session()
    if found is None:
        response = redirect("/", code=303)
        _clear_cookie(response, state.session_cookie)
        return response
    given = request.form.get("hawiya_csrf", "")
    if not hmac.compare_digest(given.encode(), _csrf_token(found.id).encode()):
        log.info("sign-out refused: the form carried no valid token")
        return _logout_confirmation(found, status=400)
    state.store.delete(found.id)
    g._hawiya_rp_session = None
    target = "/"
    try:
        if state.client.metadata().get("end_session_endpoint"):
            target = state.client.logout_url(id_token_hint=found.tokens.id_token, ui_locales=_ui_locales())
    except HawiyaRPError as error:  # the IdP is down: the local session is over all the same
        log.warning("no RP-initiated logout: %s", error.reason)
    response = redirect(target, code=303)
    _clear_cookie(response, state.session_cookie)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/backchannel-logout")
def backchannel_logout() -> BaseResponse:
    """OIDC Back-Channel Logout 1.0 (2.5-2.8): validate the logout token, end the sessions it names."""
    state = _state()
    token = request.form.get("logout_token", "")
    try:
        if not token:
            raise LogoutTokenError("no logout_token in the request", reason="missing")
        logout_token = state.client.validate_logout_token(token)
    except HawiyaRPError as error:
        log.info("back-channel logout refused: %s", error.reason)
        # 2.8: "If the logout failed, the RP MUST respond with HTTP 400 Bad Request".
        refused = jsonify(error="invalid_request")
        refused.status_code = 400
        refused.headers["Cache-Control"] = "no-store"
        return refused
    ended = state.store.ids_for(sid=logout_token.sid, sub=logout_token.sub)
    for session_id in ended:
        state.store.delete(session_id)
    log.info("back-channel logout ended %d local session(s)", len(ended))
    response = Response(status=200)
    response.headers["Cache-Control"] = "no-store"  # 2.8
    return response


# -- APIs ---------------------------------------------------------------------------------------


def current_token() -> dict[str, Any] | None:
    """The validated access token's claims in a ``require_token`` view, else None."""
    return cast("dict[str, Any] | None", g.get("_hawiya_rp_token"))


def _bearer_refusal(status: int, error: str | None, description: str, header: str) -> BaseResponse:
    body = {"error": error, "error_description": description} if error else {"error_description": description}
    response = jsonify(body)
    response.status_code = status
    response.headers["WWW-Authenticate"] = header
    response.headers["Cache-Control"] = "no-store"
    return response


def require_token(scope: str | None = None, *, audience: str | None = None) -> Callable[[F], F]:
    """Protect an API view with a Hawiya access token (RFC 6750 header, RFC 9068 JWT) carrying
    ``scope`` (space-separated: all of them) and addressed to ``audience`` (default:
    ``HAWIYA_API_AUDIENCE``, this API's resource identifier). The claims: ``current_token()``."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            state = _state()
            wanted = audience or state.api_audience
            if not wanted:
                raise RuntimeError("require_token needs an audience: set HAWIYA_API_AUDIENCE")
            realm = f'Bearer realm="{state.api_realm}"' if state.api_realm else "Bearer"
            header = request.headers.get("Authorization", "")
            if not header:
                # RFC 6750 3.1: no credentials at all, so no error code in the challenge.
                return _bearer_refusal(401, None, "an access token is required", realm)
            method, _, token = header.partition(" ")
            token = token.strip()
            if method.lower() != "bearer" or not token or " " in token:
                challenge = f'{realm}{"," if state.api_realm else ""} error="invalid_request"'
                return _bearer_refusal(400, "invalid_request", "use Authorization: Bearer <token>", challenge)
            try:
                claims = state.validator(wanted).validate(token, scope=scope)
            except AccessTokenError as error:
                log.info("access token refused: %s", error.reason)
                return _bearer_refusal(
                    error.status, error.error, error.message, error.www_authenticate(state.api_realm)
                )
            except HawiyaRPError as error:  # the IdP's keys cannot be fetched right now
                log.warning("access token not checked: %s", error.reason)
                unavailable = jsonify(error="temporarily_unavailable")
                unavailable.status_code = 503
                return unavailable
            g._hawiya_rp_token = claims
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
