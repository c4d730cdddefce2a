"""A real headless Chromium through Hawiya's real pages, with a real relying party beside it.

The IdP is served as ``http://localhost:PORT`` and the agency (a tiny Flask RP) as
``http://127.0.0.1:PORT``: two sites, so the browser applies the same cross-site cookie rules
(SameSite=Lax) as production. The RP starts the code flow with state, nonce and PKCE S256,
exchanges the code at /token with client_secret_basic, checks the ID token and shows the
userinfo name.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from pathlib import Path
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
from idp.settings import PACKAGE_ROOT
from tests.conftest import PASSWORD, Backend, World, free_port, initialised, make_settings, populate
from tests.support.browser import WAIT, chromium, serve

pytestmark = pytest.mark.browser

CONSENT_SHOT = Path("/tmp/hawiya-consent.png")
ARABIC_SHOT = Path("/tmp/hawiya-ar.png")


# -- the relying party --------------------------------------------------------------------------


def relying_party(idp_url: str, world: World) -> Flask:
    """A minimal confidential agency: code flow + PKCE S256, state and nonce bound to a cookie."""
    app = Flask("agency")
    rp_url = world.redirect_uri.rsplit("/", 1)[0]
    pending: dict[str, dict[str, str]] = {}

    @app.get("/")
    def start() -> Response:
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)  # RFC 7636 4.1: 43 to 128 characters
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
        pending[state] = {"nonce": nonce, "verifier": verifier}
        query = urlencode(
            {
                "response_type": "code",
                "client_id": world.confidential_id,
                "redirect_uri": world.redirect_uri,
                "scope": "openid profile email",
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge.decode(),
                "code_challenge_method": "S256",
            }
        )
        response = redirect(f"{idp_url}/authorize?{query}")
        # Sent back on the cross-site top-level GET to /callback only because it is SameSite=Lax.
        response.set_cookie("rp_state", state, httponly=True, samesite="Lax")
        return response

    @app.get("/callback")
    def callback() -> Response:
        state = request.args.get("state", "")
        if not state or request.cookies.get("rp_state") != state or state not in pending:
            abort(400, "state mismatch")
        if request.args.get("iss") != idp_url:
            abort(400, "iss mismatch (RFC 9207)")
        flow = pending.pop(state)
        token = requests.post(
            f"{idp_url}/token",
            data={
                "grant_type": "authorization_code",
                "code": request.args["code"],
                "redirect_uri": world.redirect_uri,
                "code_verifier": flow["verifier"],
            },
            auth=(world.confidential_id, world.confidential_secret),
            timeout=10,
        )
        if token.status_code != 200:
            abort(502, f"token endpoint: {token.status_code} {token.text}")
        tokens = token.json()
        signing_key = jwt.PyJWKClient(f"{idp_url}/jwks.json").get_signing_key_from_jwt(tokens["id_token"])
        id_token = jwt.decode(
            tokens["id_token"],
            signing_key,
            algorithms=["RS256"],
            audience=world.confidential_id,
            issuer=idp_url,
        )
        if id_token.get("nonce") != flow["nonce"]:
            abort(400, "nonce mismatch")
        info = requests.get(
            f"{idp_url}/userinfo",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
            timeout=10,
        )
        info.raise_for_status()
        claims = info.json()
        if claims.get("sub") != id_token["sub"]:
            abort(400, "userinfo sub differs from the ID token's")
        body = (
            f'<!doctype html><html lang="en"><title>Agency</title>'
            f'<p>Welcome, <span id="name">{escape(claims.get("name", ""))}</span></p>'
            f'<p><a id="home" href="{rp_url}/">again</a></p></html>'
        )
        return Response(body, mimetype="text/html")

    return app


# -- fixtures -----------------------------------------------------------------------------------


@dataclass
class CrossSite:
    """The IdP on localhost and an agency on 127.0.0.1, sharing one populated world."""

    idp_url: str
    rp_url: str
    world: World


@pytest.fixture
def cross_site(tmp_path: Path, backend: Backend) -> Iterator[CrossSite]:
    """Like conftest's ``live_server``, plus a real RP on the port its redirect URI names."""
    idp_port, rp_port = free_port(), free_port()
    while rp_port == idp_port:  # neither is bound yet, so free_port() may repeat itself
        rp_port = free_port()
    idp_url = f"http://localhost:{idp_port}"
    registry = initialised(make_settings(tmp_path, backend, issuer=idp_url))
    world = populate(registry, rp_port=rp_port)
    idp_server, idp_thread = serve(create_app(registry=registry), "localhost", idp_port)
    rp_server, rp_thread = serve(relying_party(idp_url, world), "127.0.0.1", rp_port)
    try:
        yield CrossSite(idp_url, f"http://127.0.0.1:{rp_port}", world)
    finally:
        for server, thread in ((rp_server, rp_thread), (idp_server, idp_thread)):
            server.shutdown()
            thread.join(timeout=5)
        registry.close()


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """A fresh headless Chromium (its own profile, English first), quit afterwards."""
    yield from chromium()


