"""First-party clients and sector identifier URIs.

A government service staff marked first-party gets no consent page: consent is implied, and still
recorded, audited (``implied``), shown on /account and withdrawable; ``prompt=consent`` still asks.
A client registered with a sector identifier URI (OIDC Core 8.1) must have every redirect URI
listed in the JSON array that URI serves; the URI's host becomes its sector, so clients of one
sector share ``sub`` and clients of different sectors do not.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from idp.errors import InvalidInput, NotFound
from idp.registry import Registry
from tests.conftest import PASSWORD, World, free_port
from tests.support.agency import Agency, jwt_claims, userinfo_status
from tests.support.audit import audit_events
from tests.support.browser import serve
from tests.support.cli import Instance, assert_clean_error, new_instance
from tests.support.flask_person import FlaskPerson, authorize_url, pkce_pair, query_of
from tests.support.mfa import MfaPerson, open_account, submit

SCOPE = "openid profile email offline_access"


def _consents_section(html: str) -> str:
    found = re.search(r'<ul class="consents" id="consents">(.*?)</ul>\s*<p class="muted">', html, re.S)
    assert found, "no consents listed"
    return found.group(1)


def detail_of(event: dict[str, object]) -> dict[str, Any]:
    """An audit event's detail."""
    detail = event["detail"]
    assert isinstance(detail, dict)
    return detail


def visited(person: FlaskPerson, path: str) -> bool:
    return any(page.request.path == path for page in person.pages)


def register(
    app: Flask, registry: Registry, *, port: int, first_party: bool = False, **options: Any
) -> Agency:
    """A confidential client (code + refresh) through the service, as the CLI would make it."""
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    new = registry.clients.create(
        name=f"Government service {port}",
        agency="Civil Service Commission",
        redirect_uris=[redirect_uri],
        grant_types=("authorization_code", "refresh_token"),
        scope=SCOPE,
        first_party=first_party,
        **options,
    )
    return Agency(app, new.client.client_id, new.client_secret, redirect_uri)


def request_url(agency: Agency, **extra: str) -> tuple[str, str]:
    """(authorization request URL, its PKCE verifier)."""
    verifier, challenge = pkce_pair()
    url = authorize_url(
        response_type="code",
        client_id=agency.client_id,
        redirect_uri=agency.redirect_uri,
        scope=extra.pop("scope", SCOPE),
        state="st",
        code_challenge=challenge,
        code_challenge_method="S256",
        **extra,
    )
    return url, verifier


# -- first-party clients -----------------------------------------------------------------------------


def test_a_first_party_client_gets_implied_consent_recorded_shown_and_withdrawable(
    app: Flask, registry: Registry, citizen: MfaPerson
) -> None:
    service = register(app, registry, port=9601, first_party=True)
    tokens = service.sign_in(citizen, SCOPE)
    assert not visited(citizen, "/consent"), "a first-party client showed the consent page"
    info = app.test_client().get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.json is not None and {"email", "name"} <= set(info.json)

    [granted] = audit_events(registry, "consent.granted")
    assert granted["client_id"] == service.client_id and granted["subject"] == citizen_account(registry)
    assert detail_of(granted) == {
        "scopes": ["email", "offline_access", "profile"],
        "claims": [],
        "implied": True,
    }

    page = open_account(citizen)
    listed = _consents_section(page.get_data(as_text=True))
    assert "Government service 9601" in listed
    assert "Your email address" in listed and "Access while you are signed out" in listed

    done = submit(citizen, page, f"/account/consents/{service.client_id}/withdraw")
    assert done.status_code == 303
    [withdrawn] = audit_events(registry, "consent.withdrawn")
    assert withdrawn["client_id"] == service.client_id
    assert service.refresh(tokens["refresh_token"]).status_code == 400
    assert userinfo_status(app, tokens["access_token"]) == 401

    # Signing in again implies (and records) consent afresh, still without a page.
    seen = len(citizen.pages)
    service.sign_in(citizen, SCOPE)
    assert "/consent" not in [p.request.path for p in citizen.pages[seen:]]
    assert len(audit_events(registry, "consent.granted")) == 2


def citizen_account(registry: Registry) -> str:
    """The citizen's account id (audit subjects are account ids, not pairwise subjects)."""
    person = registry.accounts.by_username("citizen")
    assert person is not None
    return person.id


