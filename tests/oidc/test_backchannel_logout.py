"""OpenID Connect Back-Channel Logout 1.0 (idp/oidc/backchannel.py): when a person's SSO session
ends, every agency that received tokens in it and registered a ``backchannel_logout_uri`` gets a
signed logout token (section 2.4) POSTed to that URI (section 2.5), by a worker, with retries.

The agencies' receivers are small WSGI apps on real loopback ports that record what they get; the
tokens are checked with PyJWT against Hawiya's published keys, as an agency would. Time is a frozen
clock, and the worker is driven pass by pass (``run_once``) except where the in-process worker
itself is the point. The last tests run the demo agency of hawiya_rp against a live Hawiya.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import requests
from flask import Flask
from werkzeug.serving import BaseWSGIServer

from idp.app import create_app
from idp.authn.results import AuthResult
from idp.clock import FrozenClock
from idp.keys.sealing import create_master_key_file
from idp.oidc.backchannel import BACKOFF, LOGOUT_EVENT, TOKEN_LIFETIME
from idp.registry import Registry
from idp.settings import Settings
from tests.conftest import (
    BOTH_BACKENDS,
    PASSWORD,
    Backend,
    LiveServer,
    World,
    free_port,
    initialised,
    make_settings,
    populate,
)
from tests.rp.test_flask_integration import load_example, serve, session_cookie, sign_in
from tests.support.agency import Agency, jwt_claims
from tests.support.audit import audit_events
from tests.support.cli import new_instance, succeeded
from tests.support.flask_person import FlaskPerson
from tests.support.person import Person, hidden_fields

#: Every claim a logout token must carry (section 2.4; Hawiya always sends both sid and sub).
REQUIRED = ["iss", "aud", "iat", "exp", "jti", "events", "sid", "sub"]


# -- the agencies' receivers ---------------------------------------------------------------------


@dataclass
class Receiver:
    """An agency's back-channel logout endpoint: answers ``statuses`` in turn (the last repeats),
    after ``hang`` seconds if asked to, and records every request it gets."""

    url: str
    statuses: list[int]
    hang: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode()
        self.received.append(
            {
                "method": environ["REQUEST_METHOD"],
                "content_type": environ.get("CONTENT_TYPE", ""),
                "form": {name: values[0] for name, values in parse_qs(body).items()},
            }
        )
        self.arrived.set()
        if self.hang:
            self.release.wait(self.hang)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        start_response(f"{status} Answer", [("Content-Type", "text/plain"), ("Cache-Control", "no-store")])
        return [b""]

    @property
    def tokens(self) -> list[str]:
        """The logout tokens received, in order."""
        return [request["form"]["logout_token"] for request in self.received]


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    """Start receivers on free loopback ports: ``receivers(500, 200)``, ``receivers(hang=5)``."""
    running: list[tuple[Receiver, BaseWSGIServer, threading.Thread]] = []

    def start(*statuses: int, hang: float = 0.0) -> Receiver:
        port = free_port()
        receiver = Receiver(f"http://127.0.0.1:{port}/backchannel-logout", list(statuses or (200,)), hang)
        running.append((receiver, *serve(receiver, port)))
        return receiver

    yield start
    for receiver, server, thread in running:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def nobody_listening() -> str:
    """A back-channel URI on a loopback port nothing listens on (the agency is down)."""
    return f"http://127.0.0.1:{free_port()}/backchannel-logout"


# -- the IdP, the agencies, the person -----------------------------------------------------------


@pytest.fixture
def app(registry: Registry) -> Flask:
    """The IdP without its background threads: the tests drive the worker themselves."""
    application = create_app(registry=registry, start_schedule=False)
    application.testing = True
    return application


@pytest.fixture
def person(app: Flask, world: World) -> FlaskPerson:
    """The citizen at a browser."""
    return FlaskPerson(app, "citizen", PASSWORD)


def register(app: Flask, registry: Registry, backchannel_logout_uri: str | None, **extra: Any) -> Agency:
    """An agency that signs people in, told of logouts at ``backchannel_logout_uri``."""
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    new = registry.clients.create(
        name=f"Agency {redirect_uri}",
        redirect_uris=[redirect_uri],
        scope="openid profile",
        backchannel_logout_uri=backchannel_logout_uri,
        **extra,
    )
    return Agency(app, new.client.client_id, new.client_secret, redirect_uri)


def sign_out(person: FlaskPerson) -> float:
    """The person presses "Sign out" on Hawiya's home page; how long Hawiya took to answer."""
    fields = hidden_fields(person.get("/").get_data(as_text=True))
    started = time.monotonic()
    response = person.post("/signout", {"csrf_token": fields["csrf_token"]})
    took = time.monotonic() - started
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    assert person.get("/").get_data(as_text=True).count('action="/signout"') == 0  # signed out
    return took


