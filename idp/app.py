"""The application factory."""

from __future__ import annotations

import logging

from flask import Flask, request
from flask_babel import Babel
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from idp.errors import ConfigurationError
from idp.http import errors, headers
from idp.http.context import LANG_COOKIE, interaction_ui_locales
from idp.http.csrf import HardenedCSRFProtect
from idp.http.lean_token import LeanClientCredentials
from idp.i18n import direction, negotiate
from idp.keys.schedule import KeySchedule
from idp.registry import Registry
from idp.settings import PACKAGE_ROOT, Settings

csrf = HardenedCSRFProtect()


def create_app(
    settings: Settings | None = None, *, registry: Registry | None = None, start_schedule: bool = True
) -> Flask:
    """Build the IdP for ``settings`` (default: from the environment).

    The database must have been initialised (``hawiya init``): the factory fails fast otherwise.
    """
    registry = registry or Registry(settings or Settings.from_env())
    settings = registry.settings
    if not registry.db.is_initialised():
        raise ConfigurationError("the database is not initialised: run `hawiya init` first")
    if not settings.signer_url:
        registry.keystore.check_unsealable()  # a wrong master key or tampered key fails here, clearly
    # Reads the attestation trust anchors and verifies the FIDO metadata BLOB: a bad file, or a
    # BLOB whose signature does not chain to its root, fails here, not on the first registration.
    registry.attestation_trust  # noqa: B018

    app = Flask(
        "idp",
        template_folder=str(PACKAGE_ROOT / "templates"),
        static_folder=str(PACKAGE_ROOT / "static"),
    )
    logging.getLogger("idp").setLevel(settings.log_level)
    # Authlib logs whole token responses at DEBUG; never let a root DEBUG level write tokens.
    logging.getLogger("authlib").setLevel(max(logging.INFO, logging.getLogger("authlib").level))
    app.extensions["hawiya"] = registry
    app.config.update(
        SECRET_KEY=registry.keystore.instance_secret("cookie_signing_key"),
        SESSION_COOKIE_NAME="hawiya_form",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PREFERRED_URL_SCHEME="https" if settings.secure_cookies else "http",
        MAX_CONTENT_LENGTH=64 * 1024,
        WTF_CSRF_TIME_LIMIT=settings.interaction_ttl,
        WTF_CSRF_SSL_STRICT=False,
        BABEL_TRANSLATION_DIRECTORIES=str(PACKAGE_ROOT / "i18n" / "translations"),
        BABEL_DEFAULT_LOCALE="en",
    )
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.trusted_proxies,
            x_proto=settings.trusted_proxies,
            x_host=settings.trusted_proxies,
        )

    def select_locale() -> str:
        try:
            ui_locales = request.values.get("ui_locales")
        except HTTPException:  # an oversized or malformed body: the error page must still render
            ui_locales = request.args.get("ui_locales")
        return negotiate(
            ui_locales=ui_locales or interaction_ui_locales(),
            cookie=request.cookies.get(LANG_COOKIE),
            accept_languages=[lang for lang, _q in request.accept_languages],
            default=settings.default_locale,
        )

    Babel(app, locale_selector=select_locale)
    csrf.init_app(app)

    @app.context_processor
    def _layout() -> dict[str, object]:
        locale = select_locale()
        return {"locale": locale, "dir": direction(locale)}

    from idp.accounts.onboarding.views import bp as onboarding_bp
    from idp.accounts.views import bp as accounts_bp
    from idp.admin.views import bp as admin_bp
    from idp.authn.views import bp as authn_bp
    from idp.http.health import bp as health_bp
    from idp.i18n.views import bp as i18n_bp
    from idp.oidc.views import bp as oidc_bp
    from idp.sessions.views import bp as sessions_bp

    for blueprint in (health_bp, oidc_bp, authn_bp, sessions_bp, accounts_bp, i18n_bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(onboarding_bp)
    app.register_blueprint(admin_bp)
    # Machine endpoints authenticate their callers with client credentials or bearer tokens, and
    # agencies POST to /authorize and /logout cross-site: CSRF tokens do not apply to them (a POSTed
    # logout only parks the request; the person confirms on Hawiya's own, protected form).
    for view in (
        "oidc.authorize",
        "oidc.logout",
        "oidc.token",
        "oidc.userinfo",
        "oidc.revoke",
        "oidc.introspect",
    ):
        csrf.exempt(app.view_functions[view])

    errors.init_app(app)
    headers.init_app(app, hsts=not settings.issuer_is_local_http)
    if settings.lean_token_path:
        app.wsgi_app = LeanClientCredentials(  # type: ignore[method-assign]
            app.wsgi_app, registry, hsts=not settings.issuer_is_local_http
        )
    if settings.key_rotation_days and start_schedule:
        app.extensions["hawiya.key_schedule"] = KeySchedule(
            registry.keystore, rotation_days=settings.key_rotation_days
        ).start()
    if start_schedule:
        # Timed-out sessions end on time (and their agencies hear of it) without their browser;
        # one sweeper per process, claiming due sessions atomically.
        app.extensions["hawiya.session_sweeper"] = registry.session_sweeper.start()
    if start_schedule:
        # Clients' JWK Sets are refreshed before they expire, so token requests seldom fetch.
        app.extensions["hawiya.client_key_refresher"] = registry.client_key_refresher.start()
    if settings.backchannel_logout_worker and start_schedule:
        # One per process (each gunicorn worker): jobs are claimed atomically, so they never clash.
        app.extensions["hawiya.logout_worker"] = registry.logout_worker.start()
    if settings.mail_worker and start_schedule:
        # Mail and text messages leave the request in a queue; this delivers them (one per process).
        app.extensions["hawiya.message_worker"] = registry.message_worker.start()
    return app