def test_prompt_consent_still_shows_the_page_to_a_first_party_client(
    app: Flask, registry: Registry, world: World
) -> None:
    service = register(app, registry, port=9602, first_party=True)
    person = FlaskPerson(app, "citizen", PASSWORD)
    url, _verifier = request_url(service, prompt="consent")
    back = person.go(url)
    assert visited(person, "/consent")
    assert "code" in query_of(back)
    [granted] = audit_events(registry, "consent.granted")
    assert detail_of(granted)["implied"] is False  # the person approved on the page

    # And a refusal there is a refusal.
    url, _verifier = request_url(service, prompt="consent")
    assert query_of(person.go(url, consent="deny"))["error"] == ["access_denied"]


def test_prompt_none_succeeds_at_a_first_party_client_without_earlier_consent(
    app: Flask, registry: Registry, world: World
) -> None:
    other = register(app, registry, port=9603)
    service = register(app, registry, port=9604, first_party=True)
    person = FlaskPerson(app, "citizen", PASSWORD)
    other.sign_in(person, "openid")  # an SSO session, no consent for ``service``
    url, verifier = request_url(service, prompt="none")
    response = person.get(url)
    assert response.status_code == 302 and response.location is not None
    params = query_of(response.location)
    assert "error" not in params, params
    assert service.redeem(params["code"][0], verifier).status_code == 200
    assert detail_of(audit_events(registry, "consent.granted")[0])["implied"] is True


def test_marking_a_client_first_party_is_audited_and_takes_effect(
    app: Flask, registry: Registry, world: World
) -> None:
    service = register(app, registry, port=9605)
    person = FlaskPerson(app, "citizen", PASSWORD)
    service.sign_in(person, "openid profile")
    assert visited(person, "/consent")

    updated = registry.clients.set_first_party(service.client_id, True, actor="operator-1")
    assert updated.first_party is True and registry.clients.show(service.client_id).first_party is True
    [event] = audit_events(registry, "client.updated")
    assert event["client_id"] == service.client_id and event["detail"] == {"first_party": True}

    person.pages.clear()
    service.sign_in(person, "openid profile email")  # email is new: implied, not asked
    assert not visited(person, "/consent")
    assert audit_events(registry, "consent.granted")[0]["detail"] == {
        "scopes": ["email"],
        "claims": [],
        "implied": True,
    }

    registry.clients.set_first_party(service.client_id, False, actor="operator-1")
    assert audit_events(registry, "client.updated")[0]["detail"] == {"first_party": False}  # newest first
    person.pages.clear()
    service.sign_in(person, SCOPE)  # offline_access is new: asked again
    assert visited(person, "/consent")

    with pytest.raises(NotFound):
        registry.clients.set_first_party("no-such-client", True, actor="operator-1")


# -- sector identifier URIs --------------------------------------------------------------------------


class SectorDocuments:
    """A loopback web server serving sector identifier documents: ``documents[path] = body``."""

    def __init__(self) -> None:
        self.documents: dict[str, tuple[int, bytes]] = {}
        self.port = free_port()
        self.requests: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        self.requests.append(path)
        status, body = self.documents.get(path, (404, b"not found"))
        start_response(f"{status} X", [("Content-Type", "application/json")])
        return [body]

    def publish(self, path: str, document: Any, status: int = 200) -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.documents[path] = (status, body)
        return self.url(path)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def sector_server() -> Iterator[SectorDocuments]:
    documents = SectorDocuments()
    server, thread = serve(documents, "127.0.0.1", documents.port)
    try:
        yield documents
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _client(registry: Registry, redirect_uri: str, sector_uri: str) -> str:
    new = registry.clients.create(
        name="Sector client",
        redirect_uris=[redirect_uri],
        auth_method="none",
        scope="openid",
        sector_identifier_uri=sector_uri,
    )
    return new.client.client_id


def _refusal(registry: Registry, redirect_uri: str, sector_uri: str) -> str:
    """The message of the InvalidInput registering such a client raises (nothing else kept)."""
    with pytest.raises(InvalidInput) as refused:
        _client(registry, redirect_uri, sector_uri)
    return refused.value.message


