"""Embedded backend of the ephemeral store: one SQLite file, shared by every worker on a machine.

Atomicity comes from SQLite's single-writer transactions: ``take`` is ``DELETE ... RETURNING``,
``add`` an insert that only overwrites an expired row, ``incr`` an upsert.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from idp.clock import Clock

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ephemeral (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID
"""

#: Expired rows are swept every this many writes (reads already ignore them).
_SWEEP_EVERY = 500


class EmbeddedStore:
    """Ephemeral store in a SQLite file (WAL mode; one connection per thread)."""

    def __init__(self, path: Path | str, *, clock: Clock) -> None:
        self._path = str(path)
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._local = threading.local()
        self._writes = 0
        with self._conn() as conn:
            conn.execute(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def _wrote(self, conn: sqlite3.Connection) -> None:
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            conn.execute("DELETE FROM ephemeral WHERE expires_at <= ?", (self._clock.now(),))

    def put(self, key: str, value: bytes, ttl: int) -> None:
        """Insert or replace."""
        conn = self._conn()
        conn.execute(
            "INSERT INTO ephemeral (key, value, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
            (key, value, self._clock.now() + ttl),
        )
        self._wrote(conn)

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        """Insert unless a live row exists."""
        now = self._clock.now()
        conn = self._conn()
        cursor = conn.execute(
            "INSERT INTO ephemeral (key, value, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
            " WHERE ephemeral.expires_at <= ?",
            (key, value, now + ttl, now),
        )
        self._wrote(conn)
        return cursor.rowcount == 1

    def get(self, key: str) -> bytes | None:
        """Select a live row."""
        row = (
            self._conn()
            .execute(
                "SELECT value FROM ephemeral WHERE key = ? AND expires_at > ?",
                (key, self._clock.now()),
            )
            .fetchone()
        )
        return None if row is None else bytes(row[0])

    def take(self, key: str) -> bytes | None:
        """DELETE ... RETURNING: only one concurrent caller sees the row."""
        conn = self._conn()
        row = conn.execute(
            "DELETE FROM ephemeral WHERE key = ? RETURNING value, expires_at", (key,)
        ).fetchone()
        if row is None or row[1] <= self._clock.now():
            return None
        return bytes(row[0])

    def delete(self, key: str) -> None:
        """Delete."""
        self._conn().execute("DELETE FROM ephemeral WHERE key = ?", (key,))

    def incr(self, key: str, ttl: int) -> int:
        """Upsert a counter; an expired counter starts again at one."""
        now = self._clock.now()
        row = (
            self._conn()
            .execute(
                "INSERT INTO ephemeral (key, value, expires_at) VALUES (?, CAST(1 AS BLOB), ?) "
                "ON CONFLICT(key) DO UPDATE SET "
                " value = CASE WHEN ephemeral.expires_at <= ? THEN CAST(1 AS BLOB)"
                "              ELSE CAST(CAST(ephemeral.value AS INTEGER) + 1 AS BLOB) END,"
                " expires_at = CASE WHEN ephemeral.expires_at <= ? THEN excluded.expires_at"
                "                   ELSE ephemeral.expires_at END "
                "RETURNING CAST(value AS INTEGER)",
                (key, now + ttl, now, now),
            )
            .fetchone()
        )
        return int(row[0])

    def ping(self) -> bool:
        """A trivial query."""
        try:
            self._conn().execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
