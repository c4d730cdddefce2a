"""The account area (``/account``): the signed-in person's authenticators (authenticator apps,
passkeys and security keys), recovery codes, and the services that receive their information.

Every change needs a recent authentication (``reauth_max_age``, 5 minutes by default): otherwise
the person re-enters their password first (``/account/reauth``). A change to how the account is
secured (binding or removing a factor, new recovery codes, a new password) needs more: an
authentication at the account's reachable level within that window (idp/authn/binding.py
``change_needs``), so a person who holds a factor also gives it again
(``/signin/factor?renew=1``); and the first factor of a
password-only account is bound only after a code mailed to its verified address is typed back
(``/account/first-factor``, idp/accounts/first_factor.py). Every form carries a CSRF token
(Flask-WTF, app-wide) and every change is audited by the service that makes it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from idp.accounts.first_factor import ConfirmationMailUnavailable, NoAddressOfRecord
from idp.accounts.organisations import MANAGING_ROLES, AwaitingInviter, expiry_of, grantable
from idp.authn.binding import STEP_UP, change_needs
from idp.authn.views import enrolment_page
from idp.authn.webauthn import MAX_CREDENTIAL_JSON, PasskeyRejected
from idp.errors import (
    AuthenticationFailed,
    HawiyaError,
    InvalidCode,
    InvalidInput,
    NotAllowed,
    NotFound,
    TooManyAttempts,
)
from idp.http.context import (
    DEVICE_COOKIE,
    SSO_COOKIE,
    clear_cookie,
    client_ip,
    read_cookie,
    services,
    set_cookie,
)
from idp.http.csrf import renew_form_session
from idp.sessions.service import SsoSession
from idp.settings import LOA_LOW, MFA_REQUIRED_ACCOUNT_TYPES

bp = Blueprint("accounts", __name__)

#: Notices after a change (the query names one; the page shows its translated text).
NOTICES = ("added", "renamed", "removed", "withdrawn", "confirmed")


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/html")


def signed_in_session() -> tuple[str, SsoSession] | None:
    """This browser's SSO session and its cookie handle, or None when nobody is signed in."""
    handle = read_cookie(SSO_COOKIE)
    session = services().sessions.find(handle)
    return (handle, session) if handle and session else None


def is_recent(session: SsoSession) -> bool:
    """True when the session's sign-in (or password re-entry) is at most ``reauth_max_age`` old."""
    reg = services()
    return reg.clock.now() - session.last_authenticated <= reg.settings.reauth_max_age


def recent_sign_in(view: Callable[..., Response]) -> Callable[..., Response]:
    """Run ``view(session, ...)`` only for a person who signed in recently; else send them to sign
    in, or to re-enter their password, first."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Response:
        signed_in = signed_in_session()
        if signed_in is None:
            return redirect(url_for("authn.signin"), code=303)
        if not is_recent(signed_in[1]):
            return redirect(url_for("accounts.reauth"), code=303)
        return view(signed_in[1], *args, **kwargs)

    return guarded


def change_requirement(session: SsoSession) -> str | None:
    """What ``session`` still needs before it changes how the account is secured: None, ``reauth``
    or ``step_up`` (idp/authn/binding.py ``change_needs``: the account's reachable level, proven
    within ``reauth_max_age``)."""
    reg = services()
    fresh = session.assess(reg.clock.now() - reg.settings.reauth_max_age)
    return change_needs(fresh, reg.mfa.reachable_level(session.account_id))


def _raise_first(needs: str, account_id: str) -> Response:
    """Send the person to prove what a securing change needs, then back to the account."""
    if needs == STEP_UP:
        return redirect(url_for("authn.factor", renew=1), code=303)
    if services().mfa.reachable_level(account_id) == LOA_LOW:
        return redirect(url_for("accounts.reauth"), code=303)
    # The password alone will not be enough: the reauth page then goes on to the factor page.
    return redirect(url_for("accounts.reauth", next="factor"), code=303)


def securing_change(view: Callable[..., Response]) -> Callable[..., Response]:
    """Run ``view(session, ...)`` only for a person whose fresh authentication reaches the
    account's reachable level (binding or removing a factor, new recovery codes, a new password);
    else send them to sign in, re-enter their password or give their factor, first."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Response:
        signed_in = signed_in_session()
        if signed_in is None:
            return redirect(url_for("authn.signin"), code=303)
        needs = change_requirement(signed_in[1])
        if needs is not None:
            return _raise_first(needs, signed_in[1].account_id)
        return view(signed_in[1], *args, **kwargs)

    return guarded


