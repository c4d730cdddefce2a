"""The staff console (``/admin``): agencies' clients, signing keys, the audit trail, and people.

Only a signed-in staff member whose session reached ``urn:hawiya:loa:substantial`` (staff must use
a second factor) and who holds a role gets in; anyone else is sent to sign in, to step up, or shown
a 403 page. Each page and each action is gated by its operation in ``idp.admin.permissions`` (the
menu shows only what the staff member may open; ``idp.admin.console`` checks again and audits).
Changes need a recent sign-in (``reauth_max_age``), like the account area, and every form carries
a CSRF token (Flask-WTF, app-wide).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from idp.accounts.activation import ActivationNeedsApproval
from idp.accounts.service import Person
from idp.accounts.views import come_back_after, is_recent, signed_in_session
from idp.authn.results import level_rank
from idp.errors import InvalidInput, NotAllowed
from idp.http.context import client_ip, services
from idp.http.errors import error_page
from idp.keys.keystore import RotationRefused
from idp.settings import LOA_SUBSTANTIAL

bp = Blueprint("admin", __name__, url_prefix="/admin")

#: The least level of assurance of a session that opens the console.
CONSOLE_ACR = LOA_SUBSTANTIAL
#: The console's pages: endpoint, the operation that opens it, in menu order.
PAGES = (
    ("admin.clients", "clients.read"),
    ("admin.keys", "keys.read"),
    ("admin.audit", "audit.read"),
    ("admin.people", "people.read"),
)
#: Notices after a change (the query names one; the page shows its translated text).
NOTICES = ("disabled", "first_party_on", "first_party_off", "rotated")
#: How many audit events the audit page shows.
AUDIT_PAGE_SIZE = 100

StaffView = Callable[..., Response]


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/html")


def _forbidden() -> Response:
    return error_page(
        _("Not allowed"),
        _("This part of Hawiya is for staff whose roles allow it."),
        403,
        code="not_permitted",
    )


def staff_only(
    operation: str | None, *, change: bool = False, back: str = "admin.home"
) -> Callable[[StaffView], StaffView]:
    """Run ``view(staff, ...)`` for a staff member allowed ``operation`` (any role when None).

    Nobody signed in: sign in, then come back to ``back``. Not staff with a role: 403. A session
    below ``CONSOLE_ACR``: step up first. No role for ``operation``: 403. With ``change``, a
    sign-in older than ``reauth_max_age`` first re-enters the password.
    """

    def decorate(view: StaffView) -> StaffView:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Response:
            here = url_for(back)
            signed_in = signed_in_session()
            if signed_in is None:
                return come_back_after("authn.signin", here)
            session = signed_in[1]
            console = services().console
            try:
                staff = console.staff_member(session.account_id, ip=client_ip())
                if level_rank(session.acr) < level_rank(CONSOLE_ACR):
                    return come_back_after("authn.factor", here)
                if operation is not None:
                    console.authority.authorise(staff, operation, channel="console", ip=client_ip())
                if change and not is_recent(session):
                    return come_back_after("accounts.reauth", here)
                return view(staff, *args, **kwargs)
            except NotAllowed:
                return _forbidden()

        return guarded

    return decorate


def _page(template: str, staff: Person, *, status: int = 200, **context: Any) -> Response:
    allowed = services().console.operations(staff)
    menu = [endpoint for endpoint, operation in PAGES if operation in allowed]
    notice = request.args.get("done")
    body = render_template(
        template,
        staff=staff,
        allowed=allowed,
        menu=menu,
        notice=notice if notice in NOTICES else None,
        **context,
    )
    return _html(body, status)


@bp.get("")
@staff_only(None)
def home(staff: Person) -> Response:
    """Who the staff member is, and the pages their roles open."""
    return _page("admin/home.html", staff)


# -- clients ------------------------------------------------------------------------------------------


def _clients_page(staff: Person, *, error: str | None = None, status: int = 200) -> Response:
    clients = services().console.clients(staff)
    return _page("admin/clients.html", staff, clients=clients, error=error, status=status)


@bp.get("/clients")
@staff_only("clients.read", back="admin.clients")
def clients(staff: Person) -> Response:
    """Agencies' clients: status, authentication, first-party."""
    return _clients_page(staff)


