"""hawiya_rp's Flask integration against the real IdP, through the two demo agencies.

Hawiya runs on http://localhost:PORT (a real socket); the demo apps of clients/python/examples run
on http://127.0.0.1:PORT (another site, as an agency is in production), each on a real port, with
the client registrations ``hawiya demo`` makes: Building permits with a client secret, Business
registration with its own key pair (private_key_jwt) and the ``business`` scope. A person signs in
over HTTP with tests/support/person.py; the logout tokens are signed here with the IdP's own keys.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask, jsonify
from hawiya_rp.flask import acr_required, current_token, current_user, require_token
from hawiya_rp.keys import generate_private_jwk, public_jwk
from werkzeug.serving import BaseWSGIServer, make_server

from tests.conftest import PASSWORD, LiveServer, free_port
from tests.support.person import Person, hidden_fields

EXAMPLES = Path(__file__).resolve().parents[2] / "clients" / "python" / "examples"
API_SCOPE = "permits:read"
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOA_LOW = "urn:hawiya:loa:low"


def load_example(name: str) -> ModuleType:
    """clients/python/examples/<name>/app.py (the examples are not a package)."""
    spec = importlib.util.spec_from_file_location(f"hawiya_example_{name}", EXAMPLES / name / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Agency:
    """One demo agency served on 127.0.0.1."""

    url: str
    client_id: str
    sessions: Path  # the FileTokenStore folder

    def session_files(self) -> list[Path]:
        """The stored sessions (not the pending sign-ins)."""
        found = []
        for path in sorted((self.sessions / "sessions").glob("*.json")):
            if json.loads(path.read_text())["data"].get("kind") == "session":
                found.append(path)
        return found

    def session(self, session_id: str) -> dict[str, Any]:
        """A stored session record."""
        data: dict[str, Any] = json.loads((self.sessions / "sessions" / f"{session_id}.json").read_text())[
            "data"
        ]
        return data


@dataclass
class Agencies:
    """The IdP and the two demo agencies."""

    idp: LiveServer
    permits: Agency
    business: Agency
    api: str  # the permits service's API, its resource identifier
    api_secret: str  # an agency client allowed to call it (client_credentials)
    api_client: str

    def person(self, username: str = "citizen") -> Person:
        """Someone at a browser (a cookie jar of their own)."""
        return Person(self.idp.url, username, PASSWORD)


def add_test_routes(app: Flask) -> None:
    """What the demos do not show: a page at the high level and an API."""

    @app.get("/records")
    @acr_required("high")
    def records() -> str:
        return "records"

    @app.get("/api/permits")
    @require_token(scope=API_SCOPE)
    def api_permits() -> Any:
        token = current_token()
        assert token is not None
        return jsonify(permits=[], client_id=token["client_id"], user=current_user())


@pytest.fixture
def agencies(live_server: LiveServer, tmp_path: Path) -> Iterator[Agencies]:
    """Both demo apps registered at the live IdP (as `hawiya demo` does) and served on 127.0.0.1."""
    registry = live_server.world.registry
    permits_port, business_port = free_port(), free_port()
    permits_url, business_url = f"http://127.0.0.1:{permits_port}", f"http://127.0.0.1:{business_port}"
    api = f"{permits_url}/api"
    permits_client = registry.clients.create(
        name="Building permits",
        name_ar="رخص البناء",
        redirect_uris=[f"{permits_url}/auth/callback"],
        auth_method="client_secret_basic",
        scope="openid profile",
        client_id="demo-permits",
    )
    key = generate_private_jwk("ES256")
    key_file = tmp_path / "business-key.json"
    key_file.write_text(json.dumps(key))
    registry.clients.create(
        name="Business registration",
        name_ar="تسجيل الشركات",
        redirect_uris=[f"{business_url}/auth/callback"],
        auth_method="private_key_jwt",
        jwks={"keys": [public_jwk(key)]},
        scope="openid profile business",
        client_id="demo-business",
    )
    api_client = registry.clients.create(
        name="Permits back office",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope=f"{API_SCOPE} permits:write",
        resources=[api],
    )
    org = registry.organisations.create(
        registration_number="CR-100200",
        name="Gulf Trading Company",
        name_ar="شركة الخليج للتجارة",
        actor="test",
    )
    registry.organisations.grant(org.id, live_server.world.citizen_id, "owner", by=None, operator="test")

    common = {"HAWIYA_ISSUER": live_server.url}
    permits_app = load_example("permits").create_app(
        {
            **common,
            "HAWIYA_CLIENT_ID": "demo-permits",
            "HAWIYA_CLIENT_SECRET": permits_client.client_secret,
            "HAWIYA_REDIRECT_URI": f"{permits_url}/auth/callback",
            "HAWIYA_STORE": str(tmp_path / "permits-sessions"),
            "HAWIYA_API_AUDIENCE": api,
        }
    )
    add_test_routes(permits_app)
    business_app = load_example("business").create_app(
        {
            **common,
            "HAWIYA_CLIENT_ID": "demo-business",
            "HAWIYA_PRIVATE_JWK_FILE": str(key_file),
            "HAWIYA_REDIRECT_URI": f"{business_url}/auth/callback",
            "HAWIYA_STORE": str(tmp_path / "business-sessions"),
        }
    )
    servers = [serve(permits_app, permits_port), serve(business_app, business_port)]
    try:
        yield Agencies(
            idp=live_server,
            permits=Agency(permits_url, "demo-permits", tmp_path / "permits-sessions"),
            business=Agency(business_url, "demo-business", tmp_path / "business-sessions"),
            api=api,
            api_client=api_client.client.client_id,
            api_secret=api_client.client_secret or "",
        )
    finally:
        for server, thread in servers:
            server.shutdown()
            thread.join(timeout=5)


def serve(app: Flask, port: int) -> tuple[BaseWSGIServer, threading.Thread]:
    """Serve ``app`` on 127.0.0.1:``port`` in a daemon thread (polling often: quick to shut down)."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