def _first_factor_pending(session: SsoSession) -> bool:
    """True when the account has no factor yet and this session has not confirmed the address of
    record: nothing may be bound."""
    reg = services()
    if reg.authenticators.confirmed_kinds(session.account_id):
        return False
    return not reg.first_factor.confirmed(session.account_id, session.sid)


def _first_factor_page(
    *, address: str | None = None, error: str | None = None, refused: bool = False, status: int = 200
) -> Response:
    body = render_template("accounts/first_factor.html", address=address, error=error, refused=refused)
    return _html(body, status)


def _ask_for_address_code(session: SsoSession) -> Response:
    """Mail the code that confirms the address of record, and show the page to type it in (or why
    no code can be sent)."""
    reg = services()
    person = reg.accounts.get(session.account_id)
    try:
        address = reg.first_factor.send(person, session.sid, locale=str(get_locale() or "ar"), ip=client_ip())
    except NoAddressOfRecord:
        return _first_factor_page(refused=True, status=403)
    except TooManyAttempts as failure:
        return _first_factor_page(error=failure.code, status=429)
    except ConfirmationMailUnavailable as failure:
        return _first_factor_page(error=failure.code, status=503)
    return _first_factor_page(address=address)


def _not_confirmed() -> Response:
    """A first factor's ceremony finished without the address confirmed: nothing is bound."""
    return _first_factor_page(error="not_confirmed", status=403)


@bp.post("/account/first-factor")
@securing_change
def confirm_first_factor(session: SsoSession) -> Response:
    """Check the code mailed to the address of record: this session may then add the first factor."""
    code = request.form.get("code", "")[:64]
    try:
        services().first_factor.confirm(session.account_id, session.sid, code, ip=client_ip())
    except (InvalidCode, TooManyAttempts) as failure:
        status = 429 if isinstance(failure, TooManyAttempts) else 401
        return _first_factor_page(error=failure.code, status=status)
    return redirect(url_for("accounts.home", done="confirmed"), code=303)


def _account_page(session: SsoSession, *, error: str | None = None, status: int = 200) -> Response:
    reg = services()
    notice = request.args.get("done")
    body = render_template(
        "accounts/account.html",
        person=reg.accounts.get(session.account_id),
        factors=reg.authenticators.factors(session.account_id),
        codes=reg.recovery_codes.status(session.account_id),
        lost_high=reg.mfa.lost_high(session.account_id),
        high_assurance=reg.passkeys.can_prove_hardware,
        must_keep=reg.mfa.must_keep_a_factor(session.account_id),
        consents=[
            (consent, reg.clients.active(consent.client_id))
            for consent in reg.consents.granted_by(session.account_id)
        ],
        session=session,
        recent=is_recent(session),
        notice=notice if notice in NOTICES else None,
        error=error,
    )
    return _html(body, status)


@bp.get("/account")
def home() -> Response:
    """The account area; sign in first when nobody is."""
    signed_in = signed_in_session()
    if signed_in is None:
        return redirect(url_for("authn.signin"))
    if RETURN_COOKIE in request.cookies:
        return _return_after_sign_in()
    return _account_page(signed_in[1])


