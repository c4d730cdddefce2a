"""A client's jwks_uri as an attacker would use it: an unauthenticated ``POST /token`` naming a
``private_key_jwt`` client makes Hawiya fetch that client's keys. The fetch goes through the outbound
boundary (agency policy) and the per-process key cache: a slow host holds a request at most
``client_jwks_wait`` seconds, one fetch per URL runs at a time, failures are remembered with backoff,
a redirect is never followed, a private address is never reached, and the keys are refreshed
ahead of their expiry outside requests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from socket import socket
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests
from flask import Flask

from idp.app import create_app
from idp.clock import FrozenClock
from idp.registry import Registry
from idp.settings import Settings
from tests.conftest import Backend, free_port, initialised, make_settings
from tests.oidc.test_private_key_jwt import (
    ASSERTION_TYPE,
    api_client,
    assert_refused,
    assert_tokens,
    assertion,
    client_credentials,
    jwks_of,
    new_key,
)
from tests.support.agency_hosts import AgencyHost, Answer

#: Short bounds, so the suite stays fast: a request waits 0.3 s for keys, a fetch takes 1 s at most.
WAIT, DEADLINE = 0.3, 1.0


@pytest.fixture
def settings(tmp_path: Path, backend: Backend) -> Settings:
    return make_settings(tmp_path, backend, client_jwks_wait=WAIT, outbound_deadline=DEADLINE)


@pytest.fixture
def host() -> Iterator[AgencyHost]:
    served = AgencyHost()
    yield served
    served.close()


def keys_answer(*keys: Any, cache_control: str = "") -> Answer:
    headers = {"Content-Type": "application/json"}
    if cache_control:
        headers["Cache-Control"] = cache_control
    return Answer(body=json.dumps(jwks_of(*keys)).encode(), headers=headers)


#: A JWK Set sent one byte every 0.1 s: 6 s in all, past the 1 s deadline (the old code, with its
#: 5 s timeout per read, waited for all of it inside the request).
SLOW_BODY = b'{"keys": []}' + b" " * 48


def test_failures_are_remembered_with_backoff(
    app: Flask, registry: Registry, clock: FrozenClock, host: AgencyHost
) -> None:
    url = host.answer("/jwks", Answer(500, b"down"))
    client_id = api_client(registry, jwks_uri=url)
    key = new_key()
    for _ in range(3):
        refused = assertion(client_id, key, clock)
        assert_refused(client_credentials(app, refused), registry, client_id, refused, "jwks_uri")
    assert host.fetches("/jwks") == 1  # the old code fetched three times

    backoff = registry.settings.client_jwks_backoff
    clock.advance(backoff + 1)
    assert client_credentials(app, assertion(client_id, key, clock)).status_code == 401
    assert host.fetches("/jwks") == 2
    clock.advance(backoff + 1)  # the second failure doubled the wait
    assert client_credentials(app, assertion(client_id, key, clock)).status_code == 401
    assert host.fetches("/jwks") == 2

    host.answer("/jwks", keys_answer(key))  # the agency is back
    clock.advance(backoff + 1)
    assert_tokens(client_credentials(app, assertion(client_id, key, clock)))
    assert host.fetches("/jwks") == 3


def test_a_redirecting_jwks_host_is_not_followed(
    app: Flask, registry: Registry, clock: FrozenClock, host: AgencyHost
) -> None:
    key = new_key()
    elsewhere = host.answer("/elsewhere.json", keys_answer(key))
    url = host.answer("/jwks", Answer(302, b"", {"Location": elsewhere}))
    client_id = api_client(registry, jwks_uri=url)
    refused = assertion(client_id, key, clock)
    assert_refused(client_credentials(app, refused), registry, client_id, refused, "jwks_uri")
    assert host.fetches("/jwks") == 1
    assert host.fetches("/elsewhere.json") == 0  # the old code followed the 302 and issued tokens


def test_a_jwks_uri_on_loopback_is_not_fetched_when_the_issuer_is_not(
    tmp_path: Path, backend: Backend, clock: FrozenClock, host: AgencyHost
) -> None:
    # Registration accepts http://localhost (for development); fetching it is what the policy
    # refuses when the issuer is a real name: the name resolves to 127.0.0.1, checked and refused.
    issuer = "https://idp.example"
    registry = initialised(
        make_settings(tmp_path, backend, issuer=issuer, client_jwks_wait=WAIT, outbound_deadline=DEADLINE),
        clock,
    )
    try:
        app = create_app(registry=registry, start_schedule=False)
        key = new_key()
        host.answer("/jwks", keys_answer(key))
        for where in ("localhost", "127.0.0.1"):
            client_id = api_client(registry, jwks_uri=host.url("/jwks", host=where))
            refused = assertion(client_id, key, clock, aud=issuer + "/token")
            assert_refused(client_credentials(app, refused), registry, client_id, refused, "jwks_uri")
        assert host.connections == 0  # the old code fetched and issued tokens
    finally:
        registry.close()


def test_concurrent_requests_share_one_fetch_of_a_slow_host(
    app: Flask, registry: Registry, clock: FrozenClock
) -> None:
    slow = AgencyHost(drip=0.1)
    slow.answer("/jwks", Answer(body=SLOW_BODY))
    try:
        client_id = api_client(registry, jwks_uri=slow.url("/jwks"))
        assertions = [assertion(client_id, new_key(), clock) for _ in range(6)]

        def post(client_assertion: str) -> tuple[int, float]:
            started = time.monotonic()
            response = app.test_client().post(
                "/token",
                data={
                    "grant_type": "client_credentials",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": client_assertion,
                },
            )
            return response.status_code, time.monotonic() - started

        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(post, assertions))
    finally:
        slow.close()
    print(f"6 concurrent /token against a dripping host: {[f'{t:.2f}' for _, t in results]} s")
    assert [status for status, _ in results] == [401] * 6
    assert max(took for _, took in results) < WAIT + 2.5  # loose (a loaded machine); the old code: 6 s
    assert slow.fetches("/jwks") == 1  # the old code fetched once per request


def test_keys_are_refreshed_ahead_of_expiry_outside_requests(
    app: Flask, registry: Registry, clock: FrozenClock, host: AgencyHost
) -> None:
    assert app.extensions["hawiya.client_key_refresher"].running
    key = new_key()
    url = host.answer("/jwks", keys_answer(key, cache_control="public, max-age=600"))
    client_id = api_client(registry, jwks_uri=url)
    assert_tokens(client_credentials(app, assertion(client_id, key, clock)))
    assert host.fetches("/jwks") == 1

    cache = registry.client_keys
    clock.advance(500)
    assert cache.refresh_due(10, ahead=30) == 0  # 100 s left: not yet
    clock.advance(80)
    assert cache.refresh_due(10, ahead=30) == 1  # 20 s left: refreshed now, in the cache's thread
    deadline = time.monotonic() + 2
    while host.fetches("/jwks") < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert host.fetches("/jwks") == 2
    clock.advance(100)  # past the first expiry: the refreshed keys serve, no fetch in the request
    assert_tokens(client_credentials(app, assertion(client_id, key, clock)))
    assert host.fetches("/jwks") == 2


def test_max_age_is_honoured_within_bounds(
    app: Flask, registry: Registry, clock: FrozenClock, host: AgencyHost
) -> None:
    settings = registry.settings
    key = new_key()
    url = host.answer("/jwks", keys_answer(key, cache_control="max-age=1"))
    client_id = api_client(registry, jwks_uri=url)
    assert_tokens(client_credentials(app, assertion(client_id, key, clock)))
    clock.advance(settings.client_jwks_min_ttl - 5)  # max-age=1 is raised to the least lifetime
    assert_tokens(client_credentials(app, assertion(client_id, key, clock)))
    assert host.fetches("/jwks") == 1
    clock.advance(10)  # expired: a request with a known kid fetches (and waits briefly for it)
    assert_tokens(client_credentials(app, assertion(client_id, key, clock)))
    assert host.fetches("/jwks") == 2

    host.answer("/jwks", keys_answer(key, cache_control="max-age=99999999"))
    clock.advance(settings.client_jwks_min_ttl + 1)
    assert_tokens(client_credentials(app, assertion(client_id, key, clock)))
    assert host.fetches("/jwks") == 3
    clock.advance(settings.client_jwks_max_ttl + 1)  # a huge max-age is capped at the most
    assert_tokens(client_credentials(app, assertion(client_id, key, clock)))
    assert host.fetches("/jwks") == 4


# -- the figures: a slow agency host and the rest of the service ----------------------------------------


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class PooledServer(WSGIServer):
    """A WSGI server with a fixed pool of threads, like a gunicorn gthread worker's: a request
    that holds a thread keeps every later one waiting once the pool is busy."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool = ThreadPoolExecutor(4, thread_name_prefix="pooled-wsgi")

    def server_close(self) -> None:
        super().server_close()
        self.pool.shutdown(wait=True)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.pool.submit(self._handle, request, client_address)

    def _handle(self, request: socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


def test_a_slow_jwks_host_does_not_stall_the_service(
    tmp_path: Path, backend: Backend, clock: FrozenClock
) -> None:
    port = free_port()
    issuer = f"http://localhost:{port}"
    settings = make_settings(
        tmp_path, backend, issuer=issuer, client_jwks_wait=WAIT, outbound_deadline=DEADLINE
    )
    registry = initialised(settings, clock)
    slow = AgencyHost(drip=0.1)
    slow.answer("/jwks", Answer(body=SLOW_BODY))
    server = make_server("127.0.0.1", port, create_app(registry=registry), PooledServer, _Quiet)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    serving.start()
    try:
        client_id = api_client(registry, jwks_uri=slow.url("/jwks"))
        base = f"http://127.0.0.1:{port}"

        def token() -> tuple[int, float]:
            started = time.monotonic()
            response = requests.post(
                f"{base}/token",
                data={
                    "grant_type": "client_credentials",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": assertion(client_id, new_key(), clock, aud=issuer + "/token"),
                },
                timeout=20,
            )
            return response.status_code, time.monotonic() - started

        with ThreadPoolExecutor(4) as callers:
            tokens = [callers.submit(token) for _ in range(4)]
            time.sleep(0.1)  # the four hold the server's four threads, if anything does
            started = time.monotonic()
            health = requests.get(f"{base}/healthz", timeout=20)
            healthz = time.monotonic() - started
            answered = [future.result() for future in tokens]
    finally:
        server.shutdown()
        server.server_close()
        slow.close()
        registry.close()
    print(
        f"4 concurrent /token against a host dripping its JWKS (0.1 s/byte, {len(SLOW_BODY)} bytes) on a"
        f" 4-thread server: /token took {', '.join(f'{t:.2f}' for _, t in answered)} s;"
        f" /healthz meanwhile {healthz:.2f} s; JWKS fetches {slow.fetches('/jwks')}"
    )
    assert health.status_code == 200
    assert [status for status, _ in answered] == [401] * 4
    # Loose bounds (a loaded CI machine), far below the old code's: about 6 s for both, every
    # thread waiting on the dripping host.
    assert healthz < 3.0
    assert max(took for _, took in answered) < WAIT + 2.5
