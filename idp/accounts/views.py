"""The account area (``/account``): the signed-in person's authenticators (authenticator apps,
passkeys and security keys), recovery codes, and the services that receive their information.

Every change needs a recent authentication (``reauth_max_age``, 5 minutes by default): otherwise
the person re-enters their password first (``/account/reauth``). Every form carries a CSRF token
(Flask-WTF, app-wide) and every change is audited by the service that makes it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from idp.authn.views import enrolment_page
from idp.authn.webauthn import MAX_CREDENTIAL_JSON, PasskeyRejected
from idp.errors import AuthenticationFailed, InvalidCode, NotAllowed, TooManyAttempts
from idp.http.context import SSO_COOKIE, client_ip, services
from idp.sessions.service import SsoSession

bp = Blueprint("accounts", __name__)

#: Notices after a change (the query names one; the page shows its translated text).
NOTICES = ("added", "renamed", "removed", "withdrawn")


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/html")


def _session() -> tuple[str, SsoSession] | None:
    handle = request.cookies.get(SSO_COOKIE)
    session = services().sessions.find(handle)
    return (handle, session) if handle and session else None


def _recent(session: SsoSession) -> bool:
    reg = services()
    return reg.clock.now() - session.auth_time <= reg.settings.reauth_max_age


def recent_sign_in(view: Callable[..., Response]) -> Callable[..., Response]:
    """Run ``view(session, ...)`` only for a person who signed in recently; else send them to sign
    in, or to re-enter their password, first."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Response:
        signed_in = _session()
        if signed_in is None:
            return redirect(url_for("authn.signin"), code=303)
        if not _recent(signed_in[1]):
            return redirect(url_for("accounts.reauth"), code=303)
        return view(signed_in[1], *args, **kwargs)

    return guarded


def _account_page(session: SsoSession, *, error: str | None = None, status: int = 200) -> Response:
    reg = services()
    notice = request.args.get("done")
    body = render_template(
        "accounts/account.html",
        person=reg.accounts.get(session.account_id),
        factors=reg.authenticators.factors(session.account_id),
        codes=reg.recovery_codes.status(session.account_id),
        must_keep=reg.mfa.must_keep_a_factor(session.account_id),
        consents=[
            (consent, reg.clients.active(consent.client_id))
            for consent in reg.consents.granted_by(session.account_id)
        ],
        session=session,
        recent=_recent(session),
        notice=notice if notice in NOTICES else None,
        error=error,
    )
    return _html(body, status)


@bp.get("/account")
def home() -> Response:
    """The account area; sign in first when nobody is."""
    signed_in = _session()
    if signed_in is None:
        return redirect(url_for("authn.signin"))
    return _account_page(signed_in[1])


@bp.route("/account/reauth", methods=["GET", "POST"])
def reauth() -> Response:
    """Re-enter the password before a change to the account."""
    reg = services()
    signed_in = _session()
    if signed_in is None:
        return redirect(url_for("authn.signin"))
    handle, session = signed_in
    person = reg.accounts.get(session.account_id)
    if request.method == "GET":
        return _html(render_template("accounts/reauth.html", person=person, error=None))
    password = request.form.get("password", "")[:1024]
    try:
        result = reg.passwords.authenticate(person.username, password, ip=client_ip())
    except (AuthenticationFailed, TooManyAttempts) as failure:
        status = 429 if isinstance(failure, TooManyAttempts) else 401
        return _html(render_template("accounts/reauth.html", person=person, error=failure.code), status)
    reg.sessions.reauthenticated(handle, session, result, ip=client_ip())
    return redirect(url_for("accounts.home"), code=303)


@bp.post("/account/totp")
@recent_sign_in
def totp_start(session: SsoSession) -> Response:
    """Begin adding an authenticator app: show its QR code and secret."""
    reg = services()
    person = reg.accounts.get(session.account_id)
    enrolment = reg.authenticators.begin_totp(
        session.account_id, account_name=person.username, label=request.form.get("label", "")[:200]
    )
    return enrolment_page("accounts/totp.html", enrolment, {})


