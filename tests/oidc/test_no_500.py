"""No request, however malformed, makes Hawiya fail with a server error or leak a traceback.

Hypothesis sends every person-facing and machine endpoint huge and repeated parameters, invalid
UTF-8 (raw and percent-encoded), NUL bytes, bodies in the wrong content type (JSON, multipart,
text/plain, raw bytes), garbage ``Authorization`` headers and cookies, and unexpected methods. Half
the time the request starts from a valid one (a real client, a parked sign-in with its CSRF token, a
live access token) so the fuzz reaches past the first check. The app is built once for the module.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp.app import create_app
from tests.conftest import (
    PASSWORD,
    PG_SERVER,
    REDIS_URL,
    Backend,
    PostgresTemplate,
    World,
    drop_database,
    initialised,
    make_settings,
    populate,
    require_servers,
)
from tests.support.agency import Agency
from tests.support.flask_person import FlaskPerson, authorize_url, pkce_pair
from tests.support.person import hidden_fields

API = "https://api.example.test"

ENDPOINTS: dict[str, tuple[str, ...]] = {
    "/authorize": ("GET", "POST"),
    "/token": ("POST",),
    "/userinfo": ("GET", "POST"),
    "/revoke": ("POST",),
    "/introspect": ("POST",),
    "/consent": ("GET", "POST"),
    "/signin": ("GET", "POST"),
    "/authorize/resume": ("GET",),
    "/signin/factor": ("GET", "POST"),
    "/signin/enrol": ("GET", "POST"),
    "/account": ("GET",),
    "/account/reauth": ("GET", "POST"),
    "/account/totp/confirm": ("POST",),
}
OTHER_METHODS = ("PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "PROPFIND", "GET", "POST")
NAMES = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "prompt",
    "max_age",
    "ui_locales",
    "login_hint",
    "id_token_hint",
    "acr_values",
    "claims",
    "request",
    "request_uri",
    "grant_type",
    "code",
    "code_verifier",
    "refresh_token",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "resource",
    "token",
    "token_type_hint",
    "access_token",
    "ix",
    "csrf_token",
    "decision",
    "username",
    "password",
    "label",
    "authenticator",
)
NASTY = (
    "\x00",
    "a\x00b",
    "%00",
    "%ff%fe",
    "\ufffd",
    "\u202e",
    "ﷺ",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "' OR '1'='1",
    "{}",
    '{"userinfo": {"email": null}}',
    '{"id_token": []}',
    "[]",
    "null",
    "-1",
    "99999999999999999999999999",
    "1e309",
    "openid openid",
    "none login consent",
    "S256",
    "plain",
    "form_post",
    "fragment",
    "code id_token",
    "http://127.0.0.1:9001/callback",
    "http://127.0.0.1:9001/callback#frag",
    "a.b.c",
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    '"',
    "\\",
    "é",
    'http://127.0.0.1:9001/callback"',
    "http://127.0.0.1:9001/callbacké",
    "https://api.example.test/\u00e9",
    " ",
    "",
    "x" * 5000,
    "[" * 1200 + "]" * 1200,
    '{"userinfo":' * 1200 + "{}" + "}" * 1200,
    "amal\n",
)


@dataclass
class Target:
    """The app under fuzz and the valid requests each endpoint's fuzz may start from."""

    app: Flask
    world: World
    bases: dict[str, dict[str, str]]
    browsers: dict[str, FlaskClient]
    basic: str
    bearer: str

    def __repr__(self) -> str:
        return "Target(...)"  # keep hypothesis's failure reports readable


def _parked_sign_in(app: Flask, world: World, scope: str) -> tuple[FlaskClient, dict[str, str]]:
    """A browser on the sign-in page of a parked authorization request: its hidden fields."""
    person = FlaskPerson(app)
    _verifier, challenge = pkce_pair()
    page = person.open_page(
        authorize_url(
            response_type="code",
            client_id=world.confidential_id,
            redirect_uri=world.redirect_uri,
            scope=scope,
            code_challenge=challenge,
            code_challenge_method="S256",
        ),
        "/signin",
    )
    return person.browser, hidden_fields(page.get_data(as_text=True))


