"""A passkey end to end in a real headless Chromium with a WebAuthn virtual authenticator.

The person signs in with their password, adds a passkey on the account page (her first second
factor: she first types back the code Hawiya mailed to her verified address; then webauthn.js runs
the real ``navigator.credentials.create`` against the virtual authenticator), signs out, then starts at
an agency and signs in to Hawiya with the passkey alone: no username, no password. The agency
redeems the code and shows the ``acr`` and ``amr`` of the ID token it verified.

As in test_browser.py, Hawiya is ``http://localhost:PORT`` (the WebAuthn RP ID is ``localhost``, a
secure context for Chromium) and the agency ``http://127.0.0.1:PORT``, another site.

An ordinary passkey is registered with ``attestation: none``, so nothing proves where its key
lives: the virtual authenticator's device-bound credential (not backup-eligible) with user
verification reaches ``urn:hawiya:loa:substantial`` with ``swk``, exactly like a synced passkey.
``high`` needs a verified attestation (tests/authn/test_high_assurance.py).

The sign-in page offers passkeys two ways: the "Sign in with a passkey" button, and conditional
mediation (the username field's autofill). Chromium's virtual-authenticator environment answers a
conditional request at once, without the autofill a person would pick from, so the first test
makes conditional mediation unavailable (as in browsers without it) and presses the button, and
the second lets the autofill request sign the person in by itself.
"""

from __future__ import annotations

import base64
import hashlib
import re
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
from selenium.webdriver.common.virtual_authenticator import (
    Protocol,
    Transport,
    VirtualAuthenticatorOptions,
)
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.wrappers import Response

from idp.app import create_app
from idp.http.context import SSO_COOKIE
from idp.settings import LOA_SUBSTANTIAL
from tests.conftest import PASSWORD, Backend, World, free_port, initialised, make_settings, populate
from tests.support.browser import WAIT, chromium, serve
from tests.support.outbox import about, body

pytestmark = pytest.mark.browser

LABEL = "Laptop"
#: Run before each page's scripts: the browser says it has no conditional mediation (autofill).
NO_CONDITIONAL_MEDIATION = (
    "if (window.PublicKeyCredential) {"
    " PublicKeyCredential.isConditionalMediationAvailable = function () { return Promise.resolve(false); };"
    " }"
)


# -- the relying party --------------------------------------------------------------------------


def relying_party(idp_url: str, world: World) -> Flask:
    """An agency: code flow with state, nonce and PKCE S256; the callback redeems the code, verifies
    the ID token and shows its ``acr`` and ``amr``."""
    app = Flask("agency")
    pending: dict[str, dict[str, str]] = {}

    @app.get("/start")
    def start() -> Response:
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
        pending[state] = {"nonce": nonce, "verifier": verifier}
        query = urlencode(
            {
                "response_type": "code",
                "client_id": world.confidential_id,
                "redirect_uri": world.redirect_uri,
                "scope": "openid profile",
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge.decode(),
                "code_challenge_method": "S256",
            }
        )
        return redirect(f"{idp_url}/authorize?{query}")

    @app.get("/callback")
    def callback() -> Response:
        state = request.args.get("state", "")
        if state not in pending:
            abort(400, "unknown state")
        if request.args.get("iss") != idp_url:
            abort(400, "iss mismatch (RFC 9207)")
        if "code" not in request.args:
            abort(400, f"no code: {request.args.get('error')}")
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
        id_token_value = token.json()["id_token"]
        signing_key = jwt.PyJWKClient(f"{idp_url}/jwks.json").get_signing_key_from_jwt(id_token_value)
        id_token = jwt.decode(
            id_token_value, signing_key, algorithms=["RS256"], audience=world.confidential_id, issuer=idp_url
        )
        if id_token.get("nonce") != flow["nonce"]:
            abort(400, "nonce mismatch")
        body = (
            '<!doctype html><html lang="en"><title>Agency</title>'
            f'<p>Signed in at <span id="acr">{escape(str(id_token.get("acr", "")))}</span>'
            f' by <span id="amr">{escape(" ".join(id_token.get("amr", [])))}</span></p></html>'
        )
        return Response(body, mimetype="text/html")

    return app


# -- fixtures -----------------------------------------------------------------------------------