@bp.route("/account/reauth", methods=["GET", "POST"])
def reauth() -> Response:
    """Re-enter the password before a change to the account."""
    reg = services()
    signed_in = signed_in_session()
    if signed_in is None:
        return redirect(url_for("authn.signin"))
    handle, session = signed_in
    person = reg.accounts.get(session.account_id)
    # ``next=factor``: a securing change asked; the factor page follows when the password is not enough.
    then = "factor" if request.args.get("next") == "factor" else None
    if request.method == "GET":
        return _html(render_template("accounts/reauth.html", person=person, error=None, then=then))
    password = request.form.get("password", "")[:1024]
    try:
        result = reg.passwords.authenticate(
            person.username, password, ip=client_ip(), device=read_cookie(DEVICE_COOKIE)
        )
    except (AuthenticationFailed, TooManyAttempts) as failure:
        status = 429 if isinstance(failure, TooManyAttempts) else 401
        body = render_template("accounts/reauth.html", person=person, error=failure.code, then=then)
        return _html(body, status)
    # Only the password's time moves; the browser gets a new handle (the old one stops working).
    new_handle, renewed = reg.sessions.reauthenticated(handle, session, result, ip=client_ip())
    renew_form_session()  # an authentication step: forms opened before it need a new token
    step_up = then is not None and change_requirement(renewed) == STEP_UP
    response = redirect(url_for("authn.factor", renew=1) if step_up else url_for("accounts.home"), code=303)
    set_cookie(response, SSO_COOKIE, new_handle)
    return response


@bp.post("/account/totp")
@securing_change
def totp_start(session: SsoSession) -> Response:
    """Begin adding an authenticator app: show its QR code and secret (the first factor of an
    account: once its address of record is confirmed)."""
    if _first_factor_pending(session):
        return _ask_for_address_code(session)
    reg = services()
    person = reg.accounts.get(session.account_id)
    enrolment = reg.authenticators.begin_totp(
        session.account_id, account_name=person.username, label=request.form.get("label", "")[:200]
    )
    return enrolment_page("accounts/totp.html", enrolment, {})


@bp.post("/account/totp/confirm")
@securing_change
def totp_confirm(session: SsoSession) -> Response:
    """Confirm the new authenticator app with its first code."""
    if _first_factor_pending(session):
        return _not_confirmed()
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
    reg.first_factor.consume(session.account_id, session.sid)
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
@securing_change
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
@securing_change
def passkey_start(session: SsoSession) -> Response:
    """Begin adding a passkey or security key: the page asks the browser to create one (the first
    factor of an account: once its address of record is confirmed)."""
    if _first_factor_pending(session):
        return _ask_for_address_code(session)
    return _passkey_page(session, label=request.form.get("label", "")[:100])


@bp.post("/account/passkeys")
@securing_change
def passkey_finish(session: SsoSession) -> Response:
    """Keep the new passkey; the first factor of an account also brings recovery codes."""
    if _first_factor_pending(session):
        return _not_confirmed()
    label = request.form.get("label", "")[:200]
    return _keep_key(session, label, label or _("Passkey"), _passkey_page, high_assurance=False)


def _keep_key(
    session: SsoSession,
    label: str,
    stored_label: str,
    page: Callable[..., Response],
    *,
    high_assurance: bool,
) -> Response:
    """Keep the credential the form posted (``page`` shows a refusal again); the first factor of an
    account spends its address confirmation and brings recovery codes."""
    reg = services()
    try:
        enrolled = reg.mfa.register_passkey(
            session.account_id,
            request.form.get("ceremony", "")[:64],
            request.form.get("credential", "")[:MAX_CREDENTIAL_JSON],
            label=stored_label,
            ip=client_ip(),
            high_assurance=high_assurance,
        )
    except PasskeyRejected as rejected:
        return page(session, label=label, error=rejected.reason, status=400)
    reg.first_factor.consume(session.account_id, session.sid)
    if enrolled.recovery_codes:
        next_url = url_for("accounts.home", done="added")
        body = render_template("authn/recovery_codes.html", codes=enrolled.recovery_codes, next_url=next_url)
        return _html(body)
    return redirect(url_for("accounts.home", done="added"), code=303)


