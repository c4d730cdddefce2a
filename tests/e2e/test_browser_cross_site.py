"""Cross-site reality in a real headless Chromium: a cross-site POST to /authorize must
still find the SSO session, and a ``response_mode=form_post`` response must reach the agency under
Hawiya's strict CSP.

As in test_browser.py, the IdP is ``http://localhost:PORT`` and the agency ``http://127.0.0.1:PORT``:
two sites, so Chromium withholds Hawiya's SameSite=Lax cookies from the agency's POSTs exactly as
it would in production. The agency's callback accepts GET (query) and POST (form_post), redeems the
code at /token and records what it received.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
import requests
from flask import Flask, abort, redirect, request
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.wrappers import Response

from idp.app import create_app
from tests.conftest import PASSWORD, Backend, World, free_port, initialised, make_settings, populate
from tests.support.browser import WAIT, chromium, serve

pytestmark = pytest.mark.browser

# The browser setup of test_browser.py: Debian's chromium and chromedriver, never Selenium Manager.
SCOPE = "openid profile email"


# -- what the IdP saw ---------------------------------------------------------------------------------


class RequestLog:
    """WSGI middleware recording each request's method and path (what the browser asked Hawiya)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock:
            self.seen.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
        return self._app(environ, start_response)

    def since(self, mark: int) -> list[tuple[str, str]]:
        with self._lock:
            return self.seen[mark:]

    def mark(self) -> int:
        with self._lock:
            return len(self.seen)


# -- the relying party --------------------------------------------------------------------------------


@dataclass
class Received:
    """One authorization response as the agency's callback got it."""

    method: str
    params: dict[str, str]
    id_token: dict[str, Any] = field(default_factory=dict)


def relying_party(idp_url: str, world: World, received: list[Received]) -> Flask:
    """An agency: starts code flows (query or form_post, GET or a cross-site POST form), and a
    callback that takes GET and POST, checks state and iss, and redeems the code."""
    app = Flask("agency")
    pending: dict[str, dict[str, str]] = {}

    def authorization_request(response_mode: str | None) -> dict[str, str]:
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
        # State lives server-side: a form_post callback is a cross-site POST, which carries none of
        # the agency's SameSite=Lax cookies.
        pending[state] = {"nonce": nonce, "verifier": verifier}
        params = {
            "response_type": "code",
            "client_id": world.confidential_id,
            "redirect_uri": world.redirect_uri,
            "scope": SCOPE,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge.decode(),
            "code_challenge_method": "S256",
        }
        if response_mode:
            params["response_mode"] = response_mode
        return params

    @app.get("/start")
    def start() -> Response:
        params = authorization_request(request.args.get("response_mode"))
        return redirect(f"{idp_url}/authorize?{urlencode(params)}")

    @app.get("/post-start")
    def post_start() -> Response:
        # OIDC Core 3.1.2.1: the authorization request may be a form POST; this one is cross-site.
        params = authorization_request(request.args.get("response_mode"))
        inputs = "".join(
            f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
            for name, value in params.items()
        )
        body = (
            '<!doctype html><html lang="en"><title>Agency</title>'
            f'<form method="post" action="{escape(idp_url)}/authorize">{inputs}'
            '<button type="submit" id="go">Sign in with Hawiya</button></form></html>'
        )
        return Response(body, mimetype="text/html")

    @app.route("/callback", methods=["GET", "POST"])
    def callback() -> Response:
        values = {key: request.values[key] for key in request.values}
        state = values.get("state", "")
        if state not in pending:
            abort(400, "unknown state")
        if values.get("iss") != idp_url:
            abort(400, "iss mismatch (RFC 9207)")
        if "code" not in values:
            abort(400, f"no code: {values.get('error')}")
        flow = pending.pop(state)
        token = requests.post(
            f"{idp_url}/token",
            data={
                "grant_type": "authorization_code",
                "code": values["code"],
                "redirect_uri": world.redirect_uri,
                "code_verifier": flow["verifier"],
            },
            auth=(world.confidential_id, world.confidential_secret),
            timeout=10,
        )
        if token.status_code != 200:
            abort(502, f"token endpoint: {token.status_code} {token.text}")
        id_token_value = token.json()["id_token"]
        signing_key = jwt.PyJWKClient(f"{idp_url}/jwks.json").get_signing_key_from_jwt(id_token_value)
        id_token = jwt.decode(
            id_token_value, signing_key, algorithms=["RS256"], audience=world.confidential_id, issuer=idp_url
        )
        if id_token.get("nonce") != flow["nonce"]:
            abort(400, "nonce mismatch")
        received.append(Received(request.method, values, id_token))
        body = (
            '<!doctype html><html lang="en"><title>Agency</title>'
            f'<p id="result">{escape(request.method)} signed in</p></html>'
        )
        return Response(body, mimetype="text/html")

    return app


# -- fixtures -------------------------------------------------------------------------------------------


@dataclass
class CrossSite:
    """The IdP on localhost (its requests logged) and an agency on 127.0.0.1."""

    idp_url: str
    rp_url: str
    world: World
    idp_log: RequestLog
    received: list[Received]