@bp.post("/account/totp/confirm")
@recent_sign_in
def totp_confirm(session: SsoSession) -> Response:
    """Confirm the new authenticator app with its first code."""
    reg = services()
    person = reg.accounts.get(session.account_id)
    authenticator_id = request.form.get("authenticator", "")[:64]
    code = request.form.get("code", "")[:64].strip()
    label = request.form.get("label", "")[:200]
    try:
        enrolled = reg.mfa.confirm_totp(
            session.account_id, authenticator_id, code, label=label, ip=client_ip()
        )
    except InvalidCode as failure:
        enrolment = reg.authenticators.enrolment(
            session.account_id, authenticator_id, account_name=person.username
        )
        if enrolment is None:
            return redirect(url_for("accounts.home"), code=303)
        return enrolment_page("accounts/totp.html", enrolment, {}, error=failure.code, status=401)
    if enrolled.recovery_codes:
        body = render_template(
            "authn/recovery_codes.html", codes=enrolled.recovery_codes, next_url=url_for("accounts.home")
        )
        return _html(body)
    return redirect(url_for("accounts.home", done="added"), code=303)


@bp.post("/account/authenticators/<authenticator_id>/rename")
@recent_sign_in
def rename(session: SsoSession, authenticator_id: str) -> Response:
    """Give an authenticator a new name."""
    services().authenticators.rename(
        session.account_id, authenticator_id[:64], request.form.get("label", "")[:200], ip=client_ip()
    )
    return redirect(url_for("accounts.home", done="renamed"), code=303)


@bp.post("/account/authenticators/<authenticator_id>/remove")
@recent_sign_in
def remove(session: SsoSession, authenticator_id: str) -> Response:
    """Remove an authenticator (never the last one of an account that must use MFA)."""
    try:
        services().mfa.remove(session.account_id, authenticator_id[:64], ip=client_ip())
    except NotAllowed as refused:
        return _account_page(session, error=refused.code, status=403)
    return redirect(url_for("accounts.home", done="removed"), code=303)


def _passkey_page(
    session: SsoSession, *, label: str, error: str | None = None, status: int = 200
) -> Response:
    ceremony = services().passkeys.begin_registration(session.account_id)
    body = render_template("accounts/passkey.html", passkey=ceremony, label=label, error=error)
    return _html(body, status)


@bp.post("/account/passkeys/new")
@recent_sign_in
def passkey_start(session: SsoSession) -> Response:
    """Begin adding a passkey or security key: the page asks the browser to create one."""
    return _passkey_page(session, label=request.form.get("label", "")[:100])


@bp.post("/account/passkeys")
@recent_sign_in
def passkey_finish(session: SsoSession) -> Response:
    """Keep the new passkey; the first factor of an account also brings recovery codes."""
    reg = services()
    label = request.form.get("label", "")[:200]
    try:
        enrolled = reg.mfa.register_passkey(
            session.account_id,
            request.form.get("ceremony", "")[:64],
            request.form.get("credential", "")[:MAX_CREDENTIAL_JSON],
            label=label or _("Passkey"),
            ip=client_ip(),
        )
    except PasskeyRejected as rejected:
        return _passkey_page(session, label=label, error=rejected.reason, status=400)
    if enrolled.recovery_codes:
        next_url = url_for("accounts.home", done="added")
        body = render_template("authn/recovery_codes.html", codes=enrolled.recovery_codes, next_url=next_url)
        return _html(body)
    return redirect(url_for("accounts.home", done="added"), code=303)


@bp.post("/account/consents/<client_id>/withdraw")
@recent_sign_in
def withdraw_consent(session: SsoSession, client_id: str) -> Response:
    """Stop a service receiving the person's information (and revoke what it holds)."""
    services().consents.withdraw(session.account_id, client_id[:64], ip=client_ip())
    return redirect(url_for("accounts.home", done="withdrawn"), code=303)


@bp.post("/account/recovery-codes")
@recent_sign_in
def regenerate_codes(session: SsoSession) -> Response:
    """Make a new set of recovery codes (the old ones stop working at once)."""
    reg = services()
    if not reg.authenticators.factors(session.account_id):
        return _account_page(session, error="no_factor", status=403)
    codes = reg.recovery_codes.generate(session.account_id, ip=client_ip())
    body = render_template("authn/recovery_codes.html", codes=codes, next_url=url_for("accounts.home"))
    return _html(body)
