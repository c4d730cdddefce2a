"""A person with a second factor, played through Hawiya's real pages.

``MfaPerson`` walks sign-in like ``FlaskPerson`` and also answers the second-factor page (with a
real TOTP code computed by pyotp at the test's frozen clock, or a recovery code), sets up an
authenticator app on the enrolment page by reading the key the page shows, and continues past the
recovery-code pages. Every page it passes is kept in ``pages``. Given a security key (a
``SoftAuthenticator``), it answers the second-factor page with the key when it has no authenticator
app, or when the page asks for the key alone (a step-up a code cannot help).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import unescape
from typing import TYPE_CHECKING, Any, cast

import pyotp
from flask import Flask
from werkzeug.test import TestResponse

from idp.clock import FrozenClock
from idp.registry import Registry
from tests.support.authenticator import SoftAuthenticator
from tests.support.flask_person import (
    FlaskPerson,
    authorize_url,
    pkce_pair,
    query_of,
)
from tests.support.outbox import about, body
from tests.support.person import hidden_fields

if TYPE_CHECKING:
    from tests.conftest import World

_SECRET = re.compile(r'<code id="secret">([A-Z2-7 ]+)</code>')
_CODES = re.compile(r'<ol class="codes" dir="ltr" id="recovery-codes">(.*?)</ol>', re.S)
_CODE = re.compile(r"<code>([a-z0-9-]+)</code>")
_CONTINUE = re.compile(r'<a class="button primary" href="([^"]*)" id="continue">')
_QR = re.compile(r'<img src="(data:image/svg\+xml[^"]+)"')
_ADDRESS_FORM = re.compile(
    r'<form method="post" action="([^"]*)" id="first-factor-code"[^>]*>(.*?)</form>', re.S
)
_PASSKEY_OPTIONS = re.compile(r'<script type="application/json" id="passkey-options">(.*?)</script>', re.S)
_PASSKEY_FORM = re.compile(
    r'<form method="post" action="([^"]*)"[^>]*\bid="passkey-form"[^>]*>(.*?)</form>', re.S
)


def totp_code(secret: str, clock: FrozenClock, steps: int = 0) -> str:
    """The code an authenticator app shows ``steps`` time steps from the clock's now."""
    return pyotp.TOTP(secret).at(int(clock.now()) + 30 * steps)


def secret_on(html: str) -> str:
    """The TOTP key an enrolment page shows in text (without its spaces)."""
    found = _SECRET.search(html)
    assert found, "the page shows no TOTP key"
    return found.group(1).replace(" ", "")


def qr_on(html: str) -> str:
    """The QR code's data: URI on an enrolment page."""
    found = _QR.search(html)
    assert found, "the page shows no QR code"
    return unescape(found.group(1))


def recovery_codes_on(html: str) -> list[str]:
    """The recovery codes a page shows."""
    block = _CODES.search(html)
    assert block, "the page shows no recovery codes"
    return _CODE.findall(block.group(1))


def continue_link(html: str) -> str:
    """Where the page's Continue button goes."""
    found = _CONTINUE.search(html)
    assert found, "the page has no Continue button"
    return unescape(found.group(1))


def passkey_options_on(html: str) -> dict[str, Any]:
    """The WebAuthn options (creation or request) a page hands its passkey form."""
    found = _PASSKEY_OPTIONS.search(html)
    assert found, "the page starts no passkey ceremony"
    options: dict[str, Any] = json.loads(found.group(1))
    return options


def _passkey_form(html: str) -> re.Match[str]:
    found = _PASSKEY_FORM.search(html)
    assert found, "the page has no passkey form"
    return found


def passkey_fields_on(html: str) -> dict[str, str]:
    """The hidden fields of the page's passkey form (CSRF token, ceremony, ``ix`` ...)."""
    return hidden_fields(_passkey_form(html).group(2))


def passkey_action_on(html: str) -> str:
    """Where the page's passkey form posts."""
    return unescape(_passkey_form(html).group(1))


