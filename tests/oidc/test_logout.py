"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at /logout, and the tokens of the
session dying with it (issue 8): what an agency and the person at the browser see.

The RP-Initiated Logout certification modules are mirrored where they apply: ``rp-initiated-logout``
(a hint, a registered URI, state echoed), ``bad-post-logout-redirect-uri``,
``query-added-to-post-logout-redirect-uri``, ``modified-id-token-hint`` (alg none: never a
redirect), ``bad-id-token-hint``, ``no-id-token-hint`` (the person confirms, then goes back),
``no-params``, ``no-post-logout-redirect-uri``, ``no-state``, ``only-state`` and the discovery
check.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from hawiya_rp import ClientConfig, OpenIDClient
from hawiya_rp.http import Response
from werkzeug.test import TestResponse

from idp.clock import FrozenClock
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, PASSWORD, World
from tests.support.agency import Agency, jwt_claims, sso_handle, userinfo_status
from tests.support.audit import audit_events
from tests.support.flask_person import (
    FlaskPerson,
    is_same_origin,
    page_links,
    query_of,
)
from tests.support.person import hidden_fields

ISSUER = "http://localhost:8000"
SCOPE = "openid profile"
OFFLINE = "openid profile offline_access"


def register(registry: Registry, app: Flask, port: int, *, logout_uris: tuple[str, ...] = ()) -> Agency:
    """A confidential client with refresh tokens, offline_access and post-logout redirect URIs."""
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    new = registry.clients.create(
        name=f"Agency {port}",
        redirect_uris=[redirect_uri],
        grant_types=("authorization_code", "refresh_token"),
        scope="openid profile email offline_access",
        post_logout_redirect_uris=logout_uris or (f"http://127.0.0.1:{port}/signed-out",),
    )
    return Agency(app, new.client.client_id, new.client_secret, redirect_uri)


@pytest.fixture
def agency(app: Flask, registry: Registry) -> Agency:
    return register(
        registry, app, 9401, logout_uris=("http://127.0.0.1:9401/signed-out", "https://a.example/bye?x=1")
    )


@pytest.fixture
def person(app: Flask, world: World) -> FlaskPerson:
    return FlaskPerson(app, "citizen", PASSWORD)


BYE = "http://127.0.0.1:9401/signed-out"


def logout(person: FlaskPerson, **params: str) -> TestResponse:
    return person.get("/logout?" + urlencode(params))


def session_live(registry: Registry, handle: str) -> bool:
    return registry.sessions.find(handle) is not None


def prompt_none(person: FlaskPerson, agency: Agency) -> dict[str, list[str]]:
    """A silent authorization request (prompt=none); the parameters the agency gets back."""
    url, _verifier = agency.request_url(SCOPE, state="quiet", prompt="none")
    back = person.follow(person.get(url))
    assert isinstance(back, str) and back.startswith(agency.redirect_uri + "?"), back
    return query_of(back)


def confirmation_fields(page: TestResponse) -> dict[str, str]:
    """The confirmation page's form: it is Hawiya's "Sign out of Hawiya?" page."""
    html = page.get_data(as_text=True)
    assert page.status_code in (200, 400), html[:300]
    asks = "Sign out of Hawiya?" in html or "تسجيل الخروج من هوية؟" in html  # English or Arabic
    assert asks and 'id="signout"' in html and 'id="stay"' in html
    assert page.location is None
    return hidden_fields(html)


def answer(person: FlaskPerson, page: TestResponse, decision: str) -> TestResponse:
    return person.post("/logout/confirm", {**confirmation_fields(page), "decision": decision})


def signed_out_page(response: TestResponse) -> str:
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.location is None, (
        response.status_code,
        response.location,
    )
    assert "You are signed out" in html
    return html


def tampered(token: str) -> str:
    """The same ID token with one character of its signature changed."""
    head, body, signature = token.split(".")
    flipped = ("A" if signature[5] != "A" else "B").join((signature[:5], signature[6:]))
    return f"{head}.{body}.{flipped}"


def unsigned(token: str) -> str:
    """The same claims under ``alg: none`` (the suite's modified-id-token-hint)."""
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).decode().rstrip("=")
    return f"{header}.{token.split('.')[1]}."