def _at_consent(app: Flask, world: World) -> tuple[FlaskClient, dict[str, str]]:
    """A signed-in browser on the consent page (for scopes not allowed yet): its hidden fields."""
    browser, fields = _parked_sign_in(app, world, "openid profile phone address")
    person = FlaskPerson(app, "citizen", PASSWORD)
    person.browser = browser
    page = person.follow(
        person.post("/signin", {**fields, "username": "citizen", "password": PASSWORD}), stop_at="/consent"
    )
    assert not isinstance(page, str) and page.request.path == "/consent"
    return browser, hidden_fields(page.get_data(as_text=True))


def _at_second_step(app: Flask, world: World, username: str) -> tuple[FlaskClient, dict[str, str]]:
    """A browser past the password of ``username``, on the code or enrolment page: its fields."""
    browser, fields = _parked_sign_in(app, world, "openid")
    person = FlaskPerson(app, username, PASSWORD)
    person.browser = browser
    page = person.follow(person.post("/signin", {**fields, "username": username, "password": PASSWORD}))
    assert not isinstance(page, str) and page.request.path in ("/signin/factor", "/signin/enrol")
    return browser, hidden_fields(page.get_data(as_text=True))


@pytest.fixture(scope="module", params=["embedded", "postgres"])
def target(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    _postgres_template: PostgresTemplate,
) -> Iterator[Target]:
    """One app per backend for the whole module (hypothesis runs many examples against it): on
    PostgreSQL a NUL or an invalid character reaching a query is a server error, not on SQLite."""
    tmp: Path = tmp_path_factory.mktemp("no500")
    database = None
    if request.param == "embedded":
        backend = Backend("embedded", f"sqlite:///{tmp / 'hawiya.db'}", "embedded", "hawiya:")
    else:
        require_servers()
        database = _postgres_template.copy()
        backend = Backend("postgres", f"{PG_SERVER}/{database}", REDIS_URL, f"hawiya-test:{database}:")
    registry = initialised(make_settings(tmp, backend))
    world = populate(registry)
    app = create_app(registry=registry)
    # A client with every grant, so each of the token endpoint's grants is reachable.
    fuzz = registry.clients.create(
        name="Fuzz Agency",
        redirect_uris=[world.redirect_uri],
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        scope="openid email offline_access records:read",
        resources=[API],
    )
    assert fuzz.client_secret is not None
    agency = Agency(app, fuzz.client.client_id, fuzz.client_secret, world.redirect_uri)
    person = FlaskPerson(app, "citizen", PASSWORD)
    tokens = agency.sign_in(person, "openid email offline_access")
    spare = agency.sign_in(person, "openid email offline_access")  # for /revoke to revoke
    signin_browser, signin_fields = _parked_sign_in(app, world, "openid email")
    consent_browser, consent_fields = _at_consent(app, world)
    resident = registry.accounts.by_username("resident")
    assert resident is not None
    registry.authenticators.provision_totp(resident.id, label="Phone", actor="test")
    factor_browser, factor_fields = _at_second_step(app, world, "resident")
    enrol_browser, enrol_fields = _at_second_step(app, world, "staff")
    account_fields = hidden_fields(consent_browser.get("/account/reauth").get_data(as_text=True))
    _verifier, challenge = pkce_pair()
    authorize = {
        "response_type": "code",
        "client_id": world.confidential_id,
        "redirect_uri": world.redirect_uri,
        "scope": "openid email",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    basic = base64.b64encode(f"{agency.client_id}:{agency.secret}".encode()).decode()
    yield Target(
        app=app,
        world=world,
        bases={
            "/authorize": authorize,
            "/token": {
                "grant_type": "authorization_code",
                "code": "c",
                "redirect_uri": world.redirect_uri,
                "code_verifier": "v" * 43,
                "refresh_token": tokens["refresh_token"],
                "scope": "records:read",
                "resource": API,
            },
            "/userinfo": {},
            "/revoke": {"token": spare["refresh_token"]},
            "/introspect": {"token": tokens["access_token"]},
            "/consent": {**consent_fields, "decision": "approve"},
            "/signin": {**signin_fields, "username": "citizen", "password": "wrong password 123"},
            "/authorize/resume": {"ix": signin_fields.get("ix", "")},
            "/signin/factor": {**factor_fields, "code": "123456"},
            "/signin/enrol": {**enrol_fields, "code": "123456", "label": "Phone"},
            "/account": {},
            "/account/reauth": {**account_fields, "password": "wrong password 123"},
            "/account/totp/confirm": {**account_fields, "authenticator": "x", "code": "123456"},
        },
        browsers={
            "/consent": consent_browser,
            "/signin": signin_browser,
            "/authorize/resume": signin_browser,
            "/signin/factor": factor_browser,
            "/signin/enrol": enrol_browser,
            "/account": consent_browser,
            "/account/reauth": consent_browser,
            "/account/totp/confirm": consent_browser,
        },
        basic=basic,
        bearer=tokens["access_token"],
    )
    registry.close()
    if database is not None:
        drop_database(database)
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=backend.redis_prefix + "*"):
            client.delete(key)
        client.close()


