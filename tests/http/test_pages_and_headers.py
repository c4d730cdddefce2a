"""What every page sends the browser: security headers, cookie flags, CSRF protection, language
and direction, health endpoints, and no third-party origins."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from idp.app import create_app
from idp.clock import FrozenClock
from idp.registry import Registry
from tests.conftest import PASSWORD, Backend, World, initialised, make_settings, populate
from tests.support.audit import audit_events
from tests.support.flask_person import FlaskPerson, authorize_url, is_same_origin, page_links, pkce_pair
from tests.support.person import hidden_fields

_HTML_TAG = re.compile(r"<html\b[^>]*>")


def html_tag(response: TestResponse) -> str:
    match = _HTML_TAG.search(response.get_data(as_text=True))
    assert match, "not an HTML page"
    return match.group(0)


def cookie_header(response: TestResponse, name: str) -> str:
    """The Set-Cookie header that sets ``name``."""
    found = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.getlist("Set-Cookie")
    return found[0]


def cookie_flags(header: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}


def authorize_params(world: World, **extra: str) -> dict[str, str]:
    _verifier, challenge = pkce_pair()
    return {
        "response_type": "code",
        "client_id": world.confidential_id,
        "redirect_uri": world.redirect_uri,
        "scope": "openid email",
        "state": "s-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


def pages(app: Flask, world: World) -> dict[str, TestResponse]:
    """One of each HTML page a person can meet."""
    person = FlaskPerson(app, "citizen", PASSWORD)
    found = {
        "home": person.get("/"),
        "signin": person.get("/signin"),
        "error": person.get(authorize_url(**authorize_params(world, client_id="no-such-client"))),
        "not found": person.get("/no-such-page"),
    }
    found["signin for a client"] = person.open_page(authorize_url(**authorize_params(world)), "/signin")
    reached = person.follow(person.sign_in(found["signin for a client"]), stop_at="/consent")
    assert not isinstance(reached, str)
    found["consent"] = reached
    found["home signed in"] = person.get("/")
    return found


PAGE_NAMES = ["home", "signin", "error", "not found", "signin for a client", "consent", "home signed in"]


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_every_page_has_the_security_headers(app: Flask, world: World, name: str) -> None:
    page = pages(app, world)[name]
    assert page.mimetype == "text/html"
    csp = {d.strip().split(" ", 1)[0]: d.strip() for d in page.headers["Content-Security-Policy"].split(";")}
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert csp["default-src"] == "default-src 'none'"
    assert "'unsafe-inline'" not in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_no_page_loads_or_links_another_origin(app: Flask, world: World, name: str) -> None:
    body = pages(app, world)[name].get_data(as_text=True)
    links = page_links(body)
    assert "/static/hawiya.css" in links
    assert [link for link in links if not is_same_origin(link)] == []


def test_html_pages_are_not_cached_but_discovery_is(app: Flask) -> None:
    browser = app.test_client()
    assert browser.get("/").headers["Cache-Control"] == "no-store"
    assert "no-store" not in browser.get("/.well-known/openid-configuration").headers["Cache-Control"]


def test_hsts_only_when_the_issuer_is_https(app: Flask, tmp_path: Path, backend: Backend) -> None:
    assert "Strict-Transport-Security" not in app.test_client().get("/").headers
    https_app, https_registry = _https_app(tmp_path / "https", backend)
    try:
        response = https_app.test_client().get("/", base_url="https://idp.example.test")
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    finally:
        https_registry.close()


# -- cookies ---------------------------------------------------------------------------------------


def _sign_in_directly(person: FlaskPerson) -> TestResponse:
    page = person.get("/signin")
    response = person.sign_in(page)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def test_sso_cookie_on_localhost_http(app: Flask, world: World) -> None:
    response = _sign_in_directly(FlaskPerson(app, "citizen", PASSWORD))
    header = cookie_header(response, "hawiya_sso")
    flags = cookie_flags(header)
    assert "httponly" in flags
    assert "samesite=lax" in {part.strip().lower() for part in header.split(";")}
    assert "secure" not in flags


def _https_app(folder: Path, backend: Backend) -> tuple[Flask, Registry]:
    folder.mkdir()
    https_backend = Backend(
        backend.name, f"sqlite:///{folder / 'hawiya.db'}", backend.ephemeral_url, backend.redis_prefix
    )
    settings = make_settings(folder, https_backend, issuer="https://idp.example.test")
    registry = initialised(settings, FrozenClock())
    application = create_app(registry=registry)
    application.testing = True
    return application, registry


def test_every_cookie_is_secure_on_an_https_issuer(tmp_path: Path, backend: Backend) -> None:
    https_app, registry = _https_app(tmp_path / "https", backend)
    try:
        populate(registry)
        person = FlaskPerson(https_app, "citizen", PASSWORD, base_url="https://idp.example.test")
        page = person.get("/signin")
        response = person.sign_in(page)
        assert response.status_code == 302
        header = cookie_header(
            response, "__Host-hawiya_sso"
        )  # the prefix: tests/sessions/test_session_hygiene.py
        assert {"secure", "httponly"} <= cookie_flags(header)
        assert "samesite=lax" in {part.strip().lower() for part in header.split(";")}
        # The form (CSRF) cookie too.
        assert "secure" in cookie_flags(cookie_header(page, "hawiya_form"))
    finally:
        registry.close()


# -- CSRF ------------------------------------------------------------------------------------------


def _signed_in(person: FlaskPerson) -> bool:
    return "/signout" in person.get("/").get_data(as_text=True)


@pytest.mark.parametrize("token", ["missing", "wrong", "from another browser"])
def test_signin_without_a_valid_csrf_token_is_refused(
    app: Flask, registry: Registry, world: World, token: str
) -> None:
    person = FlaskPerson(app, "citizen", PASSWORD)
    fields = hidden_fields(person.get("/signin").get_data(as_text=True))
    if token == "missing":
        del fields["csrf_token"]
    elif token == "wrong":
        fields["csrf_token"] = fields["csrf_token"][:-4] + "AAAA"
    else:
        other = FlaskPerson(app)
        fields["csrf_token"] = hidden_fields(other.get("/signin").get_data(as_text=True))["csrf_token"]
    fields.update(username="citizen", password=PASSWORD)
    response = person.post("/signin", fields)

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert not any(h.startswith("hawiya_sso=") for h in response.headers.getlist("Set-Cookie"))
    assert audit_events(registry, "session.started") == []
    assert not _signed_in(person)
    # The same person, with the page's own token, signs in (the refusal was the token's doing).
    _sign_in_directly(person)
    assert _signed_in(person)


def test_consent_without_csrf_token_is_refused(app: Flask, registry: Registry, world: World) -> None:
    person = FlaskPerson(app, "citizen", PASSWORD)
    signin = person.open_page(authorize_url(**authorize_params(world)), "/signin")
    consent = person.follow(person.sign_in(signin), stop_at="/consent")
    assert not isinstance(consent, str)
    fields = hidden_fields(consent.get_data(as_text=True))
    token = fields.pop("csrf_token")

    refused = person.post("/consent", {**fields, "decision": "approve"})
    assert refused.status_code == 400
    assert "Location" not in refused.headers
    missing = registry.consents.missing(world.citizen_id, world.confidential_id, {"openid", "email"})
    assert missing.scopes == {"email"}

    accepted = person.post("/consent", {**fields, "decision": "approve", "csrf_token": token})
    assert accepted.status_code == 302
    assert accepted.location.startswith(world.redirect_uri + "?code=")


# -- language --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "tag"), [("ar", '<html lang="ar" dir="rtl">'), ("en", '<html lang="en" dir="ltr">')]
)
def test_accept_language_sets_language_and_direction(app: Flask, language: str, tag: str) -> None:
    for path in ("/", "/signin", "/no-such-page"):
        response = app.test_client().get(path, headers={"Accept-Language": f"{language},fr;q=0.5"})
        assert html_tag(response) == tag


def test_ui_locales_is_carried_to_the_sign_in_page(app: Flask, world: World) -> None:
    person = FlaskPerson(app, language="ar")
    plain = person.open_page(authorize_url(**authorize_params(world)), "/signin")
    assert html_tag(plain) == '<html lang="ar" dir="rtl">'

    person = FlaskPerson(app, language="ar")
    page = person.open_page(authorize_url(**authorize_params(world, ui_locales="en-GB ar")), "/signin")
    assert html_tag(page) == '<html lang="en" dir="ltr">'


def test_language_switch_sets_the_cookie_and_goes_back(app: Flask) -> None:
    browser = app.test_client()
    response = browser.get("/lang/ar?next=/signin%3Fix%3Dabc", headers={"Accept-Language": "en"})
    assert response.status_code == 302
    assert response.location == "/signin?ix=abc"
    header = cookie_header(response, "hawiya_lang")
    assert header.startswith("hawiya_lang=ar;")
    # The choice now wins over the browser's Accept-Language.
    page = browser.get("/", headers={"Accept-Language": "en"})
    assert html_tag(page) == '<html lang="ar" dir="rtl">'


def test_language_switch_drops_ui_locales_from_next(app: Flask) -> None:
    response = app.test_client().get("/lang/ar?next=/signin%3Fui_locales%3Den%26ix%3Dabc")
    assert response.location == "/signin?ix=abc"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "//evil.example/path",
        "https://evil.example",
        "https://evil.example/signin",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        " //evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "evil.example",
        "",
    ],
)
def test_language_switch_never_leaves_the_site(app: Flask, target: str) -> None:
    response = app.test_client().get("/lang/ar", query_string={"next": target})
    assert response.status_code == 302
    assert response.location == "/"


def test_unknown_language_is_not_found(app: Flask) -> None:
    response = app.test_client().get("/lang/xx?next=/")
    assert response.status_code == 404
    assert not response.headers.getlist("Set-Cookie")


# -- health ----------------------------------------------------------------------------------------


def test_healthz(app: Flask) -> None:
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_checks_database_ephemeral_store_and_keys(app: Flask) -> None:
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "checks": {"database": True, "ephemeral": True, "keys": True}}
