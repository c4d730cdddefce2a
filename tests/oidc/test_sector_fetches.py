"""Fetching a ``sector_identifier_uri`` at registration (OIDC Core 8.1) through the outbound
boundary: no redirect followed, no private address reached when the issuer is not on loopback,
and whoever registers the client learns nothing of why a fetch failed (a refusal that says "HTTP
404" or "connection refused" turns registration into a scanner of the IdP's own network)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from idp.errors import InvalidInput
from idp.registry import Registry
from tests.conftest import Backend, free_port, initialised, make_settings
from tests.support.agency_hosts import AgencyHost, Answer
from tests.support.audit import audit_events

REDIRECT_URI = "http://127.0.0.1:9631/callback"
GENERIC = "the sector identifier URI could not be read"


@pytest.fixture
def host() -> Iterator[AgencyHost]:
    served = AgencyHost()
    yield served
    served.close()


def register(registry: Registry, sector_uri: str) -> str:
    return registry.clients.create(
        name="Sector client",
        redirect_uris=[REDIRECT_URI],
        auth_method="none",
        scope="openid",
        sector_identifier_uri=sector_uri,
    ).client.client_id


def refusal(registry: Registry, sector_uri: str) -> str:
    with pytest.raises(InvalidInput) as refused:
        register(registry, sector_uri)
    return refused.value.message


def test_a_sector_uri_that_redirects_is_refused(registry: Registry, host: AgencyHost) -> None:
    listed = host.answer("/listed.json", Answer(body=json.dumps([REDIRECT_URI]).encode()))
    moved = host.answer("/moved.json", Answer(302, b"", {"Location": listed}))
    assert refusal(registry, moved) == GENERIC
    assert host.fetches("/moved.json") == 1
    assert host.fetches("/listed.json") == 0  # the old code followed and registered the client
    assert audit_events(registry, "client.created") == []


def test_why_a_fetch_failed_goes_to_the_log_never_to_the_registrant(
    registry: Registry, host: AgencyHost, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="idp.oidc.clients")
    failures = {
        "missing": host.url("/missing.json"),  # 404
        "error": host.answer("/error.json", Answer(500, b"oops")),
        "redirect": host.answer("/moved.json", Answer(301, b"", {"Location": "http://10.0.0.1/"})),
        "closed port": f"http://127.0.0.1:{free_port()}/sector.json",
        "too large": host.answer("/big.json", Answer(body=b"[" + b" " * (64 * 1024) + b"]")),
    }
    messages = {what: refusal(registry, url) for what, url in failures.items()}
    # One message whatever answered (or did not) at the URL: nothing to tell ports or hosts apart.
    assert set(messages.values()) == {GENERIC}, messages
    logged = " ".join(record.getMessage() for record in caplog.records)
    for reason in ("HTTP 404", "HTTP 500", "redirect", "ConnectionRefusedError", "too_large"):
        assert reason in logged, reason


def test_a_sector_uri_on_a_private_address_is_not_fetched_when_the_issuer_is_not_loopback(
    tmp_path: Path, backend: Backend, host: AgencyHost
) -> None:
    registry = initialised(make_settings(tmp_path, backend, issuer="https://idp.example"))
    try:
        host.answer("/sector.json", Answer(body=json.dumps([REDIRECT_URI]).encode()))
        for where in ("localhost", "127.0.0.1"):
            assert refusal(registry, host.url("/sector.json", host=where)) == GENERIC
        assert host.connections == 0  # the old code fetched it and registered the client
    finally:
        registry.close()