def _security_key_page(
    session: SsoSession, *, label: str, error: str | None = None, status: int = 200
) -> Response:
    """The high-assurance registration page: a ceremony asking for direct attestation, or (no trust
    anchor configured) the notice that no such key can be registered here."""
    reg = services()
    ceremony = (
        reg.passkeys.begin_registration(session.account_id, high_assurance=True)
        if reg.passkeys.can_prove_hardware
        else None
    )
    body = render_template("accounts/security_key.html", passkey=ceremony, label=label, error=error)
    return _html(body, status)


@bp.post("/account/security-keys/new")
@securing_change
def security_key_start(session: SsoSession) -> Response:
    """Begin adding a security key for high-assurance services (attested, user verification); the
    first factor of an account once its address of record is confirmed."""
    if _first_factor_pending(session):
        return _ask_for_address_code(session)
    return _security_key_page(session, label=request.form.get("label", "")[:100])


@bp.post("/account/security-keys")
@securing_change
def security_key_finish(session: SsoSession) -> Response:
    """Keep the new security key once its attestation proves it hardware the service trusts."""
    if _first_factor_pending(session):
        return _not_confirmed()
    reg = services()
    label = request.form.get("label", "")[:200]
    if not reg.passkeys.can_prove_hardware:
        return _security_key_page(session, label=label, status=409)
    return _keep_key(session, label, label or _("Security key"), _security_key_page, high_assurance=True)


@bp.post("/account/consents/<client_id>/withdraw")
@recent_sign_in
def withdraw_consent(session: SsoSession, client_id: str) -> Response:
    """Stop a service receiving the person's information (and revoke what it holds)."""
    services().consents.withdraw(session.account_id, client_id[:64], ip=client_ip())
    return redirect(url_for("accounts.home", done="withdrawn"), code=303)


@bp.post("/account/recovery-codes")
@securing_change
def regenerate_codes(session: SsoSession) -> Response:
    """Make a new set of recovery codes (the old ones stop working at once)."""
    reg = services()
    if not reg.authenticators.factors(session.account_id):
        return _account_page(session, error="no_factor", status=403)
    codes = reg.recovery_codes.generate(session.account_id, ip=client_ip())
    body = render_template("authn/recovery_codes.html", codes=codes, next_url=url_for("accounts.home"))
    return _html(body)


# -- a new password ------------------------------------------------------------------------------

#: Longest password field read (the policy refuses longer ones with its own message).
PASSWORD_MAX = 1024


def _password_page(session: SsoSession, *, error: str | None = None, status: int = 200) -> Response:
    """The new-password form; the least length the policy asks of this account (shorter where a
    second factor is required, NIST SP 800-63B-4 3.1.1.2)."""
    reg = services()
    person = reg.accounts.get(session.account_id)
    settings = reg.settings
    mfa = person.account_type in MFA_REQUIRED_ACCOUNT_TYPES
    minimum = settings.password_min_length_mfa if mfa else settings.password_min_length
    body = render_template("accounts/password.html", error=error, min_length=minimum)
    return _html(body, status)


@bp.post("/account/password")
@securing_change
def password_start(session: SsoSession) -> Response:
    """The form for a new password, once the person proved the account's reachable level."""
    return _password_page(session)


@bp.post("/account/password/set")
@securing_change
def password_set(session: SsoSession) -> Response:
    """Set the new password. Like every new password it evicts whoever held the account
    (idp/accounts/eviction.py): every session ends, this one too, every token is revoked, the
    agencies are told, and the person is mailed; she signs in again with the new password."""
    reg = services()
    password = request.form.get("password", "")[:PASSWORD_MAX]
    if password != request.form.get("password_confirm", "")[:PASSWORD_MAX]:
        return _password_page(session, error="passwords_differ", status=400)
    try:
        reg.accounts.set_password(session.account_id, password, via="account", ip=client_ip())
    except InvalidInput as weak:
        return _password_page(session, error=weak.code, status=400)
    response = _html(render_template("accounts/password_changed.html"))
    clear_cookie(response, SSO_COOKIE)
    return response


# -- organisations the person acts for ----------------------------------------------------------

