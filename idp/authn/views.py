"""The sign-in pages: username and password (or a passkey, ``/signin/passkey``), then (when the
account has one, or must enrol one) the second factor (``/signin/factor``: a code or a security
key) or the enrolment of a first one (``/signin/enrol``).

The same ``/signin/factor`` page serves a step-up: a signed-in person whose session is below what
an agency asks for gives only the missing factor, never the password again. The page offers only
the factors that can reach the level asked (the parked authorization request carries it), and a
factor that cannot is refused before it is checked: a recovery code is never spent on a request it
cannot satisfy.

Every authentication step renews what the browser holds: a new SSO handle (idp/sessions/service.py)
and, at sign-in and step-up, a new form session (Flask's signed cookie, where Flask-WTF keeps the
CSRF token), so nothing planted in or copied from the browser before it is worth anything after.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from idp.authn import qr
from idp.authn.assurance import FactorOffer, next_level
from idp.authn.factors import TotpEnrolment
from idp.authn.flow import PendingSignin
from idp.authn.mfa import ENROL, FACTOR, FactorOutcome
from idp.authn.results import AuthResult
from idp.authn.webauthn import MAX_CREDENTIAL_JSON, PasskeyRejected
from idp.errors import AuthenticationFailed, HawiyaError, InvalidCode, NotAllowed, TooManyAttempts
from idp.http.context import (
    DEVICE_COOKIE,
    INTERACTION_COOKIE,
    PENDING_COOKIE,
    SSO_COOKIE,
    clear_cookie,
    client_ip,
    read_cookie,
    services,
    set_cookie,
)
from idp.http.csrf import renew_form_session
from idp.inbound import is_identifier
from idp.sessions.interactions import Interaction
from idp.settings import LOA_HIGH

bp = Blueprint("authn", __name__)

#: Longest code field accepted (a recovery code with separators is 14 characters).
CODE_MAX = 64


def _interaction() -> Interaction | None:
    ix = request.values.get("ix")
    if not ix:
        return None
    return services().interactions.load(ix, read_cookie(INTERACTION_COOKIE))


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/html")


def _service_of(interaction: Interaction | None) -> object | None:
    if interaction is None:
        return None
    return services().clients.active(interaction.param("client_id") or "")


def _page(
    interaction: Interaction | None,
    *,
    error: str | None = None,
    username: str = "",
    status: int = 200,
) -> Response:
    if interaction is not None:
        username = username or interaction.param("login_hint") or ""
    body = render_template(
        "authn/signin.html",
        ix=interaction.id if interaction else None,
        client=_service_of(interaction),
        username=username,
        error=error,
        passkey=services().passkeys.begin_assertion(None),
    )
    return _html(body, status)


def _error_of(failure: Exception) -> str:
    """What the page says went wrong: a passkey's reason, or the error's code."""
    if isinstance(failure, PasskeyRejected):
        return failure.reason
    return str(getattr(failure, "code", "error"))


def _passkey_form() -> tuple[str, str]:
    """The ceremony id and credential JSON a passkey form posted."""
    return request.form.get("ceremony", "")[:64], request.form.get("credential", "")[:MAX_CREDENTIAL_JSON]


def _next_url(interaction: Interaction | None) -> str:
    """Where a finished sign-in goes: the parked authorization request, else the account area."""
    if interaction is not None:
        return url_for("oidc.resume", ix=interaction.id)
    return url_for("accounts.home")


def _ix(interaction: Interaction | None) -> str | None:
    return interaction.id if interaction else None


@bp.get("/signin")
def signin() -> Response:
    """Show the sign-in form."""
    return _page(_interaction())


@bp.post("/signin")
def signin_submit() -> Response:
    """Check the credentials; then start the SSO session, or ask for the second step."""
    reg = services()
    interaction = _interaction()
    username = request.form.get("username", "").strip()
    if username and not is_identifier(username):
        # Not a username anyone could have (a NUL, a space, a letter outside ASCII): said plainly,
        # and nothing is looked up or counted against an account.
        return _page(interaction, error="username_invalid", status=400)
    password = request.form.get("password", "")[:1024]
    device = read_cookie(DEVICE_COOKIE)
    try:
        result = reg.passwords.authenticate(username, password, ip=client_ip(), device=device)
    except (AuthenticationFailed, TooManyAttempts) as failure:
        return _page(interaction, error=failure.code, username=username, status=401)
    response = after_first_factor(result, interaction)
    # The browser proved the account's password: from now on it passes the account's failure cap.
    remembered = reg.devices.remember(device, result.account_id, ip=client_ip())
    set_cookie(response, DEVICE_COOKIE, remembered, max_age=reg.devices.ttl)
    return response


@bp.post("/signin/passkey")
def signin_passkey() -> Response:
    """A passwordless sign-in with a passkey (a discoverable credential with user verification)."""
    reg = services()
    interaction = _interaction()
    ceremony, credential = _passkey_form()
    try:
        result = reg.passkeys.sign_in(ceremony, credential, ip=client_ip())
    except (PasskeyRejected, TooManyAttempts) as failure:
        return _page(
            interaction, error=_error_of(failure), status=429 if isinstance(failure, TooManyAttempts) else 401
        )
    return _signed_in(result, interaction, redirect(_next_url(interaction)))


def _signed_in(result: AuthResult, interaction: Interaction | None, response: Response) -> Response:
    """Start this browser's SSO session for ``result`` (ending its previous one)."""
    reg = services()
    old = read_cookie(SSO_COOKIE)
    if old:
        reg.sessions.end(old, reason="replaced", ip=client_ip())
    handle, _session = reg.sessions.start(result, ip=client_ip(), user_agent=request.user_agent.string)
    if interaction is not None:
        reg.interactions.update(interaction, authenticated=True)
    renew_form_session()
    set_cookie(response, SSO_COOKIE, handle)
    clear_cookie(response, PENDING_COOKIE)
    return response


