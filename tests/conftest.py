"""Shared fixtures: settings on a temporary embedded default, optionally PostgreSQL + Redis,
an initialised registry and app, and a live server on localhost for real clients and browsers.

PostgreSQL (127.0.0.1:5432, trust, database test) and Redis (127.0.0.1:6379) are used when they
answer; locally without them the backend-matrix tests skip, under CI=true they must run.

With ``HAWIYA_TEST_SIGNER=remote`` every IdP the tests build signs out of process: through a
``RemoteSigner`` and a ``SigningService`` of its own on 127.0.0.1 (``make test-remote-signer``),
which proves the HSM/KMS seam with suites that do not know about it.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import Key
from werkzeug.serving import make_server

from idp.app import create_app
from idp.clock import FrozenClock
from idp.keys import keystore
from idp.keys.remote import SigningService
from idp.registry import Registry
from idp.settings import Settings
from tests.support.identity import national_id

#: Real keys, generated once per run and handed out in turn (see ``_pooled_signing_keys``).
_KEY_POOL: dict[str, list[Key]] = {}
_KEY_TURN: dict[str, int] = {}
_GENERATE = keystore._generate
_IMPORT_ONCE = cache(keystore._import)


def _pooled_generate(alg: str) -> Key:
    pool = _KEY_POOL.setdefault(alg, [])
    turn = _KEY_TURN.get(alg, 0)
    _KEY_TURN[alg] = turn + 1
    if len(pool) < 4:
        pool.append(_GENERATE(alg))
    return pool[turn % len(pool)]


@pytest.fixture(autouse=True)
def _pooled_signing_keys(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every IdP a test makes gets real signing keys from a small pool generated once per run.

    A 3072-bit RSA key takes ~0.2 s to generate and ~0.1 s to load (cryptography validates it),
    and nearly every test makes an IdP with two of them; the tests are about what the keys do,
    not about generating them. Each IdP still has its own kids, sealing, states and JWKS, and
    consecutive keys of one algorithm differ (a pool of four). Tests marked ``real_keygen``
    generate their own.
    """
    if request.node.get_closest_marker("real_keygen") is None:
        monkeypatch.setattr(keystore, "_generate", _pooled_generate)
        monkeypatch.setattr(keystore, "_import", _IMPORT_ONCE)


PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "correct horse battery staple 42"


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def require_servers() -> None:
    """Skip (locally) or fail (CI) when PostgreSQL or Redis is not there."""
    missing = [name for name, port in (("PostgreSQL", 5432), ("Redis", 6379)) if not _reachable(port)]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{', '.join(missing)} must run in CI")
        pytest.skip(f"{', '.join(missing)} not running on this machine")


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Backend:
    """Where one test's data lives."""

    name: str
    database_url: str
    ephemeral_url: str
    redis_prefix: str
    schema: str | None = None