def verified(app: Flask, registry: Registry, token: str, agency: Agency, alg: str) -> dict[str, Any]:
    """The logout token's claims, checked by PyJWT against Hawiya's published keys as ``agency``."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "logout+jwt"  # 2.4: explicitly typed
    assert header["alg"] == alg  # the agency's registered ID-token algorithm
    jwks = app.test_client().get("/jwks.json").get_json()
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=[alg],
        audience=agency.client_id,
        issuer=registry.settings.issuer,
        options={"require": REQUIRED},
    )
    return claims


# -- delivery ------------------------------------------------------------------------------------


@BOTH_BACKENDS
def test_each_agency_of_the_session_gets_a_valid_logout_token(
    app: Flask,
    registry: Registry,
    person: FlaskPerson,
    receivers: Callable[..., Receiver],
) -> None:
    permits_receiver, business_receiver = receivers(200), receivers(204)
    permits = register(app, registry, permits_receiver.url, id_token_alg="ES256")
    business = register(
        app, registry, business_receiver.url, id_token_alg="RS256", sector_identifier="biz.example"
    )
    silent = register(app, registry, None)  # registered no back-channel URI: not told
    signed_in = {
        agency.client_id: agency.sign_in(person, "openid profile") for agency in (permits, business, silent)
    }
    id_tokens = {client_id: jwt_claims(tokens["id_token"]) for client_id, tokens in signed_in.items()}

    sign_out(person)
    assert permits_receiver.received == business_receiver.received == []  # queued, not yet sent

    done = registry.backchannel.run_once()
    assert sorted((d.job.client_id, d.outcome, d.attempt) for d in done) == sorted(
        [(permits.client_id, "delivered", 1), (business.client_id, "delivered", 1)]
    )
    subs = set()
    for receiver, agency, alg in (
        (permits_receiver, permits, "ES256"),
        (business_receiver, business, "RS256"),
    ):
        (request,) = receiver.received
        assert request["method"] == "POST"
        assert request["content_type"] == "application/x-www-form-urlencoded"
        assert list(request["form"]) == ["logout_token"]
        claims = verified(app, registry, request["form"]["logout_token"], agency, alg)
        id_token = id_tokens[agency.client_id]
        assert claims["sid"] == id_token["sid"]  # the session the agency's ID token named
        assert claims["sub"] == id_token["sub"]  # the pairwise sub this agency knows the person by
        assert claims["events"] == {LOGOUT_EVENT: {}}
        assert "nonce" not in claims  # 2.4: never a nonce
        assert claims["exp"] - claims["iat"] == TOKEN_LIFETIME
        subs.add(claims["sub"])
    assert len(subs) == 2  # two sectors, two pairwise subjects
    assert jwt_claims(permits_receiver.tokens[0])["jti"] != jwt_claims(business_receiver.tokens[0])["jti"]

    delivered = audit_events(registry, "logout.delivered")
    assert sorted(str(e["client_id"]) for e in delivered) == sorted([permits.client_id, business.client_id])
    for event in delivered:
        assert event["subject"] == registry.accounts.by_username("citizen").id
        detail: Any = event["detail"]
        assert detail["sid"] == id_tokens[permits.client_id]["sid"] and detail["reason"] == "signout"
        assert detail["attempt"] == 1 and detail["status"] in (200, 204)
    audited = json.dumps([event["detail"] for event in delivered])
    assert permits_receiver.tokens[0] not in audited and business_receiver.tokens[0] not in audited

    assert registry.backchannel.run_once() == []  # delivered jobs are gone
    assert permits_receiver.received[1:] == business_receiver.received[1:] == []


@BOTH_BACKENDS
def test_an_agency_that_is_down_is_retried_with_backoff_then_given_up(
    app: Flask,
    registry: Registry,
    clock: FrozenClock,
    person: FlaskPerson,
    receivers: Callable[..., Receiver],
) -> None:
    flaky_receiver = receivers(500, 503, 204)  # fails twice, then takes the token
    down = register(app, registry, nobody_listening())
    flaky = register(app, registry, flaky_receiver.url)
    down.sign_in(person, "openid")
    flaky.sign_in(person, "openid")
    sign_out(person)

    def attempts(client: Agency) -> list[tuple[str, int, Any]]:
        return [
            (d.outcome, d.attempt, d.status or d.error) for d in done if d.job.client_id == client.client_id
        ]

    done = registry.backchannel.run_once()
    assert attempts(down) == [("retrying", 1, "ConnectionRefusedError")]
    assert attempts(flaky) == [("retrying", 1, 500)]
    waited = 0
    for attempt, wait in enumerate(BACKOFF, start=2):
        clock.advance(wait - 1)
        assert registry.backchannel.run_once() == [], f"attempt {attempt} came before its wait"
        clock.advance(1)
        done = registry.backchannel.run_once()
        waited += wait
        outcome = "abandoned" if attempt == len(BACKOFF) + 1 else "retrying"
        assert attempts(down) == [(outcome, attempt, "ConnectionRefusedError")], waited
        if attempt == 2:
            assert attempts(flaky) == [("retrying", 2, 503)]
        elif attempt == 3:
            assert attempts(flaky) == [("delivered", 3, 204)]
        else:
            assert attempts(flaky) == []
    assert waited == 5 + 30 + 120 + 600 + 3600  # the last try about 73 minutes after the logout
    clock.advance(24 * 3600)
    assert registry.backchannel.run_once() == []  # given up means gone
    assert len(flaky_receiver.received) == 3

    retrying = [
        e for e in reversed(audit_events(registry, "logout.retrying")) if e["client_id"] == down.client_id
    ]
    assert [(e["detail"]["attempt"], e["detail"]["retry_in"]) for e in retrying] == [
        (1, 5),
        (2, 30),
        (3, 120),
        (4, 600),
        (5, 3600),
    ]
    assert all(e["detail"]["error"] == "ConnectionRefusedError" for e in retrying)
    (abandoned,) = audit_events(registry, "logout.abandoned")
    assert abandoned["client_id"] == down.client_id
    assert abandoned["detail"]["attempt"] == 6
    flaky_audit = [e for e in audit_events(registry, "logout.retrying") if e["client_id"] == flaky.client_id]
    assert sorted(e["detail"]["status"] for e in flaky_audit) == [500, 503]
    assert [e["client_id"] for e in audit_events(registry, "logout.delivered")] == [flaky.client_id]


def test_redirects_are_not_followed_and_fewer_attempts_can_be_configured(
    tmp_path: Path, backend: Backend, clock: FrozenClock, receivers: Callable[..., Receiver]
) -> None:
    target = receivers(200)
    registry = initialised(make_settings(tmp_path, backend, backchannel_logout_attempts=2), clock)
    try:
        app = create_app(registry=registry, start_schedule=False)
        populate(registry)
        # A receiver that redirects elsewhere: the token must not follow it.
        redirecting = receivers(302)
        agency = register(app, registry, redirecting.url)
        person = FlaskPerson(app, "citizen", PASSWORD)
        agency.sign_in(person, "openid")
        sign_out(person)
        assert [(d.outcome, d.status) for d in registry.backchannel.run_once()] == [("retrying", 302)]
        clock.advance(BACKOFF[0])
        assert [(d.outcome, d.status) for d in registry.backchannel.run_once()] == [("abandoned", 302)]
        assert target.received == [] and len(redirecting.received) == 2
    finally:
        registry.close()


def test_a_client_disabled_since_the_logout_is_not_told(
    app: Flask, registry: Registry, person: FlaskPerson, receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers(200)
    agency = register(app, registry, receiver.url)
    agency.sign_in(person, "openid")
    sign_out(person)
    registry.clients.disable(agency.client_id)
    assert [(d.outcome, d.error) for d in registry.backchannel.run_once()] == [("abandoned", "client_gone")]
    assert receiver.received == []
    assert [e["detail"]["error"] for e in audit_events(registry, "logout.abandoned")] == ["client_gone"]


def test_discovery_announces_back_channel_logout_with_sid(app: Flask) -> None:
    metadata = app.test_client().get("/.well-known/openid-configuration").get_json()
    assert metadata["backchannel_logout_supported"] is True
    assert metadata["backchannel_logout_session_supported"] is True


# -- the person never waits ----------------------------------------------------------------------


@BOTH_BACKENDS
def test_sign_out_returns_at_once_while_the_worker_waits_on_a_hanging_agency(
    tmp_path: Path, backend: Backend, clock: FrozenClock, receivers: Callable[..., Receiver]
) -> None:
    hanging = receivers(200, hang=10)
    registry = initialised(make_settings(tmp_path, backend, backchannel_logout_timeout=1), clock)
    try:
        app = create_app(registry=registry)  # with the in-process worker, as served
        worker = app.extensions["hawiya.logout_worker"]
        assert worker.running
        populate(registry)
        agency = register(app, registry, hanging.url)
        person = FlaskPerson(app, "citizen", PASSWORD)
        agency.sign_in(person, "openid")

        took = sign_out(person)

        assert took < 0.9, f"sign-out took {took:.2f} s"  # below the 1 s the agency is given
        assert hanging.arrived.wait(5), "the worker did not start the delivery at once"
        # The worker gives the agency one second, then moves on and retries later.
        deadline = time.monotonic() + 5
        while not audit_events(registry, "logout.retrying") and time.monotonic() < deadline:
            time.sleep(0.05)
        (retrying,) = audit_events(registry, "logout.retrying")
        assert retrying["detail"]["error"] == "TimeoutError"
    finally:
        hanging.release.set()
        registry.close()
    assert not worker.running  # close() stopped it


# -- the command line -----------------------------------------------------------------------------


def test_the_logout_worker_command_delivers_what_a_server_queued_and_the_demo_registers_receivers(
    tmp_path: Path, receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers(200)
    instance = new_instance(tmp_path)
    create_master_key_file(instance.master_key_file)
    registry = initialised(Settings.from_env(instance.env))  # `hawiya init`, with the tests' key pool
    registry.close()
    instance.ok("demo")
    registry = instance.registry()
    try:
        for cid, port in (("demo-permits", 8101), ("demo-business", 8102)):
            demo = registry.clients.show(cid)
            assert demo.backchannel_logout_uri == f"http://127.0.0.1:{port}/auth/backchannel-logout"
            assert demo.post_logout_redirect_uris == (f"http://127.0.0.1:{port}/",)
        client = registry.clients.create(
            name="Agency", redirect_uris=["http://127.0.0.1:9/cb"], backchannel_logout_uri=receiver.url
        )
        person = registry.accounts.by_username("citizen")
        assert person is not None
        handle, session = registry.sessions.start(AuthResult(person.id, int(time.time())))
        session = registry.sessions.add_client(handle, session, client.client.client_id)
        registry.backchannel.session_ended(session, "signout")  # as a server process would, at logout
    finally:
        registry.close()

    delivered = succeeded(instance.run_process("logout-worker", "--once"))  # the real entry point
    assert delivered.strip() == "1 delivered, 0 to retry, 0 given up"
    (token,) = receiver.tokens
    assert jwt_claims(token)["sid"] == session.sid
    registry = instance.registry()
    try:
        assert registry.backchannel.run_once() == []  # the command's delivery emptied the shared queue
        (delivered,) = audit_events(registry, "logout.delivered")
        assert delivered["client_id"] == client.client.client_id
    finally:
        registry.close()


# -- the RP library's receiver, against a live Hawiya ---------------------------------------------


@dataclass
class DemoAgency:
    """A demo agency of hawiya_rp served on 127.0.0.1, and the logout tokens that reached it."""

    url: str
    client_id: str
    sessions: Path
    tokens: list[str]
    #: Client secrets of the demos that have one (to try a refresh token at /token).
    secrets: dict[str, str]

    def session_files(self) -> list[Path]:
        """Its stored sign-ins."""
        return [
            path
            for path in (self.sessions / "sessions").glob("*.json")
            if json.loads(path.read_text())["data"].get("kind") == "session"
        ]


def recording(app: Any, tokens: list[str]) -> Callable[..., Iterable[bytes]]:
    """``app`` behind a middleware that keeps a copy of every logout token POSTed to it."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/auth/backchannel-logout":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            tokens.extend(parse_qs(body.decode()).get("logout_token", []))
            environ["wsgi.input"] = BytesIO(body)
        result: Iterable[bytes] = app(environ, start_response)
        return result

    return middleware