# -- signing out at once ---------------------------------------------------------------------------


def test_a_hint_of_this_session_signs_out_at_once_and_returns_with_state(
    registry: Registry, agency: Agency, person: FlaskPerson
) -> None:
    tokens = agency.sign_in(person, SCOPE)
    handle = sso_handle(person)

    back = logout(person, id_token_hint=tokens["id_token"], post_logout_redirect_uri=BYE, state="st-1")

    assert back.status_code == 303
    assert back.location == BYE + "?state=st-1"
    assert not session_live(registry, handle)
    assert person.browser.get_cookie("hawiya_sso", domain="localhost") is None
    # OIDC Core 3.1.2.6: no session any more, so a silent request needs a sign-in.
    assert prompt_none(person, agency)["error"] == ["login_required"]
    [event] = audit_events(registry, "logout.requested")
    assert event["client_id"] == agency.client_id
    assert event["detail"]["outcome"] == "signed_out"
    assert event["detail"]["hint"] == "valid" and event["detail"]["redirect"] == "registered"
    ended = audit_events(registry, "session.ended")
    assert ended and ended[0]["detail"]["sid"] == jwt_claims(tokens["id_token"])["sid"]


def test_the_registered_uri_keeps_its_query_and_nothing_may_be_added_to_it(
    registry: Registry, agency: Agency, person: FlaskPerson
) -> None:
    hint = agency.sign_in(person, SCOPE)["id_token"]
    back = logout(person, id_token_hint=hint, post_logout_redirect_uri="https://a.example/bye?x=1", state="s")
    assert back.status_code == 303
    assert urlsplit(back.location or "").netloc == "a.example"
    assert parse_qs(urlsplit(back.location or "").query) == {"x": ["1"], "state": ["s"]}

    # query-added-to-post-logout-redirect-uri: not the registered string, so no redirect.
    hint = agency.sign_in(person, SCOPE)["id_token"]
    refused = logout(person, id_token_hint=hint, post_logout_redirect_uri="https://a.example/bye?x=1&y=2")
    assert 'id="no-return"' in signed_out_page(refused)


def test_an_unregistered_post_logout_redirect_uri_signs_out_without_redirecting(
    registry: Registry, agency: Agency, person: FlaskPerson
) -> None:
    hint = agency.sign_in(person, SCOPE)["id_token"]
    handle = sso_handle(person)
    for uri in ("https://evil.example/signed-out", BYE + "/", BYE.upper(), "//evil.example"):
        response = logout(person, id_token_hint=hint, post_logout_redirect_uri=uri, state="s")
        links = page_links(signed_out_page(response))
        assert links and all(is_same_origin(link) for link in links), links
    assert not session_live(registry, handle)
    details = [event["detail"] for event in audit_events(registry, "logout.requested")]
    assert details[-1]["outcome"] == "signed_out" and details[-1]["redirect"] == "refused"


def test_no_state_and_no_redirect_uri(registry: Registry, agency: Agency, person: FlaskPerson) -> None:
    # no-state: the registered URI exactly, with no state added.
    hint = agency.sign_in(person, SCOPE)["id_token"]
    assert logout(person, id_token_hint=hint, post_logout_redirect_uri=BYE).location == BYE
    # no-post-logout-redirect-uri and only-state: signed out, Hawiya's page.
    hint = agency.sign_in(person, SCOPE)["id_token"]
    handle = sso_handle(person)
    signed_out_page(logout(person, id_token_hint=hint, state="only"))
    assert not session_live(registry, handle)


def test_an_expired_hint_of_this_session_still_signs_out(
    registry: Registry, clock: FrozenClock, agency: Agency, person: FlaskPerson
) -> None:
    """Section 2: the OP SHOULD accept an ID token whose exp has passed for a current session."""
    hint = agency.sign_in(person, SCOPE)["id_token"]
    clock.advance(registry.settings.id_token_ttl + 60)
    assert jwt_claims(hint)["exp"] < clock.now()
    assert logout(person, id_token_hint=hint, post_logout_redirect_uri=BYE, state="late").location == (
        BYE + "?state=late"
    )