class MfaPerson(FlaskPerson):
    """A person who answers second-factor pages too."""

    def __init__(
        self,
        app: Flask,
        username: str,
        password: str,
        *,
        clock: FrozenClock,
        secret: str | None = None,
        key: SoftAuthenticator | None = None,
    ) -> None:
        super().__init__(app, username, password)
        self.clock = clock
        #: The person's authenticator app (its key), once they have one.
        self.secret = secret
        #: The person's security key or passkey provider, when they have one.
        self.key = key
        #: What to type on the code page; by default the app's current code.
        self.answer: Callable[[], str] = lambda: totp_code(self._secret(), self.clock)
        #: Recovery codes the person was shown (and kept).
        self.recovery_codes: list[str] = []
        #: How many times the code page was answered.
        self.codes_typed = 0

    def _secret(self) -> str:
        assert self.secret, "this person has no authenticator app"
        return self.secret

    def type_code(self, page: TestResponse, code: str) -> TestResponse:
        """Submit ``code`` on the code page ``page``."""
        fields = hidden_fields(page.get_data(as_text=True))
        for name in ("ceremony", "credential"):  # the passkey form's, when the page has one too
            fields.pop(name, None)
        fields["code"] = code
        self.codes_typed += 1
        return self.post("/signin/factor", fields)

    def use_key(self, page: TestResponse, **overrides: Any) -> TestResponse:
        """Answer the passkey ceremony of ``page`` with the person's key (``overrides`` go to
        ``SoftAuthenticator.authenticate``) and post it with the form's hidden fields."""
        assert self.key is not None, "this person has no security key"
        html = page.get_data(as_text=True)
        fields = passkey_fields_on(html)
        fields["credential"] = json.dumps(self.key.authenticate(passkey_options_on(html), **overrides))
        return self.post(passkey_action_on(html), fields)

    def answer_factor(self, page: TestResponse) -> TestResponse:
        """Answer the second-factor page: with the key when the person has no app or the page asks
        for no code, else with a code."""
        html = page.get_data(as_text=True)
        has_key = self.key is not None and 'id="passkey-form"' in html
        if has_key and (self.secret is None or 'name="code"' not in html):
            return self.use_key(page)
        return self.type_code(page, self.answer())

    def set_up_app(self, page: TestResponse, *, label: str = "", steps: int = 0) -> TestResponse:
        """Scan (read) the key on an enrolment page and confirm it with the app's code."""
        html = page.get_data(as_text=True)
        self.secret = secret_on(html)
        fields = hidden_fields(html)
        fields.update(code=totp_code(self.secret, self.clock, steps), label=label)
        action = re.search(r'<form method="post" action="([^"]*)" novalidate>', html)
        assert action
        return self.post(unescape(action.group(1)), fields)

    def confirm_address(self, page: TestResponse) -> TestResponse:
        """Type the code mailed to the address of record on the page that asks for it before a
        first factor is set up at sign-in."""
        html = page.get_data(as_text=True)
        form = _ADDRESS_FORM.search(html)
        assert form, "the page asks for no mailed code"
        fields = hidden_fields(form.group(2))
        fields["code"] = mailed_code(self)
        return self.post(unescape(form.group(1)), fields)

    def sign_in_step(self, reached: TestResponse, html: str) -> TestResponse | None:
        """Answer a sign-in page: the password page, the second-factor page, the mailed code and
        the enrolment page before a first factor, the recovery-code notice; None for another."""
        path, method = reached.request.path, reached.request.method
        if path == "/signin" and method == "GET" and 'name="password"' in html:
            return self.sign_in(reached)
        if path == "/signin/factor" and method == "GET":
            return self.answer_factor(reached)
        if path == "/signin/enrol" and 'id="first-factor-code"' in html:
            return self.confirm_address(reached)
        if path == "/signin/enrol" and method == "GET":
            return self.set_up_app(reached)
        if reached.status_code == 200 and 'id="continue"' in html:
            if 'id="recovery-codes"' in html:
                self.recovery_codes = recovery_codes_on(html)
            return self.get(continue_link(html))
        return None

    def _next_step(self, reached: TestResponse, html: str, consent: str) -> TestResponse | None:
        step = self.sign_in_step(reached, html)
        return step if step is not None else super()._next_step(reached, html, consent)


