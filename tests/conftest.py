"""Shared fixtures: settings on a temporary embedded default, optionally PostgreSQL + Redis,
an initialised registry and app, and a live server on localhost for real clients and browsers.

Every database starts as a copy of one migrated once per test process; every registry gets the
suite's cheap Argon2id hasher and signing keys from a pool (``make_registry``), unless the test is
marked ``real_hashing`` or ``real_keygen``. docs/testing.md explains both and the time budget.

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
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import Key
from werkzeug.serving import make_server

from idp.accounts.passwords import PasswordHasher
from idp.app import create_app
from idp.clock import FrozenClock
from idp.keys.keystore import KeyFactory, generate_key
from idp.keys.remote import SigningService
from idp.registry import Registry
from idp.settings import Settings
from idp.storage.db import Database
from tests.support import outbox
from tests.support.identity import national_id
from tests.support.mfa import MfaPerson, Rp
from tests.support.needs import unavailable


class KeyPool:
    """Real signing keys, generated once per test process and handed out in turn.

    A 3072-bit RSA key takes ~0.2 s to generate, and every IdP a test makes wants a current and a
    next key of four algorithms; the tests are about what the keys do, not about generating them.
    Each IdP still has its own kids, sealing, states and JWKS, and consecutive keys of one
    algorithm differ (four of each).
    """

    def __init__(self, size: int = 4) -> None:
        self._size = size
        self._keys: dict[str, list[Key]] = {}
        self._turn: dict[str, int] = {}

    def __call__(self, alg: str) -> Key:
        """The next key of ``alg`` (a KeyFactory)."""
        pool = self._keys.setdefault(alg, [])
        turn = self._turn.get(alg, 0)
        self._turn[alg] = turn + 1
        if len(pool) < self._size:
            pool.append(generate_key(alg))
        return pool[turn % len(pool)]


#: The suite's password hasher: Argon2id at its smallest cost (8 KiB, one pass), so the hundreds of
#: IdPs the suite builds do not each spend ~50 ms per password. Tests where the cost is the subject
#: (parameters, rehashing, timing against enumeration) are marked ``real_hashing``.
CHEAP_HASHER = PasswordHasher(memory_kib=8, iterations=1, lanes=1)
KEY_POOL = KeyPool()


@dataclass(frozen=True)
class Costs:
    """What the IdPs of the running test use for passwords and new signing keys."""

    hasher: PasswordHasher | None  # None: the Argon2id parameters of the IdP's settings
    key_factory: KeyFactory | None  # None: generate each key


_costs = Costs(CHEAP_HASHER, KEY_POOL)


@pytest.fixture(autouse=True)
def _test_costs(request: pytest.FixtureRequest) -> Iterator[None]:
    """The cheap hasher and the key pool, unless the test is marked ``real_hashing`` or
    ``real_keygen``; ``make_registry`` hands them to every registry the test builds."""
    global _costs
    _costs = Costs(
        None if request.node.get_closest_marker("real_hashing") else CHEAP_HASHER,
        None if request.node.get_closest_marker("real_keygen") else KEY_POOL,
    )
    yield
    _costs = Costs(CHEAP_HASHER, KEY_POOL)


def make_registry(settings: Settings, clock: FrozenClock | None = None) -> Registry:
    """A registry for ``settings`` with the running test's hasher and key factory. Reading its
    outbox (tests.support.outbox) first delivers what its message queue holds."""
    outbox.watch(settings.outbox_path, lambda: _deliver_queued(settings, clock))
    return Registry(settings, clock, hasher=_costs.hasher, key_factory=_costs.key_factory)


def _deliver_queued(settings: Settings, clock: FrozenClock | None) -> None:
    """One pass of the message worker for ``settings`` (a registry of its own: the test's may be
    closed by now)."""
    registry = Registry(settings, clock)
    try:
        registry.messages.run_once()
    finally:
        registry.close()


@pytest.fixture(autouse=True)
def _forget_outboxes() -> Iterator[None]:
    yield
    outbox.forget()


@cache
def _migrated_sqlite() -> Path:
    """A SQLite database migrated to head once per test process: each embedded IdP starts as a copy."""
    folder = Path(tempfile.mkdtemp(prefix="hawiya-template-"))
    path = folder / "hawiya.db"
    database = Database(f"sqlite:///{path}")
    try:
        database.upgrade()
    finally:
        database.dispose()  # the last connection checkpoints the WAL into the file
    return path


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    return Path(url.removeprefix("sqlite:///"))


def copy_migrated_sqlite(url: str) -> None:
    """Start the SQLite database at ``url`` (when it does not exist yet) as the migrated template."""
    path = _sqlite_path(url)
    if path is not None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_migrated_sqlite(), path)


PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
PG_BASE = f"{PG_SERVER}/test"
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
        unavailable(f"{', '.join(missing)} not running on this machine")


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


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


class PostgresTemplate:
    """A PostgreSQL database migrated to head once per test process (made on first use): each
    PostgreSQL test gets its own database copied from it (``CREATE DATABASE ... TEMPLATE``)."""

    def __init__(self) -> None:
        self.name: str | None = None

    def copy(self) -> str:
        """A new database copied from the template; its name."""
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            if self.name is None:
                name = "hawiya_tpl_" + secrets.token_hex(6)
                conn.execute(f"CREATE DATABASE {name}")
                database = Database(f"{PG_SERVER}/{name}")
                try:
                    database.upgrade()
                finally:
                    database.dispose()  # a template must have no connections when it is copied
                self.name = name
            copy = "t_" + secrets.token_hex(6)
            conn.execute(f"CREATE DATABASE {copy} TEMPLATE {self.name}")
        return copy

    def drop(self) -> None:
        """Drop the template (end of the run)."""
        if self.name is not None:
            drop_database(self.name)


def drop_database(name: str) -> None:
    """Drop a test database, ending whatever still holds a connection to it."""
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def _postgres_template() -> Iterator[PostgresTemplate]:
    template = PostgresTemplate()
    yield template
    template.drop()


@pytest.fixture(params=["embedded"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, _postgres_template: PostgresTemplate
) -> Iterator[Backend]:
    """The embedded default; parametrize indirectly with "postgres" for PostgreSQL + Redis. Either
    database starts migrated to head (a copy of the run's template), as `hawiya init` leaves it."""
    if request.param == "embedded":
        url = f"sqlite:///{tmp_path / 'hawiya.db'}"
        copy_migrated_sqlite(url)
        yield Backend("embedded", url, "embedded", "hawiya:")
        return
    require_servers()
    import redis

    database = _postgres_template.copy()
    prefix = f"hawiya-test:{database}:"
    try:
        yield Backend("postgres", f"{PG_SERVER}/{database}", REDIS_URL, prefix)
    finally:
        drop_database(database)
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()


@pytest.fixture
def empty_database_url(backend: Backend, tmp_path: Path) -> Iterator[str]:
    """A database on the test's backend that no migration has touched (for the migrations' tests)."""
    if backend.name == "embedded":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    import psycopg

    name = "e_" + secrets.token_hex(6)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        drop_database(name)


#: Where the backend matters (storage contracts, races, codes, refresh tokens, throttles, anything
#: that looks up a value the caller sent): the embedded default and PostgreSQL + Redis.
BOTH_BACKENDS = pytest.mark.parametrize("backend", ["embedded", "postgres"], indirect=True)
#: Beside BOTH_BACKENDS in a matrix, for the tests of that matrix where the backend does not matter:
#: the embedded default only, under the same test id as before.
ONE_BACKEND = pytest.mark.parametrize("backend", ["embedded"], indirect=True)


def make_settings(tmp_path: Path, backend: Backend, **overrides: Any) -> Settings:
    """Settings for one test: its own instance folder, master key and backends."""
    values: dict[str, Any] = {
        "instance_path": tmp_path,
        "master_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "master_key_file": tmp_path / "master.key",
        "database_url": backend.database_url,
        "ephemeral_url": backend.ephemeral_url,
        "redis_prefix": backend.redis_prefix,
        # Tests deliver queued mail when they read an outbox (tests.support.outbox), not in a thread.
        "mail_worker": False,
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
        self.signing_backend = make_registry(settings, clock)
        self.signing_service = SigningService(self.signing_backend.signer, secret=secret).start()
        _SIGNING_SERVICES.add(self)
        super().__init__(
            replace(settings, signer_url=self.signing_service.url, signer_secret=secret),
            clock,
            hasher=_costs.hasher,
            key_factory=_costs.key_factory,
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
    copy_migrated_sqlite(settings.database_url)
    registry = RemoteSigningRegistry(settings, clock) if remote else make_registry(settings, clock)
    registry.db.upgrade()  # at head already (a copy of the template): Alembic checks and does nothing
    # Keys made where they sign: the signing process keeps what it made, instead of parsing it again.
    signing = registry.signing_backend if isinstance(registry, RemoteSigningRegistry) else registry
    signing.keystore.ensure_keys()
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
        email="yousef@health.example",
        email_verified=True,
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


@pytest.fixture
def rp(app: Any, world: World) -> Rp:
    """The confidential client of the test world (the Ministry of Health)."""
    return Rp.of_world(app, world)


@pytest.fixture
def citizen(app: Any, world: World, clock: FrozenClock) -> MfaPerson:
    """The citizen at a fresh browser (no second factor yet)."""
    return MfaPerson(app, "citizen", PASSWORD, clock=clock)


@pytest.fixture
def staff(app: Any, world: World, clock: FrozenClock) -> MfaPerson:
    """The staff member of the Ministry of Health at a fresh browser (no second factor yet: confirms
    the code mailed to the verified address, then sets up an authenticator app at first sign-in)."""
    return MfaPerson(app, "staff", PASSWORD, clock=clock)


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