def _arabic_catalog_compiled() -> bool:
    return (PACKAGE_ROOT / "i18n" / "translations" / "ar" / "LC_MESSAGES" / "messages.mo").exists()


def _has_arabic(text: str) -> bool:
    return any("\u0600" <= char <= "\u06ff" for char in text)


# -- the test -----------------------------------------------------------------------------------


def test_sign_in_consent_callback_then_arabic(cross_site: CrossSite, browser: WebDriver) -> None:
    driver = browser
    wait = WebDriverWait(driver, WAIT)
    idp = cross_site.idp_url

    # The agency sends the person to Hawiya's sign-in page.
    driver.get(cross_site.rp_url + "/")
    wait.until(ec.url_contains(f"{idp}/signin"))
    wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys("citizen")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()

    # Consent names the agency; approve it.
    approve = wait.until(ec.element_to_be_clickable((By.ID, "approve")))
    assert driver.current_url.startswith(f"{idp}/consent")
    main = driver.find_element(By.ID, "main").text
    assert "Ministry of Health" in main
    assert driver.find_element(By.ID, "deny").is_displayed()
    driver.save_screenshot(str(CONSENT_SHOT))
    approve.click()

    # Back at the agency, which exchanged the code and read userinfo.
    try:
        name = wait.until(ec.visibility_of_element_located((By.ID, "name")))
    except TimeoutException:
        pytest.fail(f"the agency did not show the name at {driver.current_url}: {driver.page_source[:2000]}")
    assert driver.current_url.startswith(cross_site.world.redirect_uri)
    assert name.text == "Fatima Al-Sabah"

    # Back on Hawiya (still signed in: SSO), switch to Arabic.
    driver.get(idp + "/")
    html = driver.find_element(By.TAG_NAME, "html")
    assert html.get_attribute("lang") == "en"  # the browser asks for English first
    switch = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "nav.lang a[hreflang=ar]")))
    assert switch.text == "العربية"
    switch.click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, 'html[lang="ar"][dir="rtl"]')))
    assert driver.current_url.rstrip("/") == idp
    main = wait.until(ec.visibility_of_element_located((By.ID, "main"))).text
    # The person's Arabic name comes from the account, not the catalogs.
    assert "فاطمة الصباح" in main
    assert driver.find_element(By.CSS_SELECTOR, "nav.lang a[hreflang=en]").text == "English"
    if _arabic_catalog_compiled():
        heading = driver.find_element(By.TAG_NAME, "h1").text
        assert _has_arabic(heading), f"the Arabic catalog is compiled but the heading is {heading!r}"
    # The stylesheet loaded under the CSP, and nothing was blocked or failed on the way.
    brand = driver.find_element(By.CSS_SELECTOR, "header.top").value_of_css_property("background-color")
    assert brand in ("rgba(11, 110, 79, 1)", "rgb(11, 110, 79)")
    driver.save_screenshot(str(ARABIC_SHOT))
    problems = [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "/favicon.ico" not in entry["message"]
    ]
    assert not problems, problems
