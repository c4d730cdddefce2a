"""The Flask extension's settings (app.config, else the environment), its refusal of a client
authentication method it does not speak, and its own pages in Arabic and English. The provider is
rp_fakes' (no IdP here); tests/rp runs the same extension against the real Hawiya."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hawiya_rp import ClientConfig, HawiyaRPError, IntrospectionValidator, OpenIDClient
from hawiya_rp.flask import SETTINGS, Hawiya, settings_of
from hawiya_rp.http import Response
from hawiya_rp.keys import generate_private_jwk
from jinja2 import DictLoader
from rp_fakes import CLIENT_ID, ISSUER, REDIRECT_URI, TOKEN_ENDPOINT, FakeClock, FakeHttp, Provider

SECRET = "s3cret/with+odd chars"
BASE = {"HAWIYA_ISSUER": ISSUER, "HAWIYA_CLIENT_ID": CLIENT_ID, "HAWIYA_REDIRECT_URI": REDIRECT_URI}
_HTML = re.compile(r"<html\b[^>]*>")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the HAWIYA_* variables a test sets."""
    for name in list(os.environ):
        if name.startswith("HAWIYA_"):
            monkeypatch.delenv(name)


def make_app(tmp_path: Path, http: FakeHttp | None = None, **config: Any) -> Flask:
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(HAWIYA_STORE=str(tmp_path / "sessions"), **config)
    Hawiya(app, http=http)
    return app


def html_tag(text: str) -> str:
    found = _HTML.search(text)
    assert found, text[:200]
    return found.group(0)


# -- settings: app.config, else the environment --------------------------------------------------


def test_the_environment_alone_configures_the_extension(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**BASE, "HAWIYA_CLIENT_SECRET": SECRET, "HAWIYA_SCOPE": "openid email"}.items():
        monkeypatch.setenv(name, value)
    app = make_app(tmp_path)
    with app.app_context():
        config = Hawiya.client().config
    assert (config.issuer, config.client_id, config.redirect_uri) == (ISSUER, CLIENT_ID, REDIRECT_URI)
    assert config.client_secret == SECRET and config.auth_method == "client_secret_basic"
    assert config.scope == "openid email"