# -- strategies ----------------------------------------------------------------------------------

_latin1 = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)
values = st.one_of(st.text(max_size=40), st.sampled_from(NASTY))
names = st.one_of(st.sampled_from(NAMES), st.text(max_size=12))
pairs = st.lists(st.tuples(names, values), max_size=10)
authorization = st.one_of(
    st.none(),
    st.builds(lambda b: "Basic " + base64.b64encode(b).decode(), st.binary(max_size=60)),
    st.builds(lambda s: "Basic " + s, _latin1),
    st.sampled_from(
        [
            "Basic ",
            "Basic ===",
            "Basic Og==",
            "Basic /w==",
            "Basic " + base64.b64encode(b"\xff:\xfe").decode(),
        ]
    ),
    st.builds(lambda s: "Bearer " + s, _latin1),
    st.sampled_from(["Bearer", "Bearer ", "bearer a.b.c", "Bearer a.b.c", "Bearer eyJhbGciOiJub25lIn0.e30."]),
    _latin1,
)
content_types = st.sampled_from(
    [
        None,
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=latin-1",
        "application/x-www-form-urlencoded; charset=nonsense",
        "application/json",
        "multipart/form-data; boundary=hawiya",
        "multipart/form-data",
        "text/plain",
        "application/octet-stream",
        "x/y; ;;=",
    ]
)


def _multipart(fields: list[tuple[str, str]], broken: bool) -> bytes:
    parts = [
        b'--hawiya\r\nContent-Disposition: form-data; name="'
        + name.encode("utf-8", "replace")
        + b'"\r\n\r\n'
        + value.encode("utf-8", "replace")
        + b"\r\n"
        for name, value in fields
    ]
    return b"".join(parts) + (b"--hawi" if broken else b"--hawiya--\r\n")


@st.composite
def bodies(draw: st.DrawFn, fields: list[tuple[str, str]]) -> bytes:
    """The request body: the fields in one encoding or another, or raw bytes."""
    kind = draw(st.sampled_from(["form", "form_bad_bytes", "json", "json_list", "multipart", "raw", "empty"]))
    if kind == "form":
        return urlencode(fields).encode()
    if kind == "form_bad_bytes":
        return (
            urlencode(fields) + "&" + draw(st.sampled_from(["x=%ff%fe", "%ff=1", "a=\x00", "=", "&&", "%"]))
        ).encode("latin-1", "replace") + draw(
            st.sampled_from([b"", b"\xff\xfe\x00", b"&y=\xc3\x28", b"&z=\xed\xa0\x80"])
        )
    if kind == "json":
        return json.dumps(dict(fields)).encode()
    if kind == "json_list":
        return json.dumps(fields).encode()
    if kind == "multipart":
        return _multipart(fields, draw(st.booleans()))
    if kind == "raw":
        return draw(st.binary(max_size=300))
    return b""


@dataclass(frozen=True)
class Fuzzed:
    """One malformed request."""

    method: str
    query: str
    body: bytes
    content_type: str | None
    headers: dict[str, str]
    from_valid: bool