@pytest.fixture(params=["embedded"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The embedded default; parametrize indirectly with "postgres" for PostgreSQL + Redis."""
    if request.param == "embedded":
        yield Backend("embedded", f"sqlite:///{tmp_path / 'hawiya.db'}", "embedded", "hawiya:")
        return
    require_servers()
    import psycopg
    import redis

    schema = "t_" + secrets.token_hex(6)
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    prefix = f"hawiya-test:{schema}:"
    try:
        yield Backend("postgres", f"{PG_BASE}?options=-csearch_path%3D{schema}", REDIS_URL, prefix, schema)
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()


BOTH_BACKENDS = pytest.mark.parametrize("backend", ["embedded", "postgres"], indirect=True)


def make_settings(tmp_path: Path, backend: Backend, **overrides: Any) -> Settings:
    """Settings for one test: its own instance folder, master key and backends."""
    values: dict[str, Any] = {
        "instance_path": tmp_path,
        "master_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "master_key_file": tmp_path / "master.key",
        "database_url": backend.database_url,
        "ephemeral_url": backend.ephemeral_url,
        "redis_prefix": backend.redis_prefix,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def clock() -> FrozenClock:
    """A clock the test moves by hand."""
    return FrozenClock()


#: Which Signer the IdPs of this run use: ``software`` (in process, the default) or ``remote``.
TEST_SIGNER = os.environ.get("HAWIYA_TEST_SIGNER", "software")
if TEST_SIGNER not in ("software", "remote"):
    raise pytest.UsageError(f"HAWIYA_TEST_SIGNER must be software or remote, got {TEST_SIGNER!r}")
#: Signing services still serving (stopped by their registry's close, or after the test).
_SIGNING_SERVICES: set[RemoteSigningRegistry] = set()


class RemoteSigningRegistry(Registry):
    """A registry that signs through ``RemoteSigner``, with a signing service of its own.

    The service wraps the software signer of a second registry on the same database and master
    key, as a separate signing process would; ``signing_service.signatures`` counts its work.
    """

    def __init__(self, settings: Settings, clock: FrozenClock | None = None) -> None:
        secret = secrets.token_urlsafe(32)
        self.signing_backend = Registry(settings, clock=clock)
        self.signing_service = SigningService(self.signing_backend.signer, secret=secret).start()
        _SIGNING_SERVICES.add(self)
        super().__init__(
            replace(settings, signer_url=self.signing_service.url, signer_secret=secret), clock=clock
        )

    def close(self) -> None:
        """Release connections and stop the signing service."""
        super().close()
        if self in _SIGNING_SERVICES:
            _SIGNING_SERVICES.discard(self)
            self.signing_service.stop()
            self.signing_backend.close()


@pytest.fixture(autouse=True)
def _stop_signing_services() -> Iterator[None]:
    """Stop the signing services of registries a test did not close."""
    yield
    for registry in list(_SIGNING_SERVICES):
        registry.close()


def initialised(
    settings: Settings, clock: FrozenClock | None = None, *, remote_signer: bool | None = None
) -> Registry:
    """A registry on a migrated database with signing keys (what `hawiya init` does). It signs
    through its own signing service when ``remote_signer`` is true (by default: when
    ``HAWIYA_TEST_SIGNER=remote``)."""
    remote = TEST_SIGNER == "remote" if remote_signer is None else remote_signer
    registry = RemoteSigningRegistry(settings, clock) if remote else Registry(settings, clock)
    registry.db.upgrade()
    registry.keystore.ensure_keys()
    return registry


@pytest.fixture
def settings(tmp_path: Path, backend: Backend) -> Settings:
    """Settings on the chosen backend."""
    return make_settings(tmp_path, backend)


@pytest.fixture
def registry(settings: Settings, clock: FrozenClock) -> Iterator[Registry]:
    """An initialised registry."""
    reg = initialised(settings, clock)
    yield reg
    reg.close()


@pytest.fixture
def app(registry: Registry) -> Any:
    """The Flask app."""
    application = create_app(registry=registry)
    application.testing = True
    return application


@dataclass
class World:
    """A small population: one person of each type and two clients."""

    registry: Registry
    citizen_id: str
    confidential_id: str
    confidential_secret: str
    public_id: str
    redirect_uri: str
    public_redirect_uri: str


def populate(registry: Registry, *, rp_port: int = 9001) -> World:
    """Create people and clients through the services (as the CLI would)."""
    citizen = registry.accounts.create(
        account_type="citizen",
        username="citizen",
        password=PASSWORD,
        email="fatima@example.org",
        name="Fatima Al-Sabah",
        name_ar="فاطمة الصباح",
        given_name="Fatima",
        family_name="Al-Sabah",
        phone="+96550000001",
        email_verified=True,
        address={"formatted": "Block 1, Street 2, Kuwait City", "country": "KW"},
        national_id=national_id(1),
        nationality="KW",
        proofing_level="counter",
    )
    registry.accounts.create(
        account_type="resident", username="resident", password=PASSWORD, national_id=national_id(2)
    )
    registry.accounts.create(
        account_type="visitor",
        username="visitor",
        password=PASSWORD,
        passport_number="X1234567",
        nationality="DE",
    )
    registry.accounts.create(
        account_type="staff",
        username="staff",
        password=PASSWORD,
        national_id=national_id(3),
        agency="Ministry of Health",
        roles=("helpdesk",),
    )
    redirect_uri = f"http://127.0.0.1:{rp_port}/callback"
    confidential = registry.clients.create(
        name="Ministry of Health",
        name_ar="وزارة الصحة",
        agency="Ministry of Health",
        redirect_uris=[redirect_uri],
        auth_method="client_secret_basic",
        id_token_alg="RS256",
    )
    public_redirect = f"http://127.0.0.1:{rp_port + 1}/callback"
    public = registry.clients.create(
        name="Civil Registry Mobile", redirect_uris=[public_redirect], auth_method="none"
    )
    assert confidential.client_secret is not None
    return World(
        registry,
        citizen.id,
        confidential.client.client_id,
        confidential.client_secret,
        public.client.client_id,
        redirect_uri,
        public_redirect,
    )


@pytest.fixture
def world(registry: Registry) -> World:
    """People and clients on the test's registry."""
    return populate(registry)


@dataclass
class LiveServer:
    """A real HTTP server on localhost serving the IdP."""

    url: str
    world: World


@pytest.fixture
def live_server(tmp_path: Path, backend: Backend) -> Iterator[LiveServer]:
    """The IdP served on http://localhost:PORT (a real socket, a real WSGI server thread)."""
    port = free_port()
    settings = make_settings(tmp_path, backend, issuer=f"http://localhost:{port}")
    registry = initialised(settings)
    world = populate(registry)
    application = create_app(registry=registry)
    server = make_server("localhost", port, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://localhost:{port}", world)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        registry.close()