def sign_in(person: Person, agency: Agency, path: str) -> requests.Response:
    """Open ``path`` at the agency, sign in at Hawiya, come back; the agency's answer to the callback."""
    start = person.page(f"{agency.url}{path}")
    assert start.status_code == 302
    login = start.headers["Location"]
    assert urlsplit(login).path == "/auth/login"
    back = person.go(f"{agency.url}{login}" if login.startswith("/") else login)
    assert back.startswith(f"{agency.url}/auth/callback?")
    return person.page(back)


def session_cookie(person: Person, agency: Agency) -> str:
    """The agency's session cookie in the person's browser."""
    name = f"hawiya-rp-{agency.client_id}"
    value = person.http.cookies.get(name, domain="127.0.0.1")
    assert value, f"no {name} cookie"
    return str(value)


def logout_token(agencies: Agencies, agency: Agency, **claims: Any) -> str:
    """A logout token for ``agency`` signed with Hawiya's own ES256 key (as its logout will)."""
    now = int(time.time())
    body = {
        "iss": agencies.idp.url,
        "aud": agency.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(16),
        "events": {BACKCHANNEL_EVENT: {}},
        **claims,
    }
    return agencies.idp.world.registry.signer.sign(body, alg="ES256", typ="logout+jwt")


def api_token(agencies: Agencies, scope: str) -> str:
    """An access token for the permits API (client_credentials, RFC 8707 resource)."""
    response = requests.post(
        f"{agencies.idp.url}/token",
        data={"grant_type": "client_credentials", "scope": scope, "resource": agencies.api},
        auth=(agencies.api_client, agencies.api_secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


# -- sign-in ------------------------------------------------------------------------------------


def test_sign_in_shows_the_person_and_the_browser_holds_no_token(agencies: Agencies) -> None:
    permits = agencies.permits
    person = agencies.person()
    done = sign_in(person, permits, "/permits")
    assert done.status_code == 302 and done.headers["Location"] == "/permits"
    set_cookie = done.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    assert "Secure" not in set_cookie  # plain http on 127.0.0.1: a browser would drop a Secure cookie

    page = person.page(f"{permits.url}/permits")
    assert page.status_code == 200
    assert "Fatima Al-Sabah" in page.text and "فاطمة الصباح" in page.text
    assert LOA_LOW in page.text and "pwd" in page.text

    # The cookie is an opaque id; the tokens are in the session file it names.
    session_id = session_cookie(person, permits)
    assert len(session_id) == 43 and session_id.count(".") == 0 and not session_id.startswith("eyJ")
    record = permits.session(session_id)
    tokens = record["tokens"]
    registry = agencies.idp.world.registry
    registry.verifier.verify(tokens["access_token"], typ="at+jwt")  # a real Hawiya access token
    assert tokens["id_token"].count(".") == 2 and tokens["claims"]["sub"] == record["sub"]
    jar = {cookie.name: cookie.value or "" for cookie in person.http.cookies if cookie.domain == "127.0.0.1"}
    for value in jar.values():
        assert value.count(".") != 2 and not value.startswith("eyJ")
        assert tokens["access_token"] not in value and tokens["id_token"] not in value


def test_the_callback_works_once_and_next_never_leaves_the_site(agencies: Agencies) -> None:
    permits = agencies.permits
    person = agencies.person()
    back = person.go(f"{permits.url}/auth/login?next=//evil.example/steal")
    done = person.page(back)
    assert done.status_code == 302 and done.headers["Location"] == "/"
    replayed = person.page(back)
    assert replayed.status_code == 400 and "expired" in replayed.text
    assert len(permits.session_files()) == 1
    for elsewhere in (
        "/\\evil.example/steal",
        "https://evil.example/",
        "/ok\r\nLocation: https://evil.example/",
    ):
        done = person.page(person.go(f"{permits.url}/auth/login?{urlencode({'next': elsewhere})}"))
        assert done.status_code == 302 and done.headers["Location"] == "/"


def test_single_sign_on_across_the_two_agencies(agencies: Agencies) -> None:
    person = agencies.person()
    sign_in(person, agencies.permits, "/permits")
    pages_before = len(person.pages)

    done = sign_in(person, agencies.business, "/company")
    assert done.headers["Location"] == "/company"
    at_idp = person.pages[pages_before:]
    assert not any('name="password"' in page for page in at_idp)  # no password asked again
    company = person.page(f"{agencies.business.url}/company")
    assert company.status_code == 200
    assert "Fatima Al-Sabah" in company.text
    assert "Gulf Trading Company" in company.text and "CR-100200" in company.text and "owner" in company.text

    # Two services on one host: two cookies, two sessions, one IdP session (the same sid).
    permits_record = agencies.permits.session(session_cookie(person, agencies.permits))
    business_record = agencies.business.session(session_cookie(person, agencies.business))
    assert permits_record["sid"] == business_record["sid"]
    assert person.page(f"{agencies.permits.url}/permits").status_code == 200


# -- assurance ----------------------------------------------------------------------------------


def test_acr_required_steps_up_and_explains_when_the_level_cannot_be_reached(agencies: Agencies) -> None:
    permits = agencies.permits
    person = agencies.person()
    sign_in(person, permits, "/permits")

    step_up = person.page(f"{permits.url}/records")
    assert step_up.status_code == 302
    login = urlsplit(step_up.headers["Location"])
    assert login.path == "/auth/login" and parse_qs(login.query) == {"next": ["/records"], "acr": ["high"]}
    to_idp = person.page(f"{permits.url}{step_up.headers['Location']}")
    assert to_idp.status_code == 302
    authorize = urlsplit(to_idp.headers["Location"])
    assert f"{authorize.scheme}://{authorize.netloc}" == agencies.idp.url
    assert parse_qs(authorize.query)["acr_values"] == ["urn:hawiya:loa:high"]

    # The citizen holds no second factor: Hawiya cannot reach the level, the agency says so.
    refused = person.page(person.go(to_idp.headers["Location"]))
    assert refused.status_code == 403 and "stronger sign-in" in refused.text
    assert person.page(f"{permits.url}/permits").status_code == 200  # the sign-in at low still stands


def test_an_answer_below_the_level_asked_gets_a_403_page(agencies: Agencies) -> None:
    permits = agencies.permits
    person = agencies.person()
    to_idp = person.page(f"{permits.url}/auth/login?next=/records")
    # As if the request had asked for high and the IdP had answered low: demand it server-side.
    store_file = (
        permits.sessions / "sessions" / f"{person.http.cookies['hawiya-rp-demo-permits-pending']}.json"
    )
    envelope = json.loads(store_file.read_text())
    envelope["data"]["request"]["acr"] = "urn:hawiya:loa:high"
    store_file.write_text(json.dumps(envelope))

    refused = person.page(person.go(to_idp.headers["Location"]))
    assert refused.status_code == 403 and "stronger sign-in" in refused.text
    assert permits.session_files() == []  # no session at a lower level than asked


# -- logout -------------------------------------------------------------------------------------


def test_back_channel_logout_ends_the_local_sessions_of_that_sid(agencies: Agencies) -> None:
    permits = agencies.permits
    fatima, ravi = agencies.person("citizen"), agencies.person("resident")
    sign_in(fatima, permits, "/permits")
    sign_in(ravi, permits, "/permits")
    record = permits.session(session_cookie(fatima, permits))
    token = logout_token(agencies, permits, sid=record["sid"], sub=record["sub"])

    answer = requests.post(f"{permits.url}/auth/backchannel-logout", data={"logout_token": token}, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    assert fatima.page(f"{permits.url}/permits").status_code == 302  # signed out
    assert ravi.page(f"{permits.url}/permits").status_code == 200  # another IdP session: untouched
    assert len(permits.session_files()) == 1

    replayed = requests.post(
        f"{permits.url}/auth/backchannel-logout", data={"logout_token": token}, timeout=10
    )
    assert replayed.status_code == 400
    assert replayed.json() == {"error": "invalid_request"}


def test_back_channel_logout_without_sid_ends_every_session_of_the_person(agencies: Agencies) -> None:
    permits = agencies.permits
    laptop, phone = agencies.person(), agencies.person()
    sign_in(laptop, permits, "/permits")
    sign_in(phone, permits, "/permits")
    sub = permits.session(session_cookie(laptop, permits))["sub"]
    answer = requests.post(
        f"{permits.url}/auth/backchannel-logout",
        data={"logout_token": logout_token(agencies, permits, sub=sub)},
        timeout=10,
    )
    assert answer.status_code == 200
    assert permits.session_files() == []


@pytest.mark.parametrize(
    "claims",
    [
        {"sid": "x", "aud": "demo-business"},  # for another client
        {"sid": "x", "nonce": "n"},  # 2.4: a logout token never has a nonce
        {"sid": "x", "events": {}},  # not a logout event
        {"sid": "x", "iss": "http://localhost:1"},  # another issuer
    ],
)
def test_bad_logout_tokens_are_refused(agencies: Agencies, claims: dict[str, Any]) -> None:
    person = agencies.person()
    sign_in(person, agencies.permits, "/permits")
    token = logout_token(agencies, agencies.permits, **claims)
    answer = requests.post(
        f"{agencies.permits.url}/auth/backchannel-logout", data={"logout_token": token}, timeout=10
    )
    assert answer.status_code == 400 and answer.json() == {"error": "invalid_request"}
    garbage = requests.post(
        f"{agencies.permits.url}/auth/backchannel-logout", data={"logout_token": "x.y.z"}, timeout=10
    )
    assert garbage.status_code == 400
    assert person.page(f"{agencies.permits.url}/permits").status_code == 200


def _signout_form(page: requests.Response) -> dict[str, str]:
    fields = hidden_fields(page.text)
    assert set(fields) == {"hawiya_csrf", "lang"}, fields
    return fields


def test_signing_out_takes_a_post_with_this_sites_token(agencies: Agencies) -> None:
    """Any site can make a browser GET /auth/logout (a link, an image): that alone signs nobody out.
    Signing out is a POST carrying a token bound to this browser's session."""
    permits = agencies.permits
    person, other = agencies.person(), agencies.person()
    sign_in(person, permits, "/permits")
    sign_in(other, permits, "/permits")

    confirm = person.page(f"{permits.url}/auth/logout")
    assert confirm.status_code == 200 and confirm.headers["Cache-Control"] == "no-store"
    assert '<form method="post" action="/auth/logout">' in confirm.text and "Sign out" in confirm.text
    assert "frame-ancestors 'none'" in confirm.headers["Content-Security-Policy"]
    own_page = person.page(f"{permits.url}/permits")  # still signed in; its form has the token
    assert own_page.status_code == 200
    assert hidden_fields(own_page.text)["hawiya_csrf"] == _signout_form(confirm)["hawiya_csrf"]
    assert len(permits.session_files()) == 2

    # A forged POST: no token, or another person's (their own page's) token.
    url = f"{permits.url}/auth/logout"
    for forged in ({}, {"hawiya_csrf": "x"}, _signout_form(other.page(url))):
        refused = person.http.post(url, data=forged, allow_redirects=False, timeout=10)
        assert refused.status_code == 400 and 'name="hawiya_csrf"' in refused.text  # asks again
        assert person.page(f"{permits.url}/permits").status_code == 200
    assert len(permits.session_files()) == 2

    out = person.http.post(url, data=_signout_form(confirm), allow_redirects=False, timeout=10)
    assert out.status_code == 303
    end_session = requests.get(f"{agencies.idp.url}/.well-known/openid-configuration", timeout=10).json()[
        "end_session_endpoint"
    ]
    assert out.headers["Location"].startswith(end_session + "?")
    assert "id_token_hint" in parse_qs(urlsplit(out.headers["Location"]).query)
    assert len(permits.session_files()) == 1  # the other person's session stands
    assert person.page(f"{permits.url}/permits").status_code == 302
    assert other.page(f"{permits.url}/permits").status_code == 200
    # Signed out, the confirmation page has nothing to confirm.
    assert person.page(url).status_code == 302


def test_the_sign_out_confirmation_speaks_arabic(agencies: Agencies) -> None:
    permits = agencies.permits
    person = agencies.person()
    sign_in(person, permits, "/permits")
    english = person.page(f"{permits.url}/auth/logout")
    assert '<html lang="en" dir="ltr">' in english.text and 'href="/auth/logout?lang=ar"' in english.text
    arabic = person.page(f"{permits.url}/auth/logout?lang=ar")
    assert '<html lang="ar" dir="rtl">' in arabic.text and "تسجيل الخروج" in arabic.text
    out = person.http.post(
        f"{permits.url}/auth/logout", data=_signout_form(arabic), allow_redirects=False, timeout=10
    )
    assert parse_qs(urlsplit(out.headers["Location"]).query)["ui_locales"] == ["ar"]
    # Hawiya's own sign-out page goes on in Arabic (English browser).
    bye = person.http.get(out.headers["Location"], allow_redirects=False, timeout=10)
    assert '<html lang="ar" dir="rtl">' in bye.text


def test_the_page_language_goes_to_hawiya_as_ui_locales(agencies: Agencies) -> None:
    permits = agencies.permits
    person = agencies.person()
    person.http.headers["Accept-Language"] = "en"
    to_idp = person.page(f"{permits.url}/auth/login?next=/permits&lang=ar")
    authorize = urlsplit(to_idp.headers["Location"])
    assert parse_qs(authorize.query)["ui_locales"] == ["ar"]
    signin = person.http.get(to_idp.headers["Location"], timeout=10)  # Hawiya's sign-in page
    assert urlsplit(signin.url).path == "/signin"
    assert '<html lang="ar" dir="rtl">' in signin.text

    # The pages of the library speak the language the sign-in started in: here, cancelled at
    # Hawiya's consent page.
    back = person.go(to_idp.headers["Location"], consent="deny")
    cancelled = person.page(back)
    assert cancelled.status_code == 403
    assert '<html lang="ar" dir="rtl">' in cancelled.text and "أُلغي تسجيل الدخول" in cancelled.text


def test_a_client_registered_with_client_secret_post_signs_in(agencies: Agencies, tmp_path: Path) -> None:
    """The library authenticates as the client is registered; Hawiya refuses any other method."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    registration = agencies.idp.world.registry.clients.create(
        name="Parking permits",
        redirect_uris=[f"{url}/auth/callback"],
        auth_method="client_secret_post",
        scope="openid profile",
        client_id="demo-parking",
    )
    settings = {
        "HAWIYA_ISSUER": agencies.idp.url,
        "HAWIYA_CLIENT_ID": "demo-parking",
        "HAWIYA_CLIENT_SECRET": registration.client_secret,
        "HAWIYA_AUTH_METHOD": "client_secret_post",
        "HAWIYA_REDIRECT_URI": f"{url}/auth/callback",
        "HAWIYA_STORE": str(tmp_path / "parking-sessions"),
    }
    server, thread = serve(load_example("permits").create_app(settings), port)
    try:
        parking = Agency(url, "demo-parking", tmp_path / "parking-sessions")
        done = sign_in(agencies.person(), parking, "/permits")
        assert done.status_code == 302 and done.headers["Location"] == "/permits", done.text
        assert len(parking.session_files()) == 1
    finally:
        server.shutdown()
        thread.join(timeout=5)


# -- an agency API ------------------------------------------------------------------------------


def test_require_token_checks_the_token_and_its_scope(agencies: Agencies) -> None:
    url = f"{agencies.permits.url}/api/permits"
    good = requests.get(
        url, headers={"Authorization": f"Bearer {api_token(agencies, API_SCOPE)}"}, timeout=10
    )
    assert good.status_code == 200 and good.json()["client_id"] == agencies.api_client

    other_scope = api_token(agencies, "permits:write")
    refused = requests.get(url, headers={"Authorization": f"Bearer {other_scope}"}, timeout=10)
    assert refused.status_code == 403
    assert refused.json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    assert f'scope="{API_SCOPE}"' in refused.headers["WWW-Authenticate"]

    missing = requests.get(url, timeout=10)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"  # RFC 6750 3.1: no error code without a token

    forged = requests.get(url, headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."}, timeout=10)
    assert forged.status_code == 401 and 'error="invalid_token"' in forged.headers["WWW-Authenticate"]


def test_require_token_refuses_a_token_meant_for_another_audience(agencies: Agencies) -> None:
    """A person's access token at sign-in is for Hawiya's userinfo, not for the agency's API."""
    person = agencies.person()
    sign_in(person, agencies.permits, "/permits")
    user_token = agencies.permits.session(session_cookie(person, agencies.permits))["tokens"]["access_token"]
    answer = requests.get(
        f"{agencies.permits.url}/api/permits", headers={"Authorization": f"Bearer {user_token}"}, timeout=10
    )
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_token"