def test_a_logout_request_posted_cross_site_continues_with_the_session(
    registry: Registry, agency: Agency, person: FlaskPerson
) -> None:
    hint = agency.sign_in(person, SCOPE)["id_token"]
    handle = sso_handle(person)
    # A browser does not send the SameSite=Lax cookie with a cross-site POST: nothing is decided
    # there; the request is parked and continues with a GET that carries it.
    parked = person.post(
        "/logout", {"id_token_hint": hint, "post_logout_redirect_uri": BYE, "state": "posted"}
    )
    assert parked.status_code == 303 and (parked.location or "").startswith("/logout/resume?ix=")
    assert session_live(registry, handle)
    assert person.follow(parked) == BYE + "?state=posted"
    assert not session_live(registry, handle)


# -- the person confirms ---------------------------------------------------------------------------


def test_no_params_asks_and_signing_out_shows_the_signed_out_page(
    registry: Registry, agency: Agency, person: FlaskPerson
) -> None:
    agency.sign_in(person, SCOPE)
    handle = sso_handle(person)

    page = person.get("/logout")
    assert confirmation_fields(page).keys() == {"csrf_token"}
    assert session_live(registry, handle), "nobody is signed out without being asked"

    signed_out_page(answer(person, page, "signout"))
    assert not session_live(registry, handle)
    outcomes = [event["detail"]["outcome"] for event in audit_events(registry, "logout.requested")]
    assert outcomes == ["confirmed", "confirmation_shown"]


def test_no_hint_asks_then_returns_to_the_registered_uri_of_client_id(
    registry: Registry, agency: Agency, person: FlaskPerson
) -> None:
    agency.sign_in(person, SCOPE)
    handle = sso_handle(person)
    page = logout(
        person, client_id=agency.client_id, post_logout_redirect_uri=BYE, state="s2", ui_locales="ar"
    )
    assert '<html lang="ar"' in page.get_data(as_text=True)
    assert "Agency 9401" in page.get_data(as_text=True)

    back = answer(person, page, "signout")
    assert back.status_code == 303 and back.location == BYE + "?state=s2"
    assert not session_live(registry, handle)


def test_staying_signed_in_keeps_the_session(registry: Registry, agency: Agency, person: FlaskPerson) -> None:
    agency.sign_in(person, SCOPE)
    handle = sso_handle(person)
    page = logout(person, client_id=agency.client_id, post_logout_redirect_uri=BYE, state="s3")
    back = answer(person, page, "stay")
    assert back.status_code == 303 and back.location == BYE + "?state=s3"
    assert session_live(registry, handle)
    assert "code" in prompt_none(person, agency)
    assert audit_events(registry, "logout.requested")[0]["detail"]["outcome"] == "declined"


@pytest.mark.parametrize(
    "forge", [tampered, unsigned, lambda token: "not-a-jwt"], ids=["bad", "alg-none", "junk"]
)
def test_a_forged_hint_asks_and_never_redirects(
    registry: Registry, agency: Agency, person: FlaskPerson, forge: Any
) -> None:
    hint = agency.sign_in(person, SCOPE)["id_token"]
    handle = sso_handle(person)
    page = logout(
        person,
        id_token_hint=forge(hint),
        client_id=agency.client_id,
        post_logout_redirect_uri=BYE,
        state="forged",
    )
    confirmation_fields(page)
    assert session_live(registry, handle)
    # Even confirmed, and with a registered URI of the named client: no redirect on a forged hint.
    signed_out_page(answer(person, page, "signout"))
    assert not session_live(registry, handle)
    assert audit_events(registry, "logout.requested")[-1]["detail"]["hint"] == "invalid"


