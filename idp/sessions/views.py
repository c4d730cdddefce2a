"""The home page (who is signed in), local sign-out, and the account area's sessions page.

``/account/sessions`` lists the person's live SSO sessions (browser and system, when it started and
was last used, from where, which agencies received tokens in it) and lets them end any other one,
or all others, for example after signing in on a shared computer. Ending one tells its agencies
through the session's end listeners. The changes need a recent sign-in, like every change in the
account area, and carry a CSRF token (Flask-WTF, app-wide).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from idp.accounts.views import come_back_after, recent_sign_in, signed_in_session
from idp.errors import NotFound
from idp.http.context import SSO_COOKIE, clear_cookie, client_ip, read_cookie, services
from idp.oidc.clients import RegisteredClient
from idp.sessions.service import ENDED_BY_PERSON, SIGNOUT, SsoSession
from idp.sessions.user_agents import Device, parse_user_agent

bp = Blueprint("sessions", __name__)

#: Notices on the sessions page after a change (the query names one).
NOTICES = ("ended", "others")
#: A ``sid`` is 22 URL-safe characters; anything much longer names no session.
_SID_MAX = 64


@bp.get("/")
def home() -> Response:
    """What Hawiya is, and who is signed in on this browser."""
    reg = services()
    session = reg.sessions.find(read_cookie(SSO_COOKIE))
    person = reg.accounts.find(session.account_id) if session else None
    return Response(render_template("home.html", person=person), mimetype="text/html")


@bp.post("/signout")
def signout() -> Response:
    """End this browser's SSO session."""
    handle = read_cookie(SSO_COOKIE)
    if handle:
        services().sessions.end(handle, reason=SIGNOUT, ip=client_ip())
    return _signed_out()


def _signed_out() -> Response:
    response = redirect(url_for("sessions.home"), code=303)
    clear_cookie(response, SSO_COOKIE)
    return response


# -- the account area's sessions page ------------------------------------------------------------


@dataclass(frozen=True)
class SessionRow:
    """One session as the page shows it."""

    session: SsoSession
    device: Device
    first_seen: datetime
    last_seen: datetime
    #: The clients that received tokens in it (None for one since deleted: its id is shown).
    agencies: tuple[tuple[str, RegisteredClient | None], ...]
    #: True for the session of the browser looking at the page.
    current: bool


def _client(client_id: str) -> RegisteredClient | None:
    try:
        return services().clients.show(client_id)
    except NotFound:
        return None


def _row(session: SsoSession, current: SsoSession) -> SessionRow:
    return SessionRow(
        session=session,
        device=parse_user_agent(session.user_agent),
        first_seen=datetime.fromtimestamp(session.first_seen, UTC),
        last_seen=datetime.fromtimestamp(session.last_seen, UTC),
        agencies=tuple((client_id, _client(client_id)) for client_id in session.clients),
        current=session.sid == current.sid,
    )


@bp.get("/account/sessions")
def list_sessions() -> Response:
    """The person's live sessions, this browser's first."""
    signed_in = signed_in_session()
    if signed_in is None:
        return come_back_after("authn.signin", url_for("sessions.list_sessions"))
    current = signed_in[1]
    rows = [_row(session, current) for session in services().sessions.sessions_of(current.account_id)]
    rows.sort(key=lambda row: not row.current)  # stable: the others stay most recently used first
    notice = request.args.get("done")
    body = render_template(
        "accounts/sessions.html",
        rows=rows,
        others=sum(1 for row in rows if not row.current),
        notice=notice if notice in NOTICES else None,
    )
    return Response(body, mimetype="text/html")


@bp.post("/account/sessions/end")
@recent_sign_in
def end_session(current: SsoSession) -> Response:
    """End one of the person's sessions; ending this browser's own is signing out."""
    sid = request.form.get("sid", "")[:_SID_MAX]
    if sid == current.sid:
        handle = read_cookie(SSO_COOKIE)
        if handle:
            services().sessions.end(handle, reason=SIGNOUT, ip=client_ip())
        return _signed_out()
    ended = services().sessions.end_by_sid(
        sid, ENDED_BY_PERSON, account_id=current.account_id, ip=client_ip()
    )
    return redirect(url_for("sessions.list_sessions", done="ended" if ended else None), code=303)


@bp.post("/account/sessions/end-others")
@recent_sign_in
def end_other_sessions(current: SsoSession) -> Response:
    """End every session of the person but this browser's."""
    services().sessions.end_all(
        current.account_id,
        ENDED_BY_PERSON,
        except_handle=read_cookie(SSO_COOKIE),
        ip=client_ip(),
    )
    return redirect(url_for("sessions.list_sessions", done="others"), code=303)
