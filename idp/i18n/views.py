"""The language switch on every page."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Blueprint, abort, redirect, request
from werkzeug.wrappers import Response

from idp.http.context import INTERACTION_COOKIE, LANG_COOKIE, read_cookie, services, set_cookie
from idp.settings import LOCALES

bp = Blueprint("i18n", __name__)


def safe_next(target: str | None) -> str:
    """A same-origin path to go back to (never another site: no open redirect).

    ``ui_locales`` is dropped from it, so the person's explicit choice wins over the agency's hint.
    """
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "ui_locales"])
    return parts.path + (f"?{query}" if query else "")


@bp.get("/lang/<code>")
def switch(code: str) -> Response:
    """Remember the chosen language for a year and go back to the page; on a page of a parked
    authorization request, the request's remaining pages speak it too (over its ``ui_locales``)."""
    if code not in LOCALES:
        abort(404)
    target = safe_next(request.args.get("next"))
    ix = dict(parse_qsl(urlsplit(target).query)).get("ix")
    interactions = services().interactions
    interaction = interactions.find(ix, read_cookie(INTERACTION_COOKIE)) if ix else None
    if interaction is not None:
        interactions.choose_locale(interaction, code)
    response = redirect(target)
    set_cookie(response, LANG_COOKIE, code, max_age=365 * 24 * 3600, http_only=False)
    return response