def test_a_hint_of_an_earlier_session_or_another_person_asks(
    app: Flask, registry: Registry, agency: Agency, person: FlaskPerson
) -> None:
    stale = agency.sign_in(person, SCOPE)["id_token"]
    registry.sessions.end(sso_handle(person))
    agency.sign_in(person, SCOPE)  # a new session on the same browser
    handle = sso_handle(person)
    confirmation_fields(logout(person, id_token_hint=stale, post_logout_redirect_uri=BYE))
    assert session_live(registry, handle)

    other = FlaskPerson(app, "resident", PASSWORD)
    theirs = agency.sign_in(other, SCOPE)["id_token"]
    page = logout(person, id_token_hint=theirs, post_logout_redirect_uri=BYE, state="x")
    confirmation_fields(page)
    assert session_live(registry, handle) and session_live(registry, sso_handle(other))
    # The hint is genuine (Hawiya issued it to this client): once the person confirms, back they go.
    assert answer(person, page, "signout").location == BYE + "?state=x"
    assert not session_live(registry, handle) and session_live(registry, sso_handle(other))


def test_a_client_id_that_is_not_the_hints_client_is_refused(
    app: Flask, registry: Registry, agency: Agency, person: FlaskPerson
) -> None:
    other = register(registry, app, 9402)
    hint = agency.sign_in(person, SCOPE)["id_token"]
    handle = sso_handle(person)
    page = logout(
        person,
        id_token_hint=hint,
        client_id=other.client_id,
        post_logout_redirect_uri="http://127.0.0.1:9402/signed-out",
        state="mix",
    )
    assert page.status_code == 400
    assert 'id="logout-problem"' in page.get_data(as_text=True)
    assert confirmation_fields(page).keys() == {"csrf_token"}, "an invalid request is not carried on"
    assert session_live(registry, handle)
    signed_out_page(answer(person, page, "signout"))
    assert not session_live(registry, handle)
    assert audit_events(registry, "logout.requested")[-1]["detail"]["outcome"] == "invalid_request"


@BOTH_BACKENDS
def test_bad_requests_get_a_page_never_a_redirect_or_a_server_error(
    agency: Agency, person: FlaskPerson
) -> None:
    hint = agency.sign_in(person, SCOPE)["id_token"]
    for query in (
        {"client_id": "no-such-client", "post_logout_redirect_uri": BYE},
        {"client_id": "x" * 500},
        {"client_id": "\x00"},
        {"id_token_hint": "e" * (16 * 1024 + 1)},
        {"state": "s" * 5000},
    ):
        response = logout(person, **query)
        assert response.status_code == 400 and response.location is None, query
    repeated = person.get(f"/logout?state=a&state=b&id_token_hint={hint}")
    assert repeated.status_code == 400 and repeated.location is None
    # A parked (POSTed) request resumed under another id, one that is not even ASCII.
    assert person.post("/logout", {"state": "p"}).status_code == 303
    for ix in ("%C2%80", "nope", ""):
        resumed = person.get(f"/logout/resume?ix={ix}")
        assert 400 <= resumed.status_code < 500 and resumed.location is None, ix
    # Not signed in: nothing to sign out of, said on an error page.
    stranger = FlaskPerson(agency.app)
    page = stranger.get("/logout?client_id=no-such-client")
    assert page.status_code == 400 and "invalid sign-out request" in page.get_data(as_text=True)


def test_not_signed_in_with_a_valid_request_goes_back_at_once(agency: Agency, person: FlaskPerson) -> None:
    hint = agency.sign_in(person, SCOPE)["id_token"]
    stranger = FlaskPerson(agency.app)
    assert logout(stranger, id_token_hint=hint, post_logout_redirect_uri=BYE, state="s").location == (
        BYE + "?state=s"
    )
    signed_out_page(logout(stranger))


def test_the_confirmation_form_needs_its_csrf_token(
    registry: Registry, agency: Agency, person: FlaskPerson
) -> None:
    agency.sign_in(person, SCOPE)
    handle = sso_handle(person)
    fields = confirmation_fields(person.get("/logout"))
    for forged in ({}, {"csrf_token": "forged"}):
        refused = person.post(
            "/logout/confirm",
            {**{k: v for k, v in fields.items() if k != "csrf_token"}, **forged, "decision": "signout"},
        )
        assert refused.status_code == 400 and "This form has expired" in refused.get_data(as_text=True)
        assert session_live(registry, handle)


# -- the session's tokens die with it --------------------------------------------------------------


