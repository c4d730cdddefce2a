"""Authorization request parameters beyond the basics (OIDC Core 3.1.2.1, 5.5; OAuth 2.0 Form Post
Response Mode; OAuth 2.0 Multiple Response Types 2.1).

``claims`` (what is released where, and with consent), ``id_token_hint``, ``max_age``, ``prompt``,
``response_mode``, a POSTed authorization request, and the parameters Hawiya accepts without
acting on them (``display``, ``claims_locales``, ``acr_values``, unknown ones).
"""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from idp.clock import FrozenClock
from idp.http.context import INTERACTION_COOKIE
from idp.registry import Registry
from tests.conftest import PASSWORD, World
from tests.support.flask_person import FlaskPerson, authorize_url, pkce_pair, query_of
from tests.support.person import hidden_fields

ISSUER = "http://localhost:8000"
PHONE = "+96550000001"
EMAIL = "fatima@example.org"
TENANT_REDIRECT = "http://127.0.0.1:9007/cb?tenant=moh"
_SCRIPTS = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)
_FORM = re.compile(r'<form method="post" action="([^"]*)" id="response">(.*?)</form>', re.S)


# -- an agency's side -------------------------------------------------------------------------------


class Agency:
    """The confidential client of ``world``: builds requests, redeems codes, reads tokens."""

    def __init__(self, app: Flask, registry: Registry, world: World) -> None:
        self.app = app
        self.registry = registry
        self.world = world
        self.verifiers: dict[str, str] = {}

    def request(self, state: str = "s-1", **overrides: str) -> dict[str, str]:
        """A valid code request (PKCE S256) with ``overrides`` applied; None-valued keys dropped."""
        verifier, challenge = pkce_pair()
        self.verifiers[state] = verifier
        params = {
            "response_type": "code",
            "client_id": self.world.confidential_id,
            "redirect_uri": self.world.redirect_uri,
            "scope": "openid",
            "state": state,
            "nonce": "n-" + state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return params

    def url(self, state: str = "s-1", **overrides: str) -> str:
        return authorize_url(**self.request(state, **overrides))

    def code_of(self, back: str, state: str = "s-1") -> str:
        """The code in a successful redirect back to the agency (with ``iss``, RFC 9207)."""
        assert back.split("?", 1)[0] == self.world.redirect_uri, back
        params = query_of(back)
        assert "error" not in params, params
        assert params["state"] == [state] and params["iss"] == [ISSUER]
        return params["code"][0]

    def redeem(self, code: str, state: str = "s-1") -> dict[str, Any]:
        response = self.app.test_client().post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.world.redirect_uri,
                "code_verifier": self.verifiers[state],
            },
            auth=(self.world.confidential_id, self.world.confidential_secret),
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.json is not None
        return response.json

    def tokens(self, back: str, state: str = "s-1") -> dict[str, Any]:
        return self.redeem(self.code_of(back, state), state)

    def id_token(self, tokens: dict[str, Any]) -> dict[str, Any]:
        """The ID token's claims, its signature checked against Hawiya's keys."""
        _header, claims = self.registry.verifier.verify(tokens["id_token"], typ="jwt")
        assert claims["aud"] == self.world.confidential_id
        return claims

    def userinfo(self, tokens: dict[str, Any]) -> dict[str, Any]:
        response = self.app.test_client().get(
            "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.json is not None
        return response.json


@pytest.fixture
def agency(app: Flask, registry: Registry, world: World) -> Agency:
    return Agency(app, registry, world)


def citizen(app: Flask) -> FlaskPerson:
    return FlaskPerson(app, "citizen", PASSWORD)


def visited(person: FlaskPerson, path: str) -> bool:
    """True when the person was shown the page at ``path`` (since ``pages`` was last cleared)."""
    return any(page.request.path == path for page in person.pages)


def consent_page(person: FlaskPerson) -> str:
    pages = [page for page in person.pages if page.request.path == "/consent"]
    assert pages, "no consent page was shown"
    return pages[-1].get_data(as_text=True)


def assert_error_redirect(response: TestResponse, redirect_uri: str, error: str) -> dict[str, list[str]]:
    """An error sent back to the verified redirect_uri, in the query, with state and iss."""
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    location = response.location
    assert location is not None and "#" not in location
    assert location.split("?", 1)[0] == redirect_uri
    params = query_of(location)
    assert params["error"] == [error], params
    assert params["iss"] == [ISSUER] and params["state"] == ["s-1"]
    assert "code" not in params
    return params


def signed_in(app: Flask, agency: Agency, scope: str = "openid") -> tuple[FlaskPerson, dict[str, Any]]:
    """The citizen after a first sign-in (and consent) at the agency, and the tokens it got."""
    person = citizen(app)
    tokens = agency.tokens(person.go(agency.url("first", scope=scope)), "first")
    return person, tokens


# -- claims (OIDC Core 5.5) --------------------------------------------------------------------------


def test_userinfo_claim_request_is_consented_and_released(app: Flask, agency: Agency) -> None:
    person = citizen(app)
    claims = json.dumps({"userinfo": {"phone_number": None}})
    tokens = agency.tokens(person.go(agency.url(scope="openid", claims=claims)))

    page = consent_page(person)
    assert "Your phone number" in page
    assert "Your email address" not in page
    info = agency.userinfo(tokens)
    assert info["phone_number"] == PHONE
    assert "email" not in info and "name" not in info  # only what was asked for
    id_claims = agency.id_token(tokens)
    assert "phone_number" not in id_claims  # asked for at userinfo, not in the ID token


def test_id_token_claim_request_puts_the_claim_in_the_id_token(app: Flask, agency: Agency) -> None:
    person = citizen(app)
    claims = json.dumps({"id_token": {"email": {"essential": True}}})
    tokens = agency.tokens(person.go(agency.url(scope="openid", claims=claims)))

    assert "Your email address" in consent_page(person)
    id_claims = agency.id_token(tokens)
    assert id_claims["email"] == EMAIL
    assert id_claims["nonce"] == "n-s-1"
    assert "email" not in agency.userinfo(tokens)  # asked for in the ID token only


def test_essential_claim_the_person_lacks_is_simply_absent(app: Flask, agency: Agency) -> None:
    # The citizen has no birthdate: OIDC Core 5.5.1 says an unavailable essential claim is no error.
    claims = json.dumps(
        {"userinfo": {"birthdate": {"essential": True}}, "id_token": {"birthdate": {"essential": True}}}
    )
    tokens = agency.tokens(citizen(app).go(agency.url(scope="openid", claims=claims)))
    assert "birthdate" not in agency.id_token(tokens)
    info = agency.userinfo(tokens)
    assert "birthdate" not in info and info["sub"]


def test_claims_are_not_released_when_consent_is_denied(app: Flask, agency: Agency) -> None:
    claims = json.dumps({"userinfo": {"phone_number": None}})
    back = citizen(app).go(agency.url(scope="openid", claims=claims), consent="deny")
    assert query_of(back)["error"] == ["access_denied"]


@pytest.mark.parametrize(
    "claims",
    ["{not json", '["userinfo"]', '{"userinfo": "phone_number"}', '{"id_token": {"email": true}}', "42"],
    ids=["not_json", "array", "member_not_object", "claim_not_object", "number"],
)
def test_malformed_claims_parameter_is_invalid_request(app: Flask, agency: Agency, claims: str) -> None:
    response = citizen(app).get(agency.url(claims=claims))
    assert_error_redirect(response, agency.world.redirect_uri, "invalid_request")


# -- id_token_hint (OIDC Core 3.1.2.1) -----------------------------------------------------------------


def test_id_token_hint_with_prompt_none_is_a_silent_sign_in(app: Flask, agency: Agency) -> None:
    person, tokens = signed_in(app, agency)
    first = agency.id_token(tokens)
    person.pages.clear()

    back = person.go(agency.url(prompt="none", id_token_hint=tokens["id_token"]))
    assert person.pages == []  # no page shown: silent
    again = agency.id_token(agency.tokens(back))
    assert again["sub"] == first["sub"]
    assert again["auth_time"] == first["auth_time"]


def test_hint_for_another_person_with_prompt_none_is_login_required(
    app: Flask, agency: Agency, world: World
) -> None:
    # Someone else signs in at the agency on another browser; the agency keeps their ID token.
    resident = FlaskPerson(app, "resident", PASSWORD)
    their_tokens = agency.tokens(resident.go(agency.url("theirs")), "theirs")
    person, _tokens = signed_in(app, agency)

    response = person.get(agency.url(prompt="none", id_token_hint=their_tokens["id_token"]))
    assert_error_redirect(response, world.redirect_uri, "login_required")

    # Without prompt=none the person is asked to sign in (as the hinted person, presumably).
    person.pages.clear()
    person.go(agency.url(id_token_hint=their_tokens["id_token"]))
    assert visited(person, "/signin")


def test_hint_for_another_person_is_login_required_even_after_a_fresh_sign_in(
    app: Flask, agency: Agency, world: World
) -> None:
    """OIDC Core 3.1.2.1: the hint names the person the agency expects. Someone else signing in on
    the way (here at a browser where nobody was signed in) does not become that person: the agency
    gets login_required, never a code for them."""
    _person, tokens = signed_in(app, agency)  # the citizen, whose ID token the agency keeps
    resident = FlaskPerson(app, "resident", PASSWORD)
    back = resident.go(agency.url(id_token_hint=tokens["id_token"]))
    assert visited(resident, "/signin")
    assert back.split("?", 1)[0] == world.redirect_uri
    params = query_of(back)
    assert params["error"] == ["login_required"] and "code" not in params, params
    assert params["state"] == ["s-1"] and params["iss"] == [ISSUER]


def test_hint_issued_to_another_client_is_invalid_request(app: Flask, agency: Agency, world: World) -> None:
    person = citizen(app)
    verifier, challenge = pkce_pair()
    back = person.go(
        authorize_url(
            response_type="code",
            client_id=world.public_id,
            redirect_uri=world.public_redirect_uri,
            scope="openid",
            state="pub",
            code_challenge=challenge,
            code_challenge_method="S256",
        )
    )
    public_tokens = app.test_client().post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(back)["code"][0],
            "redirect_uri": world.public_redirect_uri,
            "code_verifier": verifier,
            "client_id": world.public_id,
        },
    )
    assert public_tokens.status_code == 200 and public_tokens.json is not None
    hint = public_tokens.json["id_token"]

    response = person.get(agency.url(prompt="none", id_token_hint=hint))
    assert_error_redirect(response, world.redirect_uri, "invalid_request")