@bp.post("/clients/<client_id>/disable")
@staff_only("clients.manage", change=True, back="admin.clients")
def disable_client(staff: Person, client_id: str) -> Response:
    """Stop serving a client."""
    services().console.disable_client(staff, client_id[:64], ip=client_ip())
    return redirect(url_for("admin.clients", done="disabled"), code=303)


@bp.post("/clients/<client_id>/first-party")
@staff_only("clients.manage", change=True, back="admin.clients")
def first_party(staff: Person, client_id: str) -> Response:
    """Mark a client first-party (consent implied, still recorded) or not."""
    on = request.form.get("state", "")[:3] == "on"
    services().console.set_first_party(staff, client_id[:64], on, ip=client_ip())
    return redirect(url_for("admin.clients", done="first_party_on" if on else "first_party_off"), code=303)


# -- keys ---------------------------------------------------------------------------------------------


def _keys_page(staff: Person, *, error: str | None = None, status: int = 200) -> Response:
    keys = services().console.keys(staff)
    signing = sorted({info.alg for info in keys if info.state == "current"})
    return _page("admin/keys.html", staff, keys=keys, signing=signing, error=error, status=status)


@bp.get("/keys")
@staff_only("keys.read", back="admin.keys")
def keys(staff: Person) -> Response:
    """Signing keys and their states (never key material)."""
    return _keys_page(staff)


@bp.post("/keys/rotate")
@staff_only("keys.manage", change=True, back="admin.keys")
def rotate_key(staff: Person) -> Response:
    """Rotate one algorithm's signing key: its next key signs, the current one retires."""
    try:
        services().console.rotate_key(staff, request.form.get("alg", "")[:10], ip=client_ip())
    except RotationRefused as refused:
        return _keys_page(staff, error=refused.code, status=refused.status)
    return redirect(url_for("admin.keys", done="rotated"), code=303)


# -- audit --------------------------------------------------------------------------------------------


@bp.get("/audit")
@staff_only("audit.read", back="admin.audit")
def audit(staff: Person) -> Response:
    """The newest audit events, by event name and subject (an account id or a username)."""
    event = request.args.get("event", "")[:64].strip()
    subject = request.args.get("subject", "")[:150].strip()
    error, status = None, 200
    try:
        entries = services().console.audit_trail(staff, event=event, subject=subject, limit=AUDIT_PAGE_SIZE)
    except InvalidInput as bad:
        entries, error, status = [], bad.code, 400
    return _page(
        "admin/audit.html", staff, entries=entries, event=event, subject=subject, error=error, status=status
    )


# -- people -------------------------------------------------------------------------------------------


@bp.get("/people")
@staff_only("people.read", back="admin.people")
def people(staff: Person) -> Response:
    """Find a person by username or national identity number."""
    return _page("admin/people.html", staff, query="", person=None, searched=False)


@bp.post("/people")
@staff_only("people.read", back="admin.people")
def find_person(staff: Person) -> Response:
    """The person the query names (posted, so identity numbers stay out of URLs and history)."""
    query = request.form.get("q", "")[:150].strip()
    person = services().console.find_person(staff, query, ip=client_ip()) if query else None
    return _page("admin/people.html", staff, query=query, person=person, searched=bool(query))


@bp.post("/people/<account_id>/activation-code")
@staff_only("people.activate", change=True, back="admin.people")
def activation_code(staff: Person, account_id: str) -> Response:
    """Issue an activation code and show it once (the person's earlier codes stop working)."""
    console = services().console
    send = request.form.get("send") == "yes"
    try:
        issued = console.issue_activation_code(staff, account_id[:64], send=send, ip=client_ip())
    except ActivationNeedsApproval:
        # The people page says why (its second factors) and what to do instead.
        person = console.person(staff, account_id[:64])
        return _page("admin/people.html", staff, status=403, query="", person=person, searched=True)
    person = console.person(staff, account_id[:64])
    return _page("admin/activation_code.html", staff, person=person, issued=issued, send=send)