def after_first_factor(
    result: AuthResult, interaction: Interaction | None = None, *, confirmed: bool = False
) -> Response:
    """Continue a sign-in whose first factor was proven (a password, or an activation code with a
    new password, or a confirmed self-registration: ``confirmed``, an out-of-band code came with
    it): the account's second step (its factor, or enrolling one when it must use MFA), else the
    SSO session at once."""
    reg = services()
    step = reg.mfa.next_step(result.account_id)
    if step is None:
        return _signed_in(result, interaction, redirect(_next_url(interaction)))
    handle = reg.pending_signins.start(result, step, confirmed=confirmed)
    endpoint = "authn.factor" if step == FACTOR else "authn.enrol"
    renew_form_session()
    response = redirect(url_for(endpoint, ix=_ix(interaction)))
    set_cookie(response, PENDING_COOKIE, handle, max_age=reg.pending_signins.ttl)
    return response


def _pending() -> tuple[str, PendingSignin] | None:
    handle = read_cookie(PENDING_COOKIE)
    pending = services().pending_signins.find(handle)
    return (handle, pending) if handle and pending else None


# -- the second factor (sign-in and step-up) ---------------------------------------------------------


def _factor_page(
    interaction: Interaction | None,
    offer: FactorOffer,
    *,
    step_up: bool,
    renew: bool = False,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """The second-factor page: a security-key button and the code form, each only when it can
    reach the level asked; otherwise what the level needs."""
    reg = services()
    body = render_template(
        "authn/factor.html",
        ix=_ix(interaction),
        renew=1 if renew else None,
        client=_service_of(interaction),
        step_up=step_up,
        error=error,
        passkey=reg.passkeys.begin_assertion(offer.account_id, only=offer.key_ids) if offer.keys else None,
        codes=offer.codes,
        has_app=offer.has_app,
        needs_high=offer.level == LOA_HIGH,
    )
    return _html(body, status)


def _asked(
    interaction: Interaction | None, base: AuthResult, *, step_up: bool, renew: bool = False
) -> str | None:
    """The level the page must reach: the parked request's (its acr_values, claims, the agency's
    minimum), else for a renewal the account's reachable level, else for a step-up the next level
    up (the staff console sends people here to be raised), else any."""
    if interaction is not None and interaction.acr:
        return interaction.acr
    if renew:
        return services().mfa.reachable_level(base.account_id)
    return next_level(base.acr) if step_up else None


def _offer(base: AuthResult, asked: str | None, *, step_up: bool) -> FactorOffer:
    """What the page offers. Finishing a sign-in, when nothing the person holds reaches the level
    asked, every factor stays on offer: the sign-in itself still completes (and the agency is told
    its requirement cannot be met), as it did before the level was known here."""
    reg = services()
    offer = reg.mfa.offer(base, asked)
    if not step_up and not offer.anything:
        offer = reg.mfa.offer(base, None)
    return offer


@bp.route("/signin/factor", methods=["GET", "POST"])
def factor() -> Response:
    """Ask for a code or a security key: to finish a sign-in, or to step a session up.

    ``renew=1`` (from the account area, before a change to how the account is secured): the step
    builds on what was proven within ``reauth_max_age`` only, and asks for the account's reachable
    level (idp/authn/binding.py); a stale password is re-entered first."""
    reg = services()
    interaction = _interaction()
    pending = _pending()
    sso_handle = read_cookie(SSO_COOKIE)
    session = None if pending else reg.sessions.find(sso_handle)
    if pending is not None and pending[1].step == ENROL:
        return redirect(url_for("authn.enrol", ix=_ix(interaction)))
    if pending is None and (session is None or not sso_handle):
        return redirect(url_for("authn.signin", ix=_ix(interaction)))
    step_up = pending is None
    renew = step_up and interaction is None and request.args.get("renew") == "1"
    if pending is not None:
        base: AuthResult | None = pending[1].result
    elif renew:
        assert session is not None  # noqa: S101 - step_up implies it
        base = session.assess(reg.clock.now() - reg.settings.reauth_max_age)
        if base is None:
            return redirect(url_for("accounts.reauth", next="factor"), code=303)
    else:
        assert session is not None  # noqa: S101 - step_up implies it
        # A step-up builds on what is fresh enough for the request (its max_age), nothing older.
        base = session.assess(interaction.fresh_since if interaction is not None else None)
    if base is None:
        return redirect(url_for("authn.signin", ix=_ix(interaction)))  # nothing fresh: sign in
    offer = _offer(base, _asked(interaction, base, step_up=step_up, renew=renew), step_up=step_up)
    if request.method == "GET":
        return _factor_page(interaction, offer, step_up=step_up, renew=renew)

    key = "credential" in request.form
    if not (offer.keys if key else offer.codes):
        # Refused unread: a factor that cannot reach the level asked is never spent on it.
        return _factor_page(
            interaction,
            offer,
            step_up=step_up,
            renew=renew,
            error="key_not_enough" if key else "code_not_enough",
            status=400,
        )
    try:
        if key:
            ceremony, credential = _passkey_form()
            outcome = reg.mfa.verify_passkey(base, ceremony, credential, ip=client_ip())
        else:
            outcome = reg.mfa.verify(base, request.form.get("code", "")[:CODE_MAX], ip=client_ip())
    except (InvalidCode, PasskeyRejected, TooManyAttempts) as failure:
        return _factor_page(
            interaction,
            offer,
            step_up=step_up,
            renew=renew,
            error=_error_of(failure),
            status=429 if isinstance(failure, TooManyAttempts) else 401,
        )
    if pending is not None:
        if not reg.pending_signins.finish(pending[0]):
            return redirect(url_for("authn.signin", ix=_ix(interaction)))  # finished by a twin request
        return _signed_in(outcome.result, interaction, _after_factor(outcome, interaction))
    assert session is not None and sso_handle  # noqa: S101 - step_up implies both
    handle, _raised = reg.sessions.step_up(sso_handle, session, outcome.result, ip=client_ip())
    renew_form_session()
    response = _after_factor(outcome, interaction)
    set_cookie(response, SSO_COOKIE, handle)
    return response


def _after_factor(outcome: FactorOutcome, interaction: Interaction | None) -> Response:
    """Continue; after a recovery code, first say how many are left."""
    if outcome.method == "recovery_code":
        body = render_template(
            "authn/recovery_used.html", remaining=outcome.remaining_codes, next_url=_next_url(interaction)
        )
        return _html(body)
    return redirect(_next_url(interaction))


# -- enrolment during sign-in (accounts that must use MFA and have no factor yet) ---------------------


def enrolment_page(
    template: str,
    enrolment: TotpEnrolment,
    context: dict[str, object],
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """The TOTP set-up page: the QR code (drawn here, as a data: URI), the secret in text, and the
    form for the first code. Also used by the account area."""
    secret_groups = " ".join(enrolment.secret[i : i + 4] for i in range(0, len(enrolment.secret), 4))
    body = render_template(
        template,
        enrolment=enrolment,
        qr=qr.svg_data_uri(enrolment.uri),
        secret=secret_groups,
        error=error,
        **context,
    )
    return _html(body, status)


def _address_page(
    interaction: Interaction | None,
    *,
    address: str | None = None,
    error: str | None = None,
    refused: bool = False,
    status: int = 200,
) -> Response:
    """The page that asks for the code mailed to the address of record (or says why none can be
    mailed), on the way to a first second factor at sign-in."""
    body = render_template(
        "accounts/first_factor.html",
        address=address,
        error=error,
        refused=refused,
        action=url_for("authn.enrol", ix=_ix(interaction)),
        at_signin=True,
    )
    return _html(body, status)


def _confirm_address(handle: str, state: PendingSignin, interaction: Interaction | None) -> Response:
    """A password alone never binds a first factor (idp/authn/binding.py): unless an activation
    code came with it, the person first types a code mailed to the account's verified address.

    GET mails the code once per pending sign-in (``resend`` asks again); POST checks it. The
    confirmation is for this pending sign-in only (its handle stands for the session). Without a
    verified address every request gets the refusal (and its audit row)."""
    reg = services()
    person = reg.accounts.get(state.account_id)
    ip = client_ip()
    has_address = bool(person.email and person.email_verified)
    if request.method == "POST" and "resend" not in request.form and has_address:
        try:
            reg.first_factor.confirm(person.id, handle, request.form.get("code", "")[:CODE_MAX], ip=ip)
        except (InvalidCode, TooManyAttempts) as failure:
            status = 429 if isinstance(failure, TooManyAttempts) else 401
            return _address_page(interaction, error=_error_of(failure), status=status)
        reg.first_factor.consume(person.id, handle)
        reg.pending_signins.update(handle, state, confirmed=True)
        return redirect(url_for("authn.enrol", ix=_ix(interaction)), code=303)
    if state.code_sent and request.method == "GET":  # (code_sent implies the address)
        return _address_page(interaction, address=person.email)
    try:
        address = reg.first_factor.send(person, handle, locale=str(get_locale() or "ar"), ip=ip)
    except NotAllowed:  # no verified address of record
        return _address_page(interaction, refused=True, status=403)
    except TooManyAttempts as failure:
        return _address_page(interaction, error=failure.code, status=429)
    except HawiyaError as failure:  # the mail could not be handed over
        return _address_page(interaction, error=failure.code, status=503)
    reg.pending_signins.update(handle, state, code_sent=True)
    return _address_page(interaction, address=address)


@bp.route("/signin/enrol", methods=["GET", "POST"])
def enrol() -> Response:
    """Set up an authenticator app before the sign-in can finish (staff must use MFA), once an
    activation code or the address of record confirmed more than the password."""
    reg = services()
    interaction = _interaction()
    pending = _pending()
    if pending is None:
        return redirect(url_for("authn.signin", ix=_ix(interaction)))
    handle, state = pending
    if state.step != ENROL:
        return redirect(url_for("authn.factor", ix=_ix(interaction)))
    if not state.confirmed:
        return _confirm_address(handle, state, interaction)
    person = reg.accounts.get(state.account_id)
    enrolment = None
    if state.enrolment:
        enrolment = reg.authenticators.enrolment(
            state.account_id, state.enrolment, account_name=person.username
        )
    if enrolment is None:
        enrolment = reg.authenticators.begin_totp(
            state.account_id, account_name=person.username, label=_("Authenticator app")
        )
        state = reg.pending_signins.update(handle, state, enrolment=enrolment.authenticator_id)
    context: dict[str, object] = {"ix": _ix(interaction), "client": _service_of(interaction)}
    if request.method == "GET":
        return enrolment_page("authn/enrol.html", enrolment, context)

    code = request.form.get("code", "")[:CODE_MAX].strip()
    label = request.form.get("label", "")[:200]
    try:
        enrolled = reg.mfa.confirm_totp(
            state.account_id,
            enrolment.authenticator_id,
            code,
            label=label,
            base=state.result,
            ip=client_ip(),
        )
    except InvalidCode as failure:
        return enrolment_page("authn/enrol.html", enrolment, context, error=failure.code, status=401)
    assert enrolled.result is not None  # noqa: S101 - a base was given
    if not reg.pending_signins.finish(handle):
        return redirect(url_for("authn.signin", ix=_ix(interaction)))
    body = render_template(
        "authn/recovery_codes.html", codes=enrolled.recovery_codes or [], next_url=_next_url(interaction)
    )
    return _signed_in(enrolled.result, interaction, _html(body))