def test_expired_hint_is_still_a_hint(
    app: Flask, agency: Agency, registry: Registry, clock: FrozenClock
) -> None:
    person, tokens = signed_in(app, agency)
    clock.advance(registry.settings.id_token_ttl + 60)
    assert clock.now() > agency.id_token(tokens)["exp"]

    back = person.go(agency.url(prompt="none", id_token_hint=tokens["id_token"]))
    assert agency.id_token(agency.tokens(back))["sub"] == agency.id_token(tokens)["sub"]


@pytest.mark.parametrize("kind", ["garbage", "tampered", "access_token"])
def test_bad_hint_is_invalid_request(app: Flask, agency: Agency, world: World, kind: str) -> None:
    person, tokens = signed_in(app, agency)
    header, payload, signature = tokens["id_token"].split(".")
    hint = {
        "garbage": "not-an-id-token",
        "tampered": f"{header}.{payload[:-4]}AAAA.{signature}",
        "access_token": tokens["access_token"],  # signed by Hawiya, but not an ID token
    }[kind]
    response = person.get(agency.url(prompt="none", id_token_hint=hint))
    assert_error_redirect(response, world.redirect_uri, "invalid_request")


# -- max_age and prompt ----------------------------------------------------------------------------------


def test_max_age_exceeded_asks_to_sign_in_again(app: Flask, agency: Agency, clock: FrozenClock) -> None:
    person, tokens = signed_in(app, agency)
    first_auth = agency.id_token(tokens)["auth_time"]

    clock.advance(30)
    person.pages.clear()
    within = agency.id_token(agency.tokens(person.go(agency.url(max_age="60"))))
    assert not visited(person, "/signin")
    assert within["auth_time"] == first_auth

    clock.advance(60)
    assert_error_redirect(
        person.get(agency.url(max_age="60", prompt="none")), agency.world.redirect_uri, "login_required"
    )
    person.pages.clear()
    again = agency.id_token(agency.tokens(person.go(agency.url(max_age="60"))))
    assert visited(person, "/signin")
    assert again["auth_time"] > first_auth
    assert again["auth_time"] == int(clock.now())