@pytest.fixture
def cross_site(tmp_path: Path, backend: Backend) -> Iterator[CrossSite]:
    """Like test_browser.py's fixture, with a callback that also takes form_post."""
    idp_port, rp_port = free_port(), free_port()
    while rp_port == idp_port:
        rp_port = free_port()
    idp_url = f"http://localhost:{idp_port}"
    registry = initialised(make_settings(tmp_path, backend, issuer=idp_url))
    world = populate(registry, rp_port=rp_port)
    idp_log = RequestLog(create_app(registry=registry))
    received: list[Received] = []
    idp_server, idp_thread = serve(idp_log, "localhost", idp_port)
    rp_server, rp_thread = serve(relying_party(idp_url, world, received), "127.0.0.1", rp_port)
    try:
        yield CrossSite(idp_url, f"http://127.0.0.1:{rp_port}", world, idp_log, received)
    finally:
        for server, thread in ((rp_server, rp_thread), (idp_server, idp_thread)):
            server.shutdown()
            thread.join(timeout=5)
        registry.close()


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """A fresh headless Chromium (its own profile, English first, console logged), quit afterwards."""
    yield from chromium()


# -- steps ---------------------------------------------------------------------------------------------


def sign_in_and_approve(driver: WebDriver, site: CrossSite) -> None:
    """On Hawiya's sign-in page: sign in as the citizen, then allow on the consent page."""
    wait = WebDriverWait(driver, WAIT)
    wait.until(ec.url_contains(f"{site.idp_url}/signin"))
    wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys("citizen")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait.until(ec.element_to_be_clickable((By.ID, "approve"))).click()


def wait_for_agency(driver: WebDriver, site: CrossSite, method: str) -> None:
    """Wait until the agency's callback shows that it signed the person in via ``method``."""
    try:
        result = WebDriverWait(driver, WAIT).until(ec.visibility_of_element_located((By.ID, "result")))
    except TimeoutException:
        pytest.fail(
            f"the agency did not sign the person in at {driver.current_url}: {driver.page_source[:2000]}"
        )
    assert result.text == f"{method} signed in"
    assert driver.current_url.startswith(site.world.redirect_uri)


def console_problems(driver: WebDriver) -> list[str]:
    """Severe console entries and every CSP report (Chromium logs blocked content as errors)."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "/favicon.ico" not in entry["message"]
        and (entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"])
    ]


# -- the tests -----------------------------------------------------------------------------------------


def test_cross_site_post_to_authorize_finds_the_sso_session(
    cross_site: CrossSite, browser: WebDriver
) -> None:
    driver = browser
    site = cross_site

    # A first sign-in through the ordinary redirect flow leaves an SSO session on Hawiya.
    driver.get(site.rp_url + "/start")
    sign_in_and_approve(driver, site)
    wait_for_agency(driver, site, "GET")
    first = site.received[-1]

    # Later the agency sends the authorization request as a cross-site form POST. Chromium does not
    # send Hawiya's SameSite=Lax SSO cookie with it; Hawiya parks the request and 303s to a GET.
    mark = site.idp_log.mark()
    driver.get(site.rp_url + "/post-start")
    WebDriverWait(driver, WAIT).until(ec.element_to_be_clickable((By.ID, "go"))).click()
    wait_for_agency(driver, site, "GET")

    seen = site.idp_log.since(mark)
    assert ("POST", "/authorize") in seen, seen
    assert ("GET", "/authorize/resume") in seen, seen
    assert not any(path in ("/signin", "/consent") for _method, path in seen), seen
    second = site.received[-1]
    assert second is not first and second.params["code"] != first.params["code"]
    assert second.id_token["sub"] == first.id_token["sub"]
    assert second.id_token["auth_time"] == first.id_token["auth_time"]  # the same session, no new sign-in
    assert not console_problems(driver)


def test_form_post_response_reaches_the_agency_under_the_csp(
    cross_site: CrossSite, browser: WebDriver
) -> None:
    driver = browser
    site = cross_site

    driver.get(site.rp_url + "/start?response_mode=form_post")
    sign_in_and_approve(driver, site)
    # The consent answer is the form_post page; its external script submits the form at once.
    wait_for_agency(driver, site, "POST")

    got = site.received[-1]
    assert got.method == "POST"
    assert set(got.params) == {"code", "state", "iss"}
    assert got.params["iss"] == site.idp_url
    assert got.id_token["iss"] == site.idp_url
    problems = console_problems(driver)
    assert not problems, problems

    # With the session and consent in place, the next form_post response needs no page at all.
    mark = site.idp_log.mark()
    driver.get(site.rp_url + "/start?response_mode=form_post")
    wait_for_agency(driver, site, "POST")
    seen = site.idp_log.since(mark)
    assert ("GET", "/authorize") in seen, seen
    assert not any(path in ("/signin", "/consent") for _method, path in seen), seen
    assert site.received[-1].params["code"] != got.params["code"]
    problems = console_problems(driver)
    assert not problems, problems