#: A page of the account area (or the staff console) to come back to after signing in (sign-in
#: always ends on /account).
RETURN_COOKIE = "hawiya_return"
_RETURNABLE = re.compile(
    r"(/account/(organisations|sessions|invitation\?code=[A-Za-z0-9_-]{1,64})|/admin(/[a-z]{1,20})?)"
)
#: Notices on the organisations page after a change.
ORG_NOTICES = ("granted", "removed", "invited", "accepted", "confirmed", "declined")


def come_back_after(endpoint: str, path: str) -> Response:
    """Send the person to sign in (or re-enter their password) and then back to ``path``."""
    response = redirect(url_for(endpoint), code=303)
    set_cookie(response, RETURN_COOKIE, path, max_age=services().settings.interaction_ttl)
    return response


def _return_after_sign_in() -> Response:
    path = request.cookies.get(RETURN_COOKIE, "")
    response = redirect(path if _RETURNABLE.fullmatch(path) else url_for("accounts.home"), code=303)
    clear_cookie(response, RETURN_COOKIE)
    return response


def _organisations_page(session: SsoSession, *, error: str | None = None, status: int = 200) -> Response:
    reg = services()
    acting = reg.organisations.memberships_of(session.account_id)
    notice = request.args.get("done")
    body = render_template(
        "accounts/organisations.html",
        acting=acting,
        members={
            a.organisation.id: reg.organisations.members(a.organisation.id)
            for a in acting
            if a.role in MANAGING_ROLES
        },
        grantable={a.organisation.id: grantable(a.role) for a in acting},
        claims=reg.organisations.claims(session.account_id),
        me=session.account_id,
        now=datetime.fromtimestamp(reg.clock.now(), UTC),
        recent=is_recent(session),
        notice=notice if notice in ORG_NOTICES else None,
        error=error,
    )
    return _html(body, status)


def _refused(session: SsoSession, error: HawiyaError) -> Response:
    return _organisations_page(session, error=error.code, status=error.status)


def _expiry() -> datetime | None:
    """The optional "until" date of a role form; InvalidInput ``bad_date`` when unreadable."""
    value = request.form.get("expires", "")[:10].strip()
    if not value:
        return None
    try:
        return expiry_of(date.fromisoformat(value))
    except ValueError:
        raise InvalidInput("the date is not a valid date", code="bad_date") from None


@bp.get("/account/organisations")
def organisations() -> Response:
    """The organisations the person acts for; owners and signatories also manage their people."""
    signed_in = signed_in_session()
    if signed_in is None:
        return come_back_after("authn.signin", url_for("accounts.organisations"))
    return _organisations_page(signed_in[1])


@bp.post("/account/organisations/<org_id>/grant")
@recent_sign_in
def grant_role(session: SsoSession, org_id: str) -> Response:
    """Give an existing account (by username) a role in the organisation, or change it."""
    reg = services()
    try:
        person = reg.accounts.by_username(request.form.get("username", "").strip())
        if person is None:
            raise NotFound("no such account", code="unknown_user")
        reg.organisations.grant(
            org_id[:64],
            person.id,
            request.form.get("role", "")[:20],
            by=session.account_id,
            expires_at=_expiry(),
            ip=client_ip(),
        )
    except HawiyaError as error:
        return _refused(session, error)
    return redirect(url_for("accounts.organisations", done="granted"), code=303)


@bp.post("/account/organisations/<org_id>/members/<account_id>/remove")
@recent_sign_in
def remove_member(session: SsoSession, org_id: str, account_id: str) -> Response:
    """Take a person's role in the organisation away."""
    try:
        services().organisations.remove(org_id[:64], account_id[:64], by=session.account_id, ip=client_ip())
    except HawiyaError as error:
        return _refused(session, error)
    return redirect(url_for("accounts.organisations", done="removed"), code=303)


@bp.post("/account/organisations/<org_id>/invite")
@recent_sign_in
def invite(session: SsoSession, org_id: str) -> Response:
    """Mail someone a link that gives them a role in the organisation."""
    try:
        services().organisations.invite(
            org_id[:64],
            request.form.get("email", "")[:320],
            request.form.get("role", "")[:20],
            by=session.account_id,
            expires_at=_expiry(),
            locale=str(get_locale() or "ar"),
            ip=client_ip(),
        )
    except HawiyaError as error:
        return _refused(session, error)
    return redirect(url_for("accounts.organisations", done="invited"), code=303)