@pytest.fixture
def demo_agencies(live_server: LiveServer, tmp_path: Path) -> Iterator[tuple[DemoAgency, DemoAgency]]:
    """The permits (client secret) and business (private_key_jwt) demos, registered with their
    back-channel receivers as `hawiya demo` does, served on 127.0.0.1."""
    from hawiya_rp.keys import generate_private_jwk, public_jwk

    registry = live_server.world.registry
    servers = []
    agencies = []
    secrets_by_client: dict[str, str] = {}
    key = generate_private_jwk("ES256")
    key_file = tmp_path / "business-key.json"
    key_file.write_text(json.dumps(key))
    org = registry.organisations.create(registration_number="CR-100200", name="Gulf Trading", actor="test")
    registry.organisations.grant(org.id, live_server.world.citizen_id, "owner", by=None, operator="test")
    for name, extra in (
        (
            "permits",
            {
                "auth_method": "client_secret_basic",
                "scope": "openid profile",
                "grant_types": ("authorization_code", "refresh_token"),
            },
        ),
        (
            "business",
            {
                "auth_method": "private_key_jwt",
                "jwks": {"keys": [public_jwk(key)]},
                "scope": "openid profile business",
            },
        ),
    ):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        new = registry.clients.create(
            name=name,
            redirect_uris=[f"{url}/auth/callback"],
            post_logout_redirect_uris=[f"{url}/"],
            backchannel_logout_uri=f"{url}/auth/backchannel-logout",
            client_id=f"demo-{name}",
            **extra,
        )
        config = {
            "HAWIYA_ISSUER": live_server.url,
            "HAWIYA_CLIENT_ID": f"demo-{name}",
            "HAWIYA_REDIRECT_URI": f"{url}/auth/callback",
            "HAWIYA_STORE": str(tmp_path / f"{name}-sessions"),
            "HAWIYA_POST_LOGOUT_REDIRECT_URI": f"{url}/",
        }
        if new.client_secret:
            config["HAWIYA_CLIENT_SECRET"] = new.client_secret
            secrets_by_client[f"demo-{name}"] = new.client_secret
        else:
            config["HAWIYA_PRIVATE_JWK_FILE"] = str(key_file)
        agency = DemoAgency(url, f"demo-{name}", tmp_path / f"{name}-sessions", [], secrets_by_client)
        demo = load_example(name).create_app(config)
        servers.append(serve(recording(demo, agency.tokens), port))
        agencies.append(agency)
    try:
        yield agencies[0], agencies[1]
    finally:
        for server, thread in servers:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def test_hawiya_rp_ends_its_sessions_on_the_real_logout_token_and_refuses_a_replay(
    live_server: LiveServer, demo_agencies: tuple[DemoAgency, DemoAgency]
) -> None:
    permits, business = demo_agencies
    person = Person(live_server.url, "citizen", PASSWORD)
    for agency, path in ((permits, "/permits"), (business, "/company")):
        sign_in(person, agency, path)
        assert person.page(f"{agency.url}{path}").status_code == 200
    sid = json.loads((permits.sessions / "sessions" / f"{session_cookie(person, permits)}.json").read_text())[
        "data"
    ]["sid"]

    home = person.http.get(f"{live_server.url}/", timeout=10)
    out = person.http.post(
        f"{live_server.url}/signout",
        data={"csrf_token": hidden_fields(home.text)["csrf_token"]},
        allow_redirects=False,
        timeout=10,
    )
    assert out.status_code == 303

    # The server's own worker delivers, in the background, to both agencies.
    deadline = time.monotonic() + 10
    while (permits.session_files() or business.session_files()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert permits.session_files() == [] and business.session_files() == []
    assert person.page(f"{permits.url}/permits").status_code == 302  # signed out there too
    assert person.page(f"{business.url}/company").status_code == 302
    (token,) = permits.tokens
    assert jwt_claims(token)["sid"] == sid

    replayed = requests.post(
        f"{permits.url}/auth/backchannel-logout", data={"logout_token": token}, timeout=10
    )
    assert replayed.status_code == 400 and replayed.json() == {"error": "invalid_request"}
    registry = live_server.world.registry
    assert sorted(str(e["client_id"]) for e in audit_events(registry, "logout.delivered")) == [
        "demo-business",
        "demo-permits",
    ]


def test_logging_out_at_one_agency_ends_the_other_and_kills_the_first_ones_refresh_token(
    live_server: LiveServer, demo_agencies: tuple[DemoAgency, DemoAgency]
) -> None:
    permits, business = demo_agencies
    person = Person(live_server.url, "citizen", PASSWORD)
    for agency, path in ((permits, "/permits"), (business, "/company")):
        sign_in(person, agency, path)
    stored = json.loads(
        (permits.sessions / "sessions" / f"{session_cookie(person, permits)}.json").read_text()
    )
    refresh_token = stored["data"]["tokens"]["refresh_token"]
    assert refresh_token

    # RP-initiated logout at the permits service (its sign-out form, posted with its token): Hawiya
    # signs out at once (the hint names this very session) and sends the browser back to the
    # registered address.
    form = hidden_fields(person.page(f"{permits.url}/permits").text)
    back = person.http.post(f"{permits.url}/auth/logout", data=form, timeout=10)
    assert back.status_code == 200 and back.url == f"{permits.url}/"

    deadline = time.monotonic() + 10
    while business.session_files() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert business.session_files() == []  # the other agency was told, and ended its session
    assert person.page(f"{business.url}/company").status_code == 302
    (token,) = business.tokens
    assert jwt_claims(token)["sid"] == stored["data"]["tokens"]["claims"]["sid"]

    dead = requests.post(
        f"{live_server.url}/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(permits.client_id, permits.secrets[permits.client_id]),
        timeout=10,
    )
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"