def test_prompt_login_forces_sign_in_with_a_session(app: Flask, agency: Agency, clock: FrozenClock) -> None:
    person, tokens = signed_in(app, agency)
    first_auth = agency.id_token(tokens)["auth_time"]
    clock.advance(10)
    person.pages.clear()
    again = agency.id_token(agency.tokens(person.go(agency.url(prompt="login"))))
    assert visited(person, "/signin")
    assert again["auth_time"] > first_auth


def test_prompt_consent_shows_the_consent_page_again(app: Flask, agency: Agency) -> None:
    person, _tokens = signed_in(app, agency, scope="openid email")
    person.pages.clear()
    agency.tokens(person.go(agency.url(scope="openid email")))
    assert person.pages == []  # remembered consent, live session: nothing to show

    back = person.go(agency.url(scope="openid email", prompt="consent"))
    assert "Your email address" in consent_page(person)
    assert not visited(person, "/signin")
    agency.tokens(back)


# -- response_mode --------------------------------------------------------------------------------------


def test_fragment_response_mode_is_invalid_request_in_the_query(app: Flask, agency: Agency) -> None:
    response = citizen(app).get(agency.url(response_mode="fragment"))
    assert_error_redirect(response, agency.world.redirect_uri, "invalid_request")


def _form_post(response: TestResponse) -> tuple[str, list[tuple[str, str]]]:
    """The action and the hidden fields of a form_post page; checks what the page may load."""
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "text/html"
    assert "Location" not in response.headers
    html = response.get_data(as_text=True)
    found = _FORM.search(html)
    assert found is not None, html
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', found.group(2))
    # Scripts: external, from Hawiya's own origin, nothing inline (the CSP would block it).
    scripts = _SCRIPTS.findall(html)
    assert scripts
    for attributes, body in scripts:
        assert not body.strip(), "inline script"
        src = re.search(r'src="([^"]+)"', attributes)
        assert src is not None and src.group(1).startswith("/") and not src.group(1).startswith("//")
    assert re.search(r"\son\w+\s*=", html) is None, "inline event handler"
    csp = response.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["script-src"] == ["'self'"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["Cache-Control"] == "no-store"
    return unescape(found.group(1)), [(name, unescape(value)) for name, value in fields]


def test_form_post_page_posts_the_response_to_the_redirect_uri(app: Flask, agency: Agency) -> None:
    person, _tokens = signed_in(app, agency)
    page = person.follow(person.get(agency.url(response_mode="form_post")))
    assert not isinstance(page, str), f"redirected to {page} instead of a form_post page"
    action, fields = _form_post(page)
    assert action == agency.world.redirect_uri
    assert sorted(name for name, _value in fields) == ["code", "iss", "state"]
    values = dict(fields)
    assert values["state"] == "s-1" and values["iss"] == ISSUER
    agency.redeem(values["code"])

    src = re.search(r'<script src="([^"]+)"', page.get_data(as_text=True))
    assert src is not None
    with app.test_client().get(src[1]) as script:
        assert script.status_code == 200 and "submit()" in script.get_data(as_text=True)


def test_form_post_keeps_the_registered_query_in_the_action_only(
    app: Flask, registry: Registry, world: World
) -> None:
    client = registry.clients.create(name="Tenant Agency", redirect_uris=[TENANT_REDIRECT]).client
    _verifier, challenge = pkce_pair()
    person = citizen(app)
    url = authorize_url(
        response_type="code",
        client_id=client.client_id,
        redirect_uri=TENANT_REDIRECT,
        scope="openid email",
        state="s-1",
        response_mode="form_post",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    signin = person.open_page(url, "/signin")
    consent = person.follow(person.sign_in(signin), stop_at="/consent")
    assert not isinstance(consent, str)
    action, fields = _form_post(person.decide(consent, "approve"))
    assert action == TENANT_REDIRECT
    assert urlsplit(action).query == "tenant=moh"
    assert sorted(name for name, _value in fields) == ["code", "iss", "state"]


def test_form_post_carries_errors_too(app: Flask, agency: Agency) -> None:
    action, fields = _form_post(citizen(app).get(agency.url(response_mode="form_post", prompt="none")))
    assert action == agency.world.redirect_uri
    values = dict(fields)
    assert values["error"] == "login_required"
    assert values["iss"] == ISSUER and values["state"] == "s-1"
    assert "code" not in values


# -- a POSTed authorization request (OIDC Core 3.1.2.1) ---------------------------------------------------


def test_post_with_a_known_client_is_parked_and_resumed(app: Flask, agency: Agency) -> None:
    person = citizen(app)
    response = person.post("/authorize", agency.request())
    assert response.status_code == 303
    assert response.location is not None
    target = urlsplit(response.location)
    assert target.path == "/authorize/resume"
    ix = query_of(response.location)["ix"][0]
    cookies = response.headers.getlist("Set-Cookie")
    assert any(c.startswith(f"{INTERACTION_COOKIE}={ix}") for c in cookies), cookies
    assert "code" not in response.location

    # The browser follows with a GET (which carries the SameSite=Lax SSO cookie) and signs in.
    back = person.go(response.location)
    agency.tokens(back)


def test_post_with_a_session_finds_it_after_the_resume(app: Flask, agency: Agency) -> None:
    person, first = signed_in(app, agency)
    response = person.post("/authorize", agency.request(prompt="none"))
    assert response.status_code == 303
    person.pages.clear()
    again = agency.tokens(person.go(response.location))
    assert person.pages == []
    assert agency.id_token(again)["sub"] == agency.id_token(first)["sub"]


def test_post_with_an_unknown_client_is_not_parked(app: Flask, agency: Agency) -> None:
    response = citizen(app).post("/authorize", agency.request(client_id="no-such-client"))
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_resume_needs_the_interaction_cookie(app: Flask, agency: Agency) -> None:
    response = citizen(app).post("/authorize", agency.request())
    # Another browser (no interaction cookie) cannot pick up the parked request.
    stranger = FlaskPerson(app).get(response.location)
    assert stranger.status_code == 400
    assert stranger.mimetype == "text/html" and "Location" not in stranger.headers


# -- parameters accepted without changing the flow ----------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"display": "popup"},
        {"display": "touch"},
        {"claims_locales": "ar en"},
        {"ui_locales": "ar"},
        {"acr_values": "urn:hawiya:loa:low"},
        {"login_hint": "citizen"},
        {"unknown_parameter": "whatever", "x-vendor": "1"},
    ],
    ids=lambda extra: "+".join(extra),
)
def test_optional_parameters_still_succeed(app: Flask, agency: Agency, extra: dict[str, str]) -> None:
    tokens = agency.tokens(citizen(app).go(agency.url(**extra)))
    id_claims = agency.id_token(tokens)
    assert id_claims["acr"] == "urn:hawiya:loa:low"
    assert id_claims["nonce"] == "n-s-1"


def test_login_hint_prefills_the_username(app: Flask, agency: Agency) -> None:
    person = citizen(app)
    page = person.open_page(agency.url(login_hint="citizen"), "/signin")
    html = page.get_data(as_text=True)
    assert re.search(r'<input id="username" name="username" type="text" value="citizen"', html), html
    assert "ix" in hidden_fields(html)


def test_login_hint_is_escaped_on_the_page(app: Flask, agency: Agency) -> None:
    page = citizen(app).open_page(agency.url(login_hint='"><script>alert(1)</script>'), "/signin")
    html = page.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&#34;&gt;&lt;script&gt;" in html or "&quot;&gt;&lt;script&gt;" in html