@st.composite
def requests_for(draw: st.DrawFn, path: str, target: Target) -> Fuzzed:
    """A malformed request for ``path``, maybe grown from a valid one."""
    from_valid = draw(st.booleans())
    fields = list(target.bases[path].items()) if from_valid else []
    if from_valid and path == "/token":
        grant_type = draw(st.sampled_from(["authorization_code", "refresh_token", "client_credentials"]))
        fields[0] = ("grant_type", grant_type)
    fields += draw(pairs)
    if fields and draw(st.booleans()):
        fields += [draw(st.sampled_from(fields))] * draw(st.integers(1, 300))  # a repeated parameter
    method = draw(st.one_of(st.sampled_from(ENDPOINTS[path]), st.sampled_from(OTHER_METHODS)))
    in_query = method in ("GET", "HEAD") or draw(st.booleans())
    if draw(st.booleans()):
        # A huge parameter: up to 8 KiB in a URL (what proxies let through), past the 64 KiB body
        # limit in a body. (Larger URLs only measure the test client's own URL decoding.)
        size = draw(st.integers(1_000, 8_000) if in_query else st.integers(4_000, 80_000))
        fields.append((draw(st.sampled_from(NAMES)), (draw(st.text(min_size=1, max_size=3)) * size)[:size]))
    query = urlencode(fields, quote_via=quote) if in_query else ""
    query += draw(st.sampled_from(["", "&%ff%fe=%c3%28", "&a=%00", "&%", "&&=", "&x=" + "%ed%a0%80"]))
    body = b"" if in_query and draw(st.booleans()) else draw(bodies(fields))
    headers: dict[str, str] = {}
    auth = draw(authorization)
    if from_valid and path in ("/token", "/revoke", "/introspect") and draw(st.booleans()):
        auth = "Basic " + target.basic
    if from_valid and path == "/userinfo" and draw(st.booleans()):
        auth = "Bearer " + target.bearer
    if auth is not None:
        headers["Authorization"] = auth
    if draw(st.booleans()):
        cookie = draw(
            st.sampled_from(["hawiya_sso", "hawiya_ix", "hawiya_form", "hawiya_lang", "hawiya_pending", "x"])
        )
        headers["Cookie"] = f"{cookie}={draw(_latin1)}"
    if draw(st.booleans()):
        headers["Accept-Language"] = draw(_latin1)
    return Fuzzed(method, query, body, draw(content_types), headers, from_valid)


def _send(target: Target, path: str, request: Fuzzed) -> tuple[int, bytes]:
    browser = target.browsers.get(path) if request.from_valid else None
    client = browser or target.app.test_client()
    response = client.open(
        path,
        method=request.method,
        query_string=request.query,
        data=request.body,
        content_type=request.content_type,
        headers=request.headers,
        base_url="http://localhost",
    )
    return response.status_code, response.get_data()