@bp.post("/account/organisations/invitations/<invitation_id>/claims/<account_id>/confirm")
@recent_sign_in
def confirm_claim(session: SsoSession, invitation_id: str, account_id: str) -> Response:
    """The inviter lets the named account that opened their invitation link take up the role."""
    try:
        services().organisations.confirm(
            invitation_id[:64], account_id[:64], by=session.account_id, ip=client_ip()
        )
    except HawiyaError as error:
        return _refused(session, error)
    return redirect(url_for("accounts.organisations", done="confirmed"), code=303)


@bp.post("/account/organisations/invitations/<invitation_id>/claims/<account_id>/decline")
@recent_sign_in
def decline_claim(session: SsoSession, invitation_id: str, account_id: str) -> Response:
    """The inviter turns the named account down: nothing is granted and the link works again."""
    try:
        services().organisations.decline(
            invitation_id[:64], account_id[:64], by=session.account_id, ip=client_ip()
        )
    except HawiyaError as error:
        return _refused(session, error)
    return redirect(url_for("accounts.organisations", done="declined"), code=303)


def _invitation_page(
    code: str, viewer: str, *, awaiting: bool = False, error: str | None = None, status: int = 200
) -> Response:
    invitation = services().organisations.invitation(code)
    if invitation is None and error is None:
        error, status = "invalid_invitation", 404
    body = render_template(
        "accounts/invitation.html",
        invitation=invitation,
        code=code,
        error=error,
        awaiting=awaiting or (invitation is not None and invitation.claimed_by == viewer),
    )
    return _html(body, status)


@bp.get("/account/invitation")
def invitation() -> Response:
    """What an invitation offers, with a button to accept it (after signing in). The code rides in
    the query, which the access log never records (a path would be logged)."""
    code = request.args.get("code", "")[:64]
    signed_in = signed_in_session()
    here = url_for("accounts.invitation", code=code)
    if signed_in is None:
        return come_back_after("authn.signin", here)
    if not is_recent(signed_in[1]):
        return come_back_after("accounts.reauth", here)
    return _invitation_page(code, signed_in[1].account_id)


@bp.post("/account/invitation")
@recent_sign_in
def accept_invitation(session: SsoSession) -> Response:
    """Take up the invitation: the person whose verified email it was sent to now holds the role;
    anyone else waits for the person who sent it to confirm them."""
    code = request.form.get("code", "")[:64]
    try:
        taken = services().organisations.accept(code, session.account_id, ip=client_ip())
    except HawiyaError as error:
        return _invitation_page(code, session.account_id, error=error.code, status=error.status)
    if isinstance(taken, AwaitingInviter):
        return _invitation_page(code, session.account_id, awaiting=True)
    return redirect(url_for("accounts.organisations", done="accepted"), code=303)


@bp.get("/account/not-me")
def not_me() -> Response:
    """The "this wasn't me" link of a security notification: a button to sign the account out
    everywhere (no sign-in needed: the person may have lost the account). The token rides in the
    query, which the access log never records; a GET changes nothing (mail scanners open links)."""
    token = request.args.get("token", "")[:128]
    valid = services().not_me.valid(token)
    body = render_template("accounts/not_me.html", token=token, valid=valid, done=False)
    return _html(body, 200 if valid else 404)


@bp.post("/account/not-me")
def confirm_not_me() -> Response:
    """End every session of the account and revoke its tokens; then tell the person what to do."""
    token = request.form.get("token", "")[:128]
    try:
        services().not_me.report(token, ip=client_ip())
    except NotFound:
        body = render_template("accounts/not_me.html", token="", valid=False, done=False)
        return _html(body, 404)
    response = _html(render_template("accounts/not_me.html", token="", valid=False, done=True))
    clear_cookie(response, SSO_COOKIE)  # this browser's session has ended with the others
    return response