def test_app_config_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAWIYA_CLIENT_ID", "from-the-environment")
    monkeypatch.setenv("HAWIYA_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("HAWIYA_SESSION_TTL", "60")
    app = make_app(tmp_path, **BASE, HAWIYA_SESSION_TTL=None)  # None: not set
    with app.app_context():
        assert Hawiya.client().config.client_id == CLIENT_ID
        assert Hawiya.client().config.client_secret == SECRET  # only in the environment
    assert settings_of(app)["HAWIYA_SESSION_TTL"] == "60"


def test_missing_settings_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAWIYA_ISSUER", ISSUER)
    with pytest.raises(HawiyaRPError, match="HAWIYA_CLIENT_ID, HAWIYA_REDIRECT_URI in the app's config or"):
        make_app(tmp_path)


# -- the token endpoint authentication method ---------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_jwt", "tls_client_auth", "Client_Secret_Post"])
def test_an_unsupported_method_is_refused_at_start_up(tmp_path: Path, method: str) -> None:
    with pytest.raises(HawiyaRPError) as refused:
        make_app(tmp_path, **BASE, HAWIYA_CLIENT_SECRET=SECRET, HAWIYA_AUTH_METHOD=method)
    assert refused.value.reason == "configuration"
    assert f"HAWIYA_AUTH_METHOD {method!r} is not supported" in refused.value.message
    assert "client_secret_basic, client_secret_post" in refused.value.message
    assert SECRET not in str(refused.value)


def test_a_method_without_its_credential_is_refused_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(HawiyaRPError, match="private_key_jwt needs a private JWK, not a client secret"):
        make_app(tmp_path, **BASE, HAWIYA_CLIENT_SECRET=SECRET, HAWIYA_AUTH_METHOD="private_key_jwt")
    with pytest.raises(ValueError, match="client_secret_post needs a client secret"):
        ClientConfig(ISSUER, CLIENT_ID, REDIRECT_URI, token_endpoint_auth_method="client_secret_post")
    with pytest.raises(ValueError, match="is not supported"):
        ClientConfig(ISSUER, CLIENT_ID, REDIRECT_URI, client_secret=SECRET, token_endpoint_auth_method="x")


def refuse_tokens(http: FakeHttp) -> None:
    """The token endpoint refuses (what matters here is how the request authenticated)."""
    http.routes[TOKEN_ENDPOINT] = Response(400, {}, {"error": "invalid_grant"})


@pytest.mark.parametrize(
    ("method", "in_form", "basic"),
    [
        ("client_secret_post", {"client_id": CLIENT_ID, "client_secret": SECRET}, None),
        ("client_secret_basic", {}, (CLIENT_ID, "s3cret%2Fwith%2Bodd%20chars")),
        (None, {}, (CLIENT_ID, "s3cret%2Fwith%2Bodd%20chars")),
    ],
)
def test_the_secret_goes_where_the_method_says(
    http: FakeHttp,
    clock: FakeClock,
    provider: Provider,
    method: str | None,
    in_form: dict[str, str],
    basic: tuple[str, str] | None,
) -> None:
    config = ClientConfig(
        ISSUER, CLIENT_ID, REDIRECT_URI, client_secret=SECRET, token_endpoint_auth_method=method
    )
    rp = OpenIDClient(config, http, clock)
    refuse_tokens(http)
    with pytest.raises(HawiyaRPError):
        rp.refresh("refresh-1")
    call = http.calls[-1]
    assert call.url == TOKEN_ENDPOINT and call.auth == basic
    assert call.data == {"grant_type": "refresh_token", "refresh_token": "refresh-1", **in_form}


def test_introspection_speaks_client_secret_post(http: FakeHttp, clock: FakeClock) -> None:
    http.routes[f"{ISSUER}/introspect"] = Response(200, {}, {"active": False})
    validator = IntrospectionValidator(
        f"{ISSUER}/introspect",
        client_id=CLIENT_ID,
        client_secret=SECRET,
        auth_method="client_secret_post",
        http=http,
        clock=clock,
    )
    with pytest.raises(HawiyaRPError):
        validator.validate("token-1")
    assert http.calls[-1].auth is None and http.calls[-1].data is not None
    assert http.calls[-1].data["client_secret"] == SECRET
    with pytest.raises(ValueError, match="does not fit"):
        IntrospectionValidator(
            f"{ISSUER}/introspect",
            client_id=CLIENT_ID,
            private_jwk=generate_private_jwk(),
            auth_method="client_secret_post",
        )


# -- the page language: ui_locales, and the library's own pages ----------------------------------


def start(browser: FlaskClient, url: str, **headers: str) -> dict[str, list[str]]:
    """GET ``url`` (a /auth/login URL): the authorization request's parameters."""
    response = browser.get(url, headers=headers)
    assert response.status_code == 302, response.get_data(as_text=True)
    return parse_qs(urlsplit(response.location).query)


def test_the_page_language_is_sent_as_ui_locales(tmp_path: Path, http: FakeHttp, provider: Provider) -> None:
    app = make_app(tmp_path, http, **BASE, HAWIYA_CLIENT_SECRET=SECRET)
    browser = app.test_client()
    assert start(browser, "/auth/login?lang=ar")["ui_locales"] == ["ar"]
    assert start(browser, "/auth/login?lang=ar-KW")["ui_locales"] == ["ar-KW"]
    # Without the page's word, the browser's language is Hawiya's to negotiate (with its own cookie).
    assert "ui_locales" not in start(browser, "/auth/login", **{"Accept-Language": "ar"})
    for odd in ("%22%3E%3Cscript%3E", "ar%D9%A3"):  # markup, a non-ASCII digit
        assert "ui_locales" not in start(browser, f"/auth/login?lang={odd}")


def test_a_locale_selector_gives_the_page_language(
    tmp_path: Path, http: FakeHttp, provider: Provider
) -> None:
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(BASE, HAWIYA_CLIENT_SECRET=SECRET, HAWIYA_STORE=str(tmp_path / "sessions"))
    Hawiya(app, http=http, locale_selector=lambda: "ar")
    assert start(app.test_client(), "/auth/login")["ui_locales"] == ["ar"]
    page = app.test_client().get("/auth/callback", headers={"Accept-Language": "en"})
    assert html_tag(page.get_data(as_text=True)) == '<html lang="ar" dir="rtl">'


@pytest.mark.parametrize(
    ("language", "tag", "title"),
    [
        ("ar-KW,ar;q=0.9", '<html lang="ar" dir="rtl">', "انتهت صلاحية تسجيل الدخول هذا"),
        ("fr,en;q=0.5", '<html lang="en" dir="ltr">', "This sign-in has expired"),
        ("fr", '<html lang="en" dir="ltr">', "This sign-in has expired"),
    ],
)
def test_the_error_pages_speak_arabic_or_english(
    tmp_path: Path, http: FakeHttp, provider: Provider, language: str, tag: str, title: str
) -> None:
    app = make_app(tmp_path, http, **BASE, HAWIYA_CLIENT_SECRET=SECRET)
    page = app.test_client().get("/auth/callback?code=c&state=s", headers={"Accept-Language": language})
    text = page.get_data(as_text=True)
    assert page.status_code == 400 and html_tag(text) == tag and f"<h1>{title}</h1>" in text
    assert page.headers["Content-Language"] == tag[12:14]


def test_the_callback_answers_in_the_language_the_sign_in_started_in(
    tmp_path: Path, http: FakeHttp, provider: Provider
) -> None:
    app = make_app(tmp_path, http, **BASE, HAWIYA_CLIENT_SECRET=SECRET)
    browser = app.test_client()
    state = start(browser, "/auth/login?lang=ar", **{"Accept-Language": "en"})["state"][0]
    page = browser.get(
        f"/auth/callback?error=access_denied&state={state}&iss={ISSUER}", headers={"Accept-Language": "en"}
    )
    text = page.get_data(as_text=True)
    assert page.status_code == 403 and html_tag(text) == '<html lang="ar" dir="rtl">'
    assert "أُلغي تسجيل الدخول" in text and 'href="/auth/login?lang=ar"' in text


def test_an_error_template_is_given_the_language(tmp_path: Path, http: FakeHttp, provider: Provider) -> None:
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(
        BASE,
        HAWIYA_CLIENT_SECRET=SECRET,
        HAWIYA_STORE=str(tmp_path / "sessions"),
        HAWIYA_ERROR_TEMPLATE="error.html",
    )
    app.jinja_loader = DictLoader(
        {"error.html": '<html lang="{{ lang }}" dir="{{ dir }}">{{ status }} {{ title }}</html>'}
    )
    Hawiya(app, http=http)
    page = app.test_client().get("/auth/callback", headers={"Accept-Language": "ar"})
    assert page.get_data(as_text=True) == '<html lang="ar" dir="rtl">400 انتهت صلاحية تسجيل الدخول هذا</html>'


def test_the_readme_lists_every_setting_and_no_other() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `(HAWIYA_[A-Z_]+)` \|", readme, re.MULTILINE))
    assert listed == set(SETTINGS)
    # Never a bare name for the package index to resolve: the name is not Hawiya's there.
    commands = re.findall(r"pip install '(hawiya-rp[^']*)'", readme)
    assert commands and all(" @ " in command for command in commands), commands
