"""``/activate`` (an activation code and a first password) and ``/register`` (a visitor's own
account, confirmed by an email code or link at ``/register/verify``).

Each form carries a CSRF token (Flask-WTF, app-wide); the services throttle and audit. Codes and
passwords are never logged: the pages pass them to a service and never echo a password back.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from werkzeug.wrappers import Response

from idp.accounts.activation import ActivationRefused
from idp.accounts.registration import MailUnavailable, PendingView, RegistrationRefused, RegistrationRequest
from idp.authn.assurance import password_only
from idp.authn.views import after_first_factor
from idp.errors import Conflict, InvalidInput, TooManyAttempts, WeakPassword
from idp.http.context import clear_cookie, client_ip, services, set_cookie

bp = Blueprint("onboarding", __name__)

#: Names the registration this browser started (``idp.accounts.registration``).
REGISTRATION_COOKIE = "hawiya_registration"
#: The address the last registration here went to (shown on the code page; the signed session).
_SENT_TO = "registration_email"
_FIELDS = ("username", "email", "given_name", "family_name", "name_ar", "passport_number", "nationality")
_FIELD_MAX = 320
PASSWORD_MAX = 1024
CODE_MAX = 128


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/html")


def _status(failure: Exception) -> int:
    if isinstance(failure, TooManyAttempts):
        return 429
    if isinstance(failure, (ActivationRefused, RegistrationRefused)):
        return 401
    if isinstance(failure, Conflict):
        return 409
    if isinstance(failure, MailUnavailable):
        return 503
    return 400


def _passwords() -> tuple[str, str]:
    """The new password and its confirmation, as typed."""
    typed = request.form.get("password", "")[:PASSWORD_MAX]
    return typed, request.form.get("password_confirm", "")[:PASSWORD_MAX]


@bp.app_context_processor
def _onboarding_links() -> dict[str, object]:
    """Whether pages may offer self-registration."""
    return {"self_registration": services().settings.self_registration}


def _signed_in(account_id: str) -> Response:
    """Sign the person in (or on to the second factor their account needs). An activation code or
    a confirmed registration came out of band with the password: a first second factor may follow."""
    return after_first_factor(password_only(account_id, int(services().clock.now())), confirmed=True)


# -- activation ---------------------------------------------------------------------------------------


def _activate_page(
    *, error: str | None = None, code: str = "", min_length: int | None = None, status: int = 200
) -> Response:
    min_length = min_length or services().settings.password_min_length
    body = render_template("accounts/activate.html", error=error, code=code, min_length=min_length)
    return _html(body, status)


@bp.route("/activate", methods=["GET", "POST"])
def activate() -> Response:
    """Spend an activation code on a first password, then sign in (enrolling a second factor
    first when the account must use one)."""
    if request.method == "GET":
        return _activate_page()
    code = request.form.get("code", "")[:CODE_MAX]
    password, confirm = _passwords()
    if password != confirm:
        return _activate_page(error="passwords_differ", code=code, status=400)
    try:
        person = services().activation_codes.use(code, new_password=password, ip=client_ip())
    except (ActivationRefused, TooManyAttempts) as failure:
        return _activate_page(error=failure.code, status=_status(failure))
    except WeakPassword as weak:  # the code is still unspent: keep it typed
        return _activate_page(error=weak.code, code=code, min_length=weak.minimum, status=400)
    return _signed_in(person.id)


# -- self-registration --------------------------------------------------------------------------------


def _enabled() -> None:
    if not services().settings.self_registration:
        abort(404)


def _register_page(
    form: dict[str, str], *, error: str | None = None, min_length: int | None = None, status: int = 200
) -> Response:
    min_length = min_length or services().settings.password_min_length
    body = render_template("accounts/register.html", form=form, error=error, min_length=min_length)
    return _html(body, status)


@bp.route("/register", methods=["GET", "POST"])
def register() -> Response:
    """The visitor registration form; a right one mails a code and goes to the code page."""
    _enabled()
    form = {name: request.form.get(name, "")[:_FIELD_MAX] for name in _FIELDS}
    if request.method == "GET":
        return _register_page(form)
    password, confirm = _passwords()
    if password != confirm:
        return _register_page(form, error="passwords_differ", status=400)
    reg = services()
    try:
        started = reg.registrations.start(
            RegistrationRequest(password=password, **form), locale=str(get_locale() or "ar"), ip=client_ip()
        )
    except (InvalidInput, Conflict, TooManyAttempts, MailUnavailable) as failure:
        minimum = failure.minimum if isinstance(failure, WeakPassword) else None
        return _register_page(form, error=failure.code, min_length=minimum, status=_status(failure))
    session[_SENT_TO] = started.email
    response = redirect(url_for("onboarding.verify"), code=303)
    set_cookie(response, REGISTRATION_COOKIE, started.handle, max_age=reg.registrations.ttl)
    return response


def _verify_page(
    *, error: str | None = None, link: str = "", pending: PendingView | None = None, status: int = 200
) -> Response:
    body = render_template(
        "accounts/register_verify.html",
        error=error,
        link=link,
        pending=pending,
        email=session.get(_SENT_TO),
    )
    return _html(body, status)


@bp.route("/register/verify", methods=["GET", "POST"])
def verify() -> Response:
    """The code page, and the mailed link's confirmation (creating the account takes a POST)."""
    _enabled()
    reg = services()
    handle = request.cookies.get(REGISTRATION_COOKIE)
    if request.method == "GET":
        link = request.args.get("code", "")[:CODE_MAX]
        if not link:
            return _verify_page()
        pending = reg.registrations.pending(link)
        if pending is None:
            return _verify_page(error="registration_unknown", link=link, status=410)
        return _verify_page(link=link, pending=pending)

    code = request.form.get("code", "")[:CODE_MAX]
    via_link = request.form.get("via") == "link"
    try:
        if via_link:
            registered = reg.registrations.verify_link(code, handle, ip=client_ip())
        else:
            registered = reg.registrations.verify_code(handle, code, ip=client_ip())
    except (RegistrationRefused, TooManyAttempts) as failure:
        return _verify_page(error=failure.code, link=code if via_link else "", status=_status(failure))
    session.pop(_SENT_TO, None)
    if registered.same_browser:
        response = _signed_in(registered.person.id)
    else:
        # Whoever holds the link proved the address, not the password: they sign in as usual.
        response = _html(render_template("accounts/registered.html", username=registered.person.username))
    clear_cookie(response, REGISTRATION_COOKIE)
    return response