class Rp:
    """An agency's side of a sign-in: builds requests, reads responses, redeems codes, and checks
    the ID token's signature against Hawiya's keys."""

    def __init__(
        self, app: Flask, registry: Registry, client_id: str, secret: str, redirect_uri: str
    ) -> None:
        self.app = app
        self.registry = registry
        self.client_id = client_id
        self.secret = secret
        self.redirect_uri = redirect_uri
        self._verifiers: dict[str, str] = {}

    @classmethod
    def of_world(cls, app: Flask, world: World) -> Rp:
        """The confidential client of the test world."""
        return cls(app, world.registry, world.confidential_id, world.confidential_secret, world.redirect_uri)

    def url(self, state: str = "s-1", **extra: str) -> str:
        """An authorization request (code flow, PKCE) with ``extra`` parameters."""
        verifier, challenge = pkce_pair()
        self._verifiers[state] = verifier
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid",
            "state": state,
            "nonce": "n-" + state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update(extra)
        return authorize_url(**params)

    def back(self, location: str, state: str = "s-1") -> dict[str, str]:
        """The parameters of a redirect back to this agency (with ``state`` and ``iss`` checked)."""
        assert location.split("?", 1)[0] == self.redirect_uri, location
        params = {key: values[0] for key, values in query_of(location).items()}
        assert params.get("state") == state and params.get("iss") == self.registry.settings.issuer, params
        return params

    def tokens(self, location: str, state: str = "s-1") -> dict[str, Any]:
        """Redeem the code in ``location``: the token response."""
        params = self.back(location, state)
        assert "code" in params, params
        response = self.app.test_client().post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": params["code"],
                "redirect_uri": self.redirect_uri,
                "code_verifier": self._verifiers[state],
            },
            auth=(self.client_id, self.secret),
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.json is not None
        tokens: dict[str, Any] = response.json
        return tokens

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        """Spend ``refresh_token``: the token response."""
        response = self.app.test_client().post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=(self.client_id, self.secret),
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.json is not None
        tokens: dict[str, Any] = response.json
        return tokens

    def claims(self, id_token: str) -> dict[str, Any]:
        """The claims of an ID token, its signature checked against Hawiya's keys."""
        _header, claims = self.registry.verifier.verify(id_token, typ="jwt")
        assert claims["aud"] == self.client_id
        return claims

    def id_token(self, location: str, state: str = "s-1") -> dict[str, Any]:
        """Redeem the code in ``location`` and return the verified ID token's claims."""
        claims = self.claims(self.tokens(location, state)["id_token"])
        assert claims["nonce"] == "n-" + state
        return claims


def open_account(person: MfaPerson) -> TestResponse:
    """Go to /account, signing in (and answering the second factor) on the way when needed."""
    response = person.get("/account")
    for _ in range(10):
        reached = person.follow(response)
        assert not isinstance(reached, str), reached
        person.pages.append(reached)
        path = reached.request.path
        if path == "/account" and reached.status_code == 200:
            return reached
        html = reached.get_data(as_text=True)
        step = person.sign_in_step(reached, html)
        if step is None:
            raise AssertionError(f"unexpected page {reached.status_code} at {path}: {html[:400]}")
        response = step
    raise AssertionError("too many pages")


def submit(person: MfaPerson, page: TestResponse, action: str, **fields: str) -> TestResponse:
    """Submit the form of ``page`` whose action is ``action`` (with its CSRF token)."""
    html = page.get_data(as_text=True)
    assert f'action="{action}"' in html, f"no form to {action} on the page"
    token = hidden_fields(html)["csrf_token"]
    return person.post(action, {"csrf_token": token, **fields})


def verify_address(registry: Registry, username: str, email: str) -> None:
    """Give ``username``'s account a verified email address (as a service centre would)."""
    from sqlalchemy import update

    from idp.storage.models import Account

    with registry.db.transaction() as session:
        session.execute(
            update(Account).where(Account.username == username).values(email=email, email_verified=True)
        )


