"""A pooled PostgreSQL connection the server dropped (a restart, a failover) is replaced unseen."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from idp.storage import db as db_module
from idp.storage.db import Database
from tests.conftest import Backend

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


def _backend_pid(database: Database) -> int:
    with database.transaction() as s:
        return int(s.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_killed_while_idle_is_replaced(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 0.0)
    database = Database(backend.database_url)
    try:
        first = _backend_pid(database)
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        second = _backend_pid(database)  # no error: the dead connection was pinged and replaced
        assert second != first
    finally:
        database.dispose()


def test_a_connection_used_a_moment_ago_is_not_pinged(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The other side of the trade: no round-trip for a connection just handed back, so one killed
    # in that instant fails its next statement (the pool then drops every connection it holds).
    monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 3600.0)
    database = Database(backend.database_url)
    try:
        first = _backend_pid(database)
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        with pytest.raises(OperationalError):
            _backend_pid(database)
        assert _backend_pid(database) != first
    finally:
        database.dispose()
