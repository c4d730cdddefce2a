"""The durable database: engine, transactions and migrations.

SQLite is the embedded default; PostgreSQL (psycopg 3) is the production store. The schema is only
ever changed by Alembic migrations (``idp/storage/migrations``), run by ``hawiya init``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from idp.storage.files import private_file

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Database:
    """An engine plus a session factory; ``transaction()`` is the unit of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        # A failing statement's error (logged, or raised up to the error handler) names the
        # statement, never its parameters: they hold usernames, emails, tokens' hashes.
        kwargs: dict[str, Any] = {"future": True, "hide_parameters": True}
        if url.startswith("sqlite"):
            _ensure_sqlite_folder(url)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            # A server restart or a failover leaves dead connections in the pool: one that sat idle
            # is tested before use and replaced if dead (SQLAlchemy's pool_pre_ping did that on
            # every checkout, one round-trip more for each of a request's transactions).
            event.listen(self.engine, "checkin", _note_idle)
            event.listen(self.engine, "checkout", _ping_if_idle)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:  # any driver error means "not ready"
            return False

    def upgrade(self) -> None:
        """Run Alembic migrations up to head (idempotent)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def is_initialised(self) -> bool:
        """True when the migrations have created the schema."""
        try:
            return inspect(self.engine).has_table("alembic_version")
        except Exception:
            return False

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


#: A pooled connection idle for longer than this is pinged before it is handed out.
IDLE_PING_SECONDS = 2.0


def _note_idle(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Ping a connection that sat idle; a dead one is replaced (the pool retries the checkout)."""
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as exc:  # the driver's OperationalError: the server went away
        raise DisconnectionError("a pooled connection was dead") from exc


def _ensure_sqlite_folder(url: str) -> None:
    """The database file exists, 0600, before SQLite opens it (its companions inherit the mode)."""
    path = url.split("///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        private_file(Path(path))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets several gunicorn workers read while one writes; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