@dataclass
class Site:
    """Hawiya on localhost and an agency on 127.0.0.1, sharing one populated world."""

    idp_url: str
    rp_url: str
    world: World
    #: Where Hawiya's mail lands (the person reads her codes there).
    outbox: Path


@pytest.fixture
def site(tmp_path: Path, backend: Backend) -> Iterator[Site]:
    """Like test_browser.py's ``cross_site``: the IdP and a real RP on the port its redirect URI names."""
    idp_port, rp_port = free_port(), free_port()
    while rp_port == idp_port:
        rp_port = free_port()
    idp_url = f"http://localhost:{idp_port}"
    registry = initialised(make_settings(tmp_path, backend, issuer=idp_url))
    world = populate(registry, rp_port=rp_port)
    idp_server, idp_thread = serve(create_app(registry=registry), "localhost", idp_port)
    rp_server, rp_thread = serve(relying_party(idp_url, world), "127.0.0.1", rp_port)
    try:
        yield Site(idp_url, f"http://127.0.0.1:{rp_port}", world, registry.settings.outbox_path)
    finally:
        for server, thread in ((rp_server, rp_thread), (idp_server, idp_thread)):
            server.shutdown()
            thread.join(timeout=5)
        registry.close()


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """A fresh headless Chromium (its own profile, English first, console logged), quit afterwards."""
    yield from chromium()


class AuthenticatorOptions(VirtualAuthenticatorOptions):
    """Selenium's options plus the backup flags of WebAuthn Level 3's virtual authenticators
    (``defaultBackupEligibility``, ``defaultBackupState``), which ChromeDriver understands but
    Selenium's class does not name."""

    def __init__(self, *, synced: bool) -> None:
        super().__init__(
            protocol=Protocol.CTAP2,
            transport=Transport.INTERNAL,
            has_resident_key=True,
            has_user_verification=True,
            is_user_verified=True,
        )
        self.synced = synced

    def to_dict(self) -> dict[str, str | bool]:
        return {
            **super().to_dict(),
            "defaultBackupEligibility": self.synced,
            "defaultBackupState": self.synced,
        }


# -- steps --------------------------------------------------------------------------------------

FATIMA = "fatima@example.org"


def mailed_code(outbox: Path) -> str:
    """The code in the newest first-factor confirmation mail to the citizen."""
    mails = about(outbox, FATIMA, "Confirm adding a second factor")
    assert mails, "no confirmation code reached the citizen"
    found = re.search(r"\b(\d{6})\b", body(mails[-1]))
    assert found, "the mail carries no code"
    return found.group(1)


def add_passkey_on_the_account_page(driver: WebDriver, site: Site) -> None:
    """Sign in with the password at /account, add a passkey labelled LABEL, keep the codes."""
    wait = WebDriverWait(driver, WAIT)
    driver.get(site.idp_url + "/account")
    wait.until(ec.url_contains(f"{site.idp_url}/signin"))
    wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys("citizen")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()

    label = wait.until(ec.presence_of_element_located((By.ID, "new-passkey-label")))
    label.clear()
    label.send_keys(LABEL)
    driver.find_element(By.ID, "add-passkey").click()

    # Her first second factor: a password alone binds nothing. A code goes to her verified address
    # first, and nothing is bound (no recovery codes) until she types it back.
    code = wait.until(ec.presence_of_element_located((By.ID, "code")))
    assert FATIMA in driver.find_element(By.ID, "first-factor-sent").text
    assert not driver.find_elements(By.ID, "recovery-codes")
    code.send_keys(mailed_code(site.outbox))
    driver.find_element(By.CSS_SELECTOR, "#first-factor-code button[type=submit]").click()
    label = wait.until(ec.presence_of_element_located((By.ID, "new-passkey-label")))
    assert driver.find_element(By.ID, "notice").text.startswith("Your email address is confirmed.")
    label.clear()
    label.send_keys(LABEL)
    driver.find_element(By.ID, "add-passkey").click()

    # webauthn.js shows the form, then creates the credential on the virtual authenticator.
    wait.until(ec.element_to_be_clickable((By.ID, "passkey-button"))).click()
    try:
        codes = wait.until(ec.visibility_of_element_located((By.ID, "recovery-codes")))
    except TimeoutException:
        pytest.fail(
            f"no recovery codes after adding the passkey at {driver.current_url}: {driver.page_source[:3000]}"
        )
    assert len(codes.find_elements(By.TAG_NAME, "code")) >= 8
    driver.find_element(By.ID, "continue").click()

    factors = wait.until(ec.visibility_of_element_located((By.ID, "factors"))).text
    assert LABEL in factors
    assert driver.find_element(By.ID, "notice").text == "The authenticator was added."