def test_clients_of_one_sector_identifier_uri_share_the_subject(
    app: Flask, registry: Registry, world: World, sector_server: SectorDocuments
) -> None:
    web, mobile, other = (
        "http://127.0.0.1:9611/callback",
        "http://localhost:9612/callback",
        "http://127.0.0.1:9613/callback",
    )
    sector_server.publish("/health.json", [web, mobile, "https://health.example/cb"])
    sector_server.publish("/other.json", [other])
    # Hosts name the sector: the same document under "localhost" and under "127.0.0.1" differs.
    shared = sector_server.url("/health.json", host="localhost")
    web_id = _client(registry, web, shared)
    mobile_id = _client(registry, mobile, shared)  # on another host than ``web``: same sector
    other_id = _client(registry, other, sector_server.url("/other.json"))
    assert registry.clients.show(web_id).sector_identifier == "localhost"
    assert registry.clients.show(other_id).sector_identifier == "127.0.0.1"

    person = FlaskPerson(app, "citizen", PASSWORD)
    subjects = {}
    for client_id, redirect_uri in ((web_id, web), (mobile_id, mobile), (other_id, other)):
        verifier, challenge = pkce_pair()
        back = person.go(
            authorize_url(
                response_type="code",
                client_id=client_id,
                redirect_uri=redirect_uri,
                scope="openid",
                state="st",
                code_challenge=challenge,
                code_challenge_method="S256",
            )
        )
        code = query_of(back)["code"][0]
        response = app.test_client().post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
                "client_id": client_id,
            },
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.json is not None
        subjects[client_id] = jwt_claims(response.json["id_token"])["sub"]
        info = app.test_client().get(
            "/userinfo", headers={"Authorization": f"Bearer {response.json['access_token']}"}
        )
        assert info.json is not None and info.json["sub"] == subjects[client_id]
    assert subjects[web_id] == subjects[mobile_id]
    assert subjects[other_id] != subjects[web_id]
    assert world.citizen_id not in subjects.values()


@pytest.mark.parametrize(
    ("document", "status", "message"),
    [
        ({"redirect_uris": ["http://127.0.0.1:9621/callback"]}, 200, "JSON array"),
        ([1, 2], 200, "JSON array"),
        (b"<html>not json</html>", 200, "could not be read"),
        (["http://127.0.0.1:9621/callback"], 404, "could not be read"),
        (["http://127.0.0.1:9999/elsewhere"], 200, "is not listed"),
    ],
    ids=["object", "not_strings", "not_json", "http_404", "unlisted_redirect_uri"],
)
def test_a_sector_document_that_does_not_list_the_redirect_uris_is_refused(
    registry: Registry, sector_server: SectorDocuments, document: Any, status: int, message: str
) -> None:
    url = sector_server.publish("/sector.json", document, status)
    assert message in _refusal(registry, "http://127.0.0.1:9621/callback", url)
    assert sector_server.requests == ["/sector.json"]
    assert audit_events(registry, "client.created") == []
    # Nothing of the fetch is left open (an error response's socket included): collecting now
    # makes a leaked socket's ResourceWarning fail this test rather than whichever runs next.
    gc.collect()


def test_an_unreachable_or_non_https_sector_uri_is_a_clean_refusal(registry: Registry) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}/sector.json"  # nothing listens there
    assert "could not be read" in _refusal(registry, "http://127.0.0.1:9622/callback", unreachable)
    for bad in ("http://sector.example/cb.json", "ftp://127.0.0.1/x.json", "not a url"):
        assert "must be https" in _refusal(registry, "http://127.0.0.1:9622/callback", bad), bad
    assert audit_events(registry, "client.created") == []


# -- the command line --------------------------------------------------------------------------------


def test_the_cli_marks_clients_first_party_and_takes_a_sector_identifier_uri(
    tmp_path: Path, sector_server: SectorDocuments
) -> None:
    hawiya: Instance = new_instance(tmp_path)
    hawiya.ok("init")
    redirect = "http://127.0.0.1:9631/callback"
    sector_uri = sector_server.publish("/cli.json", [redirect])

    created = hawiya.json(
        "clients", "create", "--name", "Civil Service Portal", "--redirect-uri", redirect,
        "--first-party", "--sector-identifier-uri", sector_uri,
    )  # fmt: skip
    client_id = created["client_id"]
    assert created["first_party"] is True and created["sector_identifier"] == "127.0.0.1"

    assert hawiya.ok("clients", "first-party", client_id, "off").strip() == f"{client_id}: first-party off"
    registry = hawiya.registry()
    try:
        assert registry.clients.show(client_id).first_party is False
        assert [e["detail"] for e in audit_events(registry, "client.updated")] == [{"first_party": False}]
        assert audit_events(registry, "client.updated")[0]["client_id"] == client_id
    finally:
        registry.close()

    assert "no client" in assert_clean_error(hawiya.run("clients", "first-party", "nobody", "on"))
    unlisted = hawiya.run(
        "clients", "create", "--name", "Elsewhere", "--redirect-uri", "http://127.0.0.1:9632/callback",
        "--sector-identifier-uri", sector_uri,
    )  # fmt: skip
    assert "is not listed at the sector identifier URI" in assert_clean_error(unlisted)