def test_session_bound_tokens_die_and_offline_ones_live_on(
    app: Flask, registry: Registry, agency: Agency, person: FlaskPerson
) -> None:
    bound = agency.sign_in(person, SCOPE)
    assert "offline_access" not in bound["scope"]
    rotated = agency.refresh(bound["refresh_token"]).json
    assert rotated is not None and "access_token" in rotated
    other = register(registry, app, 9403)
    offline = other.sign_in(person, OFFLINE)
    assert "offline_access" in offline["scope"]
    session_access = [bound["access_token"], rotated["access_token"]]
    assert [userinfo_status(app, token) for token in [*session_access, offline["access_token"]]] == [200] * 3

    logout(person, id_token_hint=bound["id_token"], post_logout_redirect_uri=BYE)

    assert [userinfo_status(app, token) for token in session_access] == [401, 401]
    assert agency.refresh(rotated["refresh_token"]).status_code == 400
    assert userinfo_status(app, offline["access_token"]) == 200
    renewed = other.refresh(offline["refresh_token"])
    assert renewed.status_code == 200, renewed.get_data(as_text=True)
    assert renewed.json is not None and userinfo_status(app, renewed.json["access_token"]) == 200
    [revoked] = [
        e for e in audit_events(registry, "token.revoked") if e["detail"].get("reason") == "session_ended"
    ]
    assert revoked["detail"]["refresh_families"] == 1 and revoked["detail"]["access_tokens"] == 2


def test_a_code_redeemed_after_logout_gives_an_access_token_already_revoked(
    app: Flask, agency: Agency, person: FlaskPerson
) -> None:
    hint = agency.sign_in(person, SCOPE)["id_token"]
    code, verifier = agency.authorize(person, SCOPE)
    logout(person, id_token_hint=hint)
    late = agency.redeem(code, verifier)
    assert late.status_code == 200 and late.json is not None
    assert "refresh_token" not in late.json
    assert userinfo_status(app, late.json["access_token"]) == 401


# -- discovery and the relying-party library -------------------------------------------------------


def test_discovery_names_the_end_session_endpoint(app: Flask) -> None:
    metadata = app.test_client().get("/.well-known/openid-configuration").json
    assert metadata is not None and metadata["end_session_endpoint"] == ISSUER + "/logout"


class InProcessHttp:
    """hawiya_rp's HttpClient, answered by the app in this process."""

    def __init__(self, app: Flask) -> None:
        self._client = app.test_client()

    @staticmethod
    def _path(url: str) -> str:
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == ISSUER, url
        return parts.path + (f"?{parts.query}" if parts.query else "")

    @staticmethod
    def _answer(response: TestResponse) -> Response:
        headers = {name.lower(): value for name, value in response.headers.items()}
        return Response(response.status_code, headers, response.get_json(silent=True))

    def get_json(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        return self._answer(self._client.get(self._path(url), headers=dict(headers or {})))

    def post_form(
        self,
        url: str,
        data: Mapping[str, str],
        auth: tuple[str, str] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        response = self._client.post(self._path(url), data=dict(data), auth=auth, headers=dict(headers or {}))
        return self._answer(response)


def test_the_libraries_logout_url_is_accepted(
    app: Flask, registry: Registry, clock: FrozenClock, agency: Agency, person: FlaskPerson
) -> None:
    rp = OpenIDClient(
        ClientConfig(
            issuer=ISSUER,
            client_id=agency.client_id,
            redirect_uri=agency.redirect_uri,
            client_secret=agency.secret,
            scope=SCOPE,
            post_logout_redirect_uri=BYE,
        ),
        InProcessHttp(app),
        clock.now,
    )
    request = rp.authorization_request()
    back = person.go(InProcessHttp._path(request.url))
    tokens = rp.complete({k: v[0] for k, v in query_of(back).items()}, request)
    handle = sso_handle(person)

    url = rp.logout_url(id_token_hint=tokens.id_token, state="lib", ui_locales="ar")
    assert url.startswith(ISSUER + "/logout?")
    response = person.get(InProcessHttp._path(url))
    assert response.status_code == 303 and response.location == BYE + "?state=lib"
    assert not session_live(registry, handle)