@pytest.mark.parametrize("path", list(ENDPOINTS))
@settings(
    # 100 a backend: 200 an endpoint in all, more than the 150 of one backend it had before.
    max_examples=100,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(data=st.data())
def test_malformed_requests_never_cause_a_server_error(
    target: Target, path: str, data: st.DataObject
) -> None:
    request = data.draw(requests_for(path, target))
    status, body = _send(target, path, request)
    assert status < 500, body[:2000]
    assert b"Traceback" not in body


def test_the_fuzz_reaches_real_answers(target: Target) -> None:
    """The valid starting points work, so the fuzz above begins past the first check."""
    userinfo = target.app.test_client().get("/userinfo", headers={"Authorization": "Bearer " + target.bearer})
    assert userinfo.status_code == 200
    introspected = target.app.test_client().post(
        "/introspect", data=target.bases["/introspect"], headers={"Authorization": "Basic " + target.basic}
    )
    assert introspected.json is not None and introspected.json["active"] is True
    authorize = target.app.test_client().get("/authorize", query_string=target.bases["/authorize"])
    assert authorize.status_code == 302 and "/signin" in authorize.headers["Location"]
    assert target.bases["/signin"]["csrf_token"] and target.bases["/consent"]["csrf_token"]
    assert target.bases["/signin/factor"]["csrf_token"] and target.bases["/signin/enrol"]["csrf_token"]
    assert target.bases["/account/reauth"]["csrf_token"]


# -- every parameter of every endpoint, with each value that once reached a query or a decoder ------

#: Raw (already percent-encoded) values: a NUL, a very long value, JSON nested 1,200 deep, invalid
#: UTF-8, a UTF-8-encoded surrogate (invalid too), a trailing newline.
SWEEP = (
    "a%00b",
    "x" * 10_000,
    quote("[" * 1200 + "]" * 1200),
    quote('{"id_token":' * 1200 + "{}" + "}" * 1200),
    "%ff%fe",
    "%ed%a0%80",
    "amal%0A",
)


# On PostgreSQL, the stricter backend: it refuses a NUL or invalid text that SQLite stores, and the
# decoders these values aim at are the same on both (the fuzz above runs on both backends).
@pytest.mark.parametrize("target", ["postgres"], indirect=True)
@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_every_parameter_with_every_hostile_value_is_refused_cleanly(target: Target, path: str) -> None:
    base = target.bases[path]
    method = ENDPOINTS[path][-1]
    client = target.browsers.get(path) or target.app.test_client()
    headers = (
        {"Authorization": "Basic " + target.basic} if path in ("/token", "/revoke", "/introspect") else {}
    )
    failures = []
    for name in sorted({*NAMES, *base}):
        for value in SWEEP:
            fields = [f"{quote(k)}={quote(v)}" for k, v in base.items() if k != name] + [f"{name}={value}"]
            encoded = "&".join(fields)
            if method == "GET":
                response = client.get(path, query_string=encoded, headers=headers)
            else:
                response = client.post(
                    path,
                    data=encoded.encode(),
                    content_type="application/x-www-form-urlencoded",
                    headers=headers,
                )
            if response.status_code >= 500 or b"Traceback" in response.get_data():
                failures.append((name, value[:20], response.status_code))
    assert not failures, failures


# -- the server errors the fuzz found, pinned ------------------------------------------------------


@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect"])
def test_repeated_form_fields_without_a_name_are_invalid_request(target: Target, path: str) -> None:
    # Two multipart parts whose names do not parse reached the repeated-parameter check as None,
    # which sorting beside a string name raised (found by the fuzz on both backends).
    part = 'Content-Disposition: form-data; name="{}"\r\n\r\n\r\n'
    body = "".join("--hawiya\r\n" + part.format(name) for name in ("scope", "\n", "\n", "scope"))
    response = target.app.test_client().post(
        path, data=(body + "--hawiya--\r\n").encode(), content_type="multipart/form-data; boundary=hawiya"
    )
    assert response.status_code == 400
    assert response.json is not None and response.json["error"] == "invalid_request"


@pytest.mark.parametrize("path", ["/signin", "/consent", "/signin/factor", "/account/reauth"])
def test_a_form_field_without_a_name_is_a_csrf_refusal(target: Target, path: str) -> None:
    # A multipart part whose name does not parse reached Flask-WTF as None and raised.
    response = target.app.test_client().post(
        path,
        data=b'--hawiya\r\nContent-Disposition: form-data; name="\n"\r\n\r\n\r\n--hawiya--\r\n',
        content_type="multipart/form-data; boundary=hawiya",
    )
    assert response.status_code == 400
    assert b"csrf_failed" in response.get_data()


@pytest.mark.parametrize(
    "header", ["Basic ", "Basic /w==", "Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode()]
)
@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect"])
def test_malformed_basic_credentials_are_invalid_client(target: Target, path: str, header: str) -> None:
    # Authlib's Basic parser raised on a bare "Basic " and on credentials that are not UTF-8.
    response = target.app.test_client().post(
        path, data={"grant_type": "client_credentials", "token": "t"}, headers={"Authorization": header}
    )
    assert response.status_code == 401
    assert response.json is not None and response.json["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("response_type", "\x1f"),
        ("response_type", 'code"'),
        ("response_type", "é"),
        ("redirect_uri", 'http://127.0.0.1:9001/callback"'),
        ("redirect_uri", "http://127.0.0.1:9001/é"),
    ],
)
def test_parameters_authlib_cannot_echo_are_an_error_page(target: Target, name: str, value: str) -> None:
    # Authlib echoes these into error descriptions and refuses characters RFC 6749 4.1.2.1 forbids.
    query = {**target.bases["/authorize"], name: value}
    response = target.app.test_client().get("/authorize", query_string=query)
    assert response.status_code == 400
    assert "Location" not in response.headers


@pytest.mark.parametrize("resource", ['https://api.example.test/"', "https://api.example.test/é", "\x1f"])
def test_an_unregistered_resource_with_odd_characters_is_invalid_target(
    target: Target, resource: str
) -> None:
    response = target.app.test_client().post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "records:read", "resource": resource},
        headers={"Authorization": "Basic " + target.basic},
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json is not None and response.json["error"] == "invalid_target"
