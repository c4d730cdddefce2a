"""Embedded backend of the ephemeral store: one SQLite file, shared by every worker on a machine.

Atomicity comes from SQLite's single-writer transactions: ``take`` is ``DELETE ... RETURNING``,
``add`` an insert that only overwrites an expired row, ``incr`` an upsert, ``add_member`` one
``BEGIN IMMEDIATE`` transaction, ``claim`` one ``UPDATE ... RETURNING`` (a write statement holds
the write lock from its first read, so two claimers never pick the same job).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from idp.clock import Clock
from idp.storage.ephemeral.base import Claimed
from idp.storage.files import private_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ephemeral (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID
"""

#: Sets (``add_member``): one row per member; every row of a set carries the set's expiry.
_SET_SCHEMA = """
CREATE TABLE IF NOT EXISTS ephemeral_set (
    key TEXT NOT NULL,
    member TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (key, member)
) WITHOUT ROWID
"""

#: Delayed queues (``enqueue``, ``claim``): one row per job, found by its queue and due time.
_QUEUE_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS ephemeral_queue (
    queue TEXT NOT NULL,
    item TEXT NOT NULL,
    value BLOB NOT NULL,
    due REAL NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (queue, item)
) WITHOUT ROWID
""",
    "CREATE INDEX IF NOT EXISTS ephemeral_queue_due ON ephemeral_queue (queue, due)",
)

#: Expired rows are swept every this many writes (reads already ignore them).
_SWEEP_EVERY = 500


class EmbeddedStore:
    """Ephemeral store in a SQLite file (WAL mode; one connection per thread)."""

    def __init__(self, path: Path | str, *, clock: Clock) -> None:
        self._path = str(path)
        if self._path != ":memory:":
            private_file(Path(self._path))
        self._clock = clock
        self._local = threading.local()
        self._writes = 0
        with self._conn() as conn:
            conn.execute(_SCHEMA)
            conn.execute(_SET_SCHEMA)
            for statement in _QUEUE_SCHEMA:
                conn.execute(statement)

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
            conn.execute("DELETE FROM ephemeral_set WHERE expires_at <= ?", (self._clock.now(),))
            conn.execute("DELETE FROM ephemeral_queue WHERE expires_at <= ?", (self._clock.now(),))

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

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Each live row (a local file: no round-trip to save)."""
        return [self.get(key) for key in keys]

    def put_many(self, items: Sequence[tuple[str, bytes]], ttl: int) -> None:
        """Each ``put``."""
        for key, value in items:
            self.put(key, value, ttl)

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

    def add_member(self, key: str, member: str, ttl: int) -> None:
        """In one write transaction: drop the set if it expired, add the member, and give every
        row the later of the set's expiry and ``now + ttl``."""
        now = self._clock.now()
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM ephemeral_set WHERE key = ? AND expires_at <= ?", (key, now))
            (longest,) = conn.execute(
                "SELECT MAX(expires_at) FROM ephemeral_set WHERE key = ?", (key,)
            ).fetchone()
            expires_at = max(now + ttl, longest or 0.0)
            conn.execute(
                "INSERT INTO ephemeral_set (key, member, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key, member) DO NOTHING",
                (key, member, expires_at),
            )
            conn.execute("UPDATE ephemeral_set SET expires_at = ? WHERE key = ?", (expires_at, key))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self._wrote(conn)

    def remove_member(self, key: str, member: str) -> None:
        """Delete the member's row."""
        self._conn().execute("DELETE FROM ephemeral_set WHERE key = ? AND member = ?", (key, member))

    def members(self, key: str) -> frozenset[str]:
        """The live rows of the set."""
        rows = (
            self._conn()
            .execute(
                "SELECT member FROM ephemeral_set WHERE key = ? AND expires_at > ?", (key, self._clock.now())
            )
            .fetchall()
        )
        return frozenset(str(row[0]) for row in rows)

    def enqueue(self, queue: str, item: str, value: bytes, *, due: float, ttl: int) -> None:
        """Insert or replace the job's row."""
        conn = self._conn()
        conn.execute(
            "INSERT INTO ephemeral_queue (queue, item, value, due, expires_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(queue, item) DO UPDATE SET value = excluded.value, due = excluded.due,"
            " expires_at = excluded.expires_at",
            (queue, item, value, due, self._clock.now() + ttl),
        )
        self._wrote(conn)

    def claim(self, queue: str, *, now: float, lease: float) -> Claimed | None:
        """One UPDATE ... RETURNING: pick the earliest live job due by ``now``, push it to the lease."""
        row = (
            self._conn()
            .execute(
                "UPDATE ephemeral_queue SET due = ? WHERE queue = ? AND item = ("
                " SELECT item FROM ephemeral_queue WHERE queue = ? AND due <= ? AND expires_at > ?"
                " ORDER BY due, item LIMIT 1"
                ") RETURNING item, value",
                (now + lease, queue, queue, now, self._clock.now()),
            )
            .fetchone()
        )
        return None if row is None else Claimed(str(row[0]), bytes(row[1]))

    def dequeue(self, queue: str, item: str) -> None:
        """Delete the job's row."""
        self._conn().execute("DELETE FROM ephemeral_queue WHERE queue = ? AND item = ?", (queue, item))

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