def sign_out(driver: WebDriver, site: Site) -> None:
    """The account page's sign-out button: the SSO session and its cookie end."""
    driver.find_element(By.CSS_SELECTOR, "form[action$='/signout'] button[type=submit]").click()
    WebDriverWait(driver, WAIT).until(ec.url_to_be(site.idp_url + "/"))
    assert driver.get_cookie(SSO_COOKIE) is None


def passwordless_sign_in_at_the_agency(
    driver: WebDriver, site: Site, *, press_button: bool
) -> tuple[str, list[str]]:
    """Start at the agency and sign in to Hawiya with the passkey alone (the button, or else the
    autofill request), consent; the acr and amr the agency got."""
    wait = WebDriverWait(driver, WAIT)
    driver.get(site.rp_url + "/start")
    try:
        if press_button:
            wait.until(ec.url_contains(f"{site.idp_url}/signin"))
            assert not driver.find_element(By.NAME, "username").get_attribute("value")
            button = wait.until(ec.element_to_be_clickable((By.ID, "passkey-button")))
            assert button.text == "Sign in with a passkey"
            button.click()
        wait.until(ec.element_to_be_clickable((By.ID, "approve"))).click()
        acr = wait.until(ec.visibility_of_element_located((By.ID, "acr"))).text
    except TimeoutException:
        pytest.fail(
            f"the passkey sign-in did not reach the agency at {driver.current_url}: "
            f"{driver.page_source[:3000]}"
        )
    assert driver.current_url.startswith(site.world.redirect_uri)
    return acr, driver.find_element(By.ID, "amr").text.split()


def console_problems(driver: WebDriver) -> list[str]:
    """Severe console entries and every CSP report (Chromium logs blocked content as errors)."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "/favicon.ico" not in entry["message"]
        and (entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"])
    ]


# -- the tests ----------------------------------------------------------------------------------


def test_device_bound_passkey_signs_in_passwordless_at_substantial(site: Site, browser: WebDriver) -> None:
    driver = browser
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": NO_CONDITIONAL_MEDIATION})
    driver.add_virtual_authenticator(AuthenticatorOptions(synced=False))

    add_passkey_on_the_account_page(driver, site)
    assert "Security key or passkey on one device" in driver.find_element(By.ID, "factors").text
    sign_out(driver, site)

    acr, amr = passwordless_sign_in_at_the_agency(driver, site, press_button=True)
    # The virtual authenticator says BE=0 and UV, as any software can: that alone is not high.
    assert acr == LOA_SUBSTANTIAL
    assert {"swk", "user", "pin", "mfa"} <= set(amr), amr
    assert "pwd" not in amr and "hwk" not in amr, amr

    # One discoverable credential for Hawiya's RP ID, bound to the citizen's account.
    credentials = driver.get_credentials()
    assert len(credentials) == 1, credentials
    credential = credentials[0]
    assert credential.is_resident_credential
    assert credential.rp_id == "localhost"
    assert credential.user_handle is not None  # Selenium gives it base64url-encoded
    assert base64.urlsafe_b64decode(credential.user_handle) == site.world.citizen_id.encode()
    assert credential.sign_count >= 1

    problems = console_problems(driver)
    assert not problems, problems


def test_synced_passkey_signs_in_through_autofill_at_substantial(site: Site, browser: WebDriver) -> None:
    driver = browser
    driver.add_virtual_authenticator(AuthenticatorOptions(synced=True))

    add_passkey_on_the_account_page(driver, site)
    assert "Passkey that syncs between your devices" in driver.find_element(By.ID, "factors").text
    sign_out(driver, site)

    # Conditional mediation: the autofill request the sign-in page makes answers by itself here.
    acr, amr = passwordless_sign_in_at_the_agency(driver, site, press_button=False)
    assert acr == LOA_SUBSTANTIAL
    assert {"swk", "user", "pin", "mfa"} <= set(amr), amr
    assert "pwd" not in amr and "hwk" not in amr, amr

    assert [c.is_resident_credential for c in driver.get_credentials()] == [True]
    problems = console_problems(driver)
    assert not problems, problems