def mailed_code(person: MfaPerson) -> str:
    """The newest first-factor confirmation code mailed to the person's address (the outbox also
    holds security notices, which carry no code)."""
    registry = cast(Registry, person.browser.application.extensions["hawiya"])
    found = registry.accounts.by_username(person.username)
    assert found is not None and found.email, "the person has no address"
    mail = about(registry.settings.outbox_path, found.email, "Confirm adding a second factor")
    assert mail, "no code reached the person"
    code = re.search(r"\b(\d{6})\b", body(mail[-1]))
    assert code, "the mail carries no code"
    return code.group(1)


def secured_submit(person: MfaPerson, action: str, **fields: str) -> TestResponse:
    """Submit the account page's form to ``action``, a change to how the account is secured,
    proving on the way what it asks: the password again, the person's factor (with their app or
    key), and for the account's first factor the mailed code (read, typed, submitted again)."""
    start = submit(person, open_account(person), action, **fields)
    if start.status_code == 303 and start.location.startswith("/account/reauth"):
        reauth = person.get(start.location)
        start = submit(person, reauth, start.location, password=person.password)
    if start.status_code == 303 and start.location.startswith("/signin/factor"):
        person.clock.advance(30)  # a new app code: the one that bound the app cannot be used again
        back = person.answer_factor(person.get(start.location))
        assert back.status_code == 302 and back.location == "/account", back.get_data(as_text=True)[:400]
        start = submit(person, person.get("/account"), action, **fields)
    if 'id="first-factor-code"' in start.get_data(as_text=True):
        confirmed = submit(person, start, "/account/first-factor", code=mailed_code(person))
        assert confirmed.status_code == 303, confirmed.get_data(as_text=True)[:400]
        start = submit(person, person.get("/account"), action, **fields)
    return start


def add_app_in_account(person: MfaPerson, *, label: str = "Phone") -> TestResponse:
    """Add an authenticator app on the account page; the page after confirming it."""
    start = secured_submit(person, "/account/totp", label=label)
    assert start.status_code == 200, start.get_data(as_text=True)[:400]
    done = person.set_up_app(start, label=label)
    html = done.get_data(as_text=True)
    if 'id="recovery-codes"' in html:
        person.recovery_codes = recovery_codes_on(html)
    return done


def add_passkey_in_account(
    person: MfaPerson, key: SoftAuthenticator, *, label: str = "Blue key"
) -> TestResponse:
    """Add ``key``'s new credential on the account page; the page after keeping it (recovery codes
    for a first factor, else the redirect back to the account)."""
    return _register_in_account(person, key, "/account/passkeys/new", label)


def add_security_key_in_account(
    person: MfaPerson, key: SoftAuthenticator, *, label: str = "Agency key"
) -> TestResponse:
    """Add ``key``'s new credential as a security key for high-assurance services (the account
    page's second registration, with attestation); the page after (recovery codes for a first
    factor, the redirect back to the account, or the page refusing the key)."""
    return _register_in_account(person, key, "/account/security-keys/new", label)


def _register_in_account(
    person: MfaPerson, key: SoftAuthenticator, start_at: str, label: str
) -> TestResponse:
    """Start a registration at ``start_at`` (through any re-authentication the change needs), let
    ``key`` answer the ceremony, post it; the page after. Recovery codes shown are kept."""
    if person.key is None:
        person.key = key  # she holds it from now on (and gives it when asked)
    start = secured_submit(person, start_at, label=label)
    assert start.status_code == 200, start.get_data(as_text=True)[:400]
    html = start.get_data(as_text=True)
    fields = passkey_fields_on(html)
    fields.update(credential=json.dumps(key.register(passkey_options_on(html))), label=label)
    done = person.post(passkey_action_on(html), fields)
    page = done.get_data(as_text=True)
    if 'id="recovery-codes"' in page:
        person.recovery_codes = recovery_codes_on(page)
    return done
