"""Server-side session storage for relying parties: the tokens stay here, the browser holds only an
opaque session id.

A session record is a JSON object. Its top-level ``sid`` and ``sub`` (from the ID token) are
indexed, so a back-channel logout (OIDC Back-Channel Logout 1.0, section 2.7) finds every local
session of an IdP session, or of a person when the logout token carries no ``sid``. Every record
expires ``ttl`` seconds after it is created (``update`` keeps the expiry).

Two backends pass the same contract test (clients/python/tests/test_store.py):

- ``FileTokenStore(folder)``: one JSON file per session (mode 0600, written atomically), for a
  single machine; the index is one empty file per session under ``by-sid/`` and ``by-sub/``, so
  adding and removing index entries never needs a lock.
- ``RedisTokenStore(url, prefix)``: one key per session with a Redis TTL and index sets by sid and
  sub, for several processes or machines.

Session ids are 32 random bytes, URL-safe base64 (RFC 4648 section 5); ids of any other shape are
refused before they reach a file name or a Redis key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process per store
    fcntl = None  # type: ignore[assignment]

#: What ``new_session_id`` makes: 32 random bytes, base64url without padding (43 characters).
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")
#: The indexed fields of a record.
INDEXED = ("sid", "sub")


def new_session_id() -> str:
    """An opaque, unguessable session id (256 bits from the OS's CSPRNG)."""
    return secrets.token_urlsafe(32)


def _valid(session_id: str) -> bool:
    return isinstance(session_id, str) and _SESSION_ID.fullmatch(session_id) is not None


def _digest(value: str) -> str:
    """Index keys are digests: a sid or sub may hold any character, a file name may not."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class TokenStore(Protocol):
    """Where a relying party keeps its sessions (the Flask integration needs nothing more)."""

    def create(self, data: Mapping[str, Any], *, ttl: int) -> str:
        """Store ``data`` for ``ttl`` seconds under a new session id, and return the id."""
        ...

    def get(self, session_id: str) -> dict[str, Any] | None:
        """The record, or None when it is unknown, expired, deleted or malformed."""
        ...

    def update(self, session_id: str, data: Mapping[str, Any]) -> bool:
        """Replace the record of a live session, keeping its expiry; False when it is gone."""
        ...

    def pop(self, session_id: str) -> dict[str, Any] | None:
        """Take a record exactly once: of two concurrent callers, at most one gets it."""
        ...

    def delete(self, session_id: str) -> None:
        """Forget a session (nothing happens when it is unknown)."""
        ...

    def ids_for(self, *, sid: str | None = None, sub: str | None = None) -> list[str]:
        """The live sessions whose record has this ``sid`` (or, given only ``sub``, this ``sub``)."""
        ...


def _index_keys(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(field, str(data[field])) for field in INDEXED if data.get(field)]


def _pick(sid: str | None, sub: str | None) -> tuple[str, str] | None:
    if sid:
        return ("sid", sid)
    if sub:
        return ("sub", sub)
    return None


# -- files --------------------------------------------------------------------------------------


class FileTokenStore:
    """One JSON file per session in ``folder`` (created 0700; files 0600, replaced atomically)."""

    #: Expired files are swept at most this often (seconds), by whichever ``create`` comes next.
    sweep_every = 300

    def __init__(self, folder: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> None:
        self.folder = Path(folder)
        self._clock = clock
        self._sessions = self.folder / "sessions"
        self._last_sweep = 0.0
        for path in (self.folder, self._sessions, self.folder / "by-sid", self.folder / "by-sub"):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One writer at a time across processes (``get`` needs no lock: files are replaced whole)."""
        with open(self.folder / ".lock", "a+b") as handle:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            yield

    def _path(self, session_id: str) -> Path:
        return self._sessions / f"{session_id}.json"

    def _index_dir(self, field: str, value: str) -> Path:
        return self.folder / f"by-{field}" / _digest(value)

    def _write(self, path: Path, envelope: Mapping[str, Any]) -> None:
        # Write a private temporary file beside the target and rename it over: a reader sees the
        # old record or the new one, never half of one (rename is atomic within a file system).
        fd, temporary = tempfile.mkstemp(dir=self._sessions, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(envelope, handle, separators=(",", ":"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            envelope = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("data"), dict):
            return None
        return envelope

    def _expired(self, envelope: Mapping[str, Any]) -> bool:
        expires_at = envelope.get("expires_at")
        return not isinstance(expires_at, int | float) or expires_at <= self._clock()

    def _unindex(self, session_id: str, data: Mapping[str, Any]) -> None:
        for field, value in _index_keys(data):
            directory = self._index_dir(field, value)
            with contextlib.suppress(FileNotFoundError):
                (directory / session_id).unlink()
            with contextlib.suppress(OSError):  # not empty: another session still uses it
                directory.rmdir()

    def _index(self, session_id: str, data: Mapping[str, Any]) -> None:
        for field, value in _index_keys(data):
            directory = self._index_dir(field, value)
            directory.mkdir(mode=0o700, exist_ok=True)
            (directory / session_id).touch(mode=0o600)

    def create(self, data: Mapping[str, Any], *, ttl: int) -> str:
        """Store ``data`` for ``ttl`` seconds under a new session id, and return the id."""
        now = self._clock()
        if now - self._last_sweep >= self.sweep_every:
            self._last_sweep = now
            self.purge_expired()
        session_id = new_session_id()
        self._index(session_id, data)
        self._write(self._path(session_id), {"expires_at": now + ttl, "data": dict(data)})
        return session_id

    def get(self, session_id: str) -> dict[str, Any] | None:
        """The record, or None when it is unknown, expired, deleted or malformed."""
        if not _valid(session_id):
            return None
        envelope = self._read(self._path(session_id))
        if envelope is None:
            return None
        if self._expired(envelope):
            self.delete(session_id)
            return None
        data: dict[str, Any] = envelope["data"]
        return data

    def update(self, session_id: str, data: Mapping[str, Any]) -> bool:
        """Replace the record of a live session, keeping its expiry; False when it is gone."""
        if not _valid(session_id):
            return False
        path = self._path(session_id)
        with self._lock():
            # Read under the lock: a logout deleting the session meanwhile must win.
            envelope = self._read(path)
            if envelope is None or self._expired(envelope):
                return False
            self._unindex(session_id, envelope["data"])
            self._index(session_id, data)
            self._write(path, {"expires_at": envelope["expires_at"], "data": dict(data)})
        return True

    def pop(self, session_id: str) -> dict[str, Any] | None:
        """Take a record exactly once: the file is renamed away first, and only one rename wins."""
        if not _valid(session_id):
            return None
        taken = self._sessions / f".taken-{session_id}-{secrets.token_hex(8)}"
        try:
            with self._lock():
                os.rename(self._path(session_id), taken)
        except FileNotFoundError:
            return None
        envelope = self._read(taken)
        taken.unlink()
        if envelope is None:
            return None
        self._unindex(session_id, envelope["data"])
        if self._expired(envelope):
            return None
        data: dict[str, Any] = envelope["data"]
        return data

    def delete(self, session_id: str) -> None:
        """Forget a session (nothing happens when it is unknown)."""
        self.pop(session_id)

    def ids_for(self, *, sid: str | None = None, sub: str | None = None) -> list[str]:
        """The live sessions whose record has this ``sid`` (or, given only ``sub``, this ``sub``)."""
        key = _pick(sid, sub)
        if key is None:
            return []
        directory = self._index_dir(*key)
        try:
            candidates = sorted(entry.name for entry in directory.iterdir())
        except FileNotFoundError:
            return []
        found = []
        for session_id in candidates:
            data = self.get(session_id)
            if data is not None and data.get(key[0]) == key[1]:
                found.append(session_id)
            elif data is None:
                with contextlib.suppress(FileNotFoundError):  # a stale entry left by a crash
                    (directory / session_id).unlink()
        return found

    def add(self, key: str, ttl: int) -> bool:
        """``ReplayCache`` (hawiya_rp.backchannel) for every process on this machine: record ``key``
        for ``ttl`` seconds; False when it is already recorded (a replayed logout token)."""
        path = self.folder / "seen" / _digest(key)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        with self._lock():
            envelope = self._read(path)
            if envelope is not None and not self._expired(envelope):
                return False
            self._write(path, {"expires_at": self._clock() + ttl, "data": {}})
        return True

    def purge_expired(self) -> int:
        """Delete every expired session file (and expired replay records); return how many sessions."""
        removed = 0
        for path in self._sessions.glob("*.json"):
            session_id = path.name.removesuffix(".json")
            envelope = self._read(path)
            if _valid(session_id) and (envelope is None or self._expired(envelope)):
                self.delete(session_id)
                with contextlib.suppress(FileNotFoundError):  # malformed: pop could not read it
                    path.unlink()
                removed += 1
        for path in (self.folder / "seen").glob("*"):
            envelope = self._read(path)
            if envelope is None or self._expired(envelope):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        return removed


# -- Redis --------------------------------------------------------------------------------------


class RedisTokenStore:
    """Sessions in Redis under ``prefix`` (one key each with a TTL, and index sets by sid and sub).

    Needs the ``redis`` extra (``pip install 'hawiya-rp[redis]'``) and Redis 7 or later.
    """

    def __init__(self, url: str, prefix: str = "hawiya-rp:", *, client: Any = None) -> None:
        if client is None:
            import redis

            client = redis.Redis.from_url(url)
        self._redis = client
        self.prefix = prefix

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    def _index_key(self, field: str, value: str) -> str:
        return f"{self.prefix}{field}:{_digest(value)}"

    @staticmethod
    def _decode(raw: Any) -> dict[str, Any] | None:
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def create(self, data: Mapping[str, Any], *, ttl: int) -> str:
        """Store ``data`` for ``ttl`` seconds under a new session id, and return the id."""
        session_id = new_session_id()
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(session_id), json.dumps(dict(data), separators=(",", ":")), ex=ttl)
            for field, value in _index_keys(data):
                index = self._index_key(field, value)
                pipe.sadd(index, session_id)
                # With one ttl per store, the newest session lives longest: the index lives as long
                # as it (and entries of sessions gone meanwhile are dropped on read).
                pipe.expire(index, ttl)
            pipe.execute()
        return session_id

    def get(self, session_id: str) -> dict[str, Any] | None:
        """The record, or None when it is unknown, expired, deleted or malformed."""
        if not _valid(session_id):
            return None
        return self._decode(self._redis.get(self._key(session_id)))

    def update(self, session_id: str, data: Mapping[str, Any]) -> bool:
        """Replace the record of a live session, keeping its expiry; False when it is gone."""
        if not _valid(session_id):
            return False
        old = self.get(session_id)
        if old is None:
            return False
        # XX: never bring back a session deleted meanwhile; KEEPTTL: the expiry stays.
        written = self._redis.set(
            self._key(session_id), json.dumps(dict(data), separators=(",", ":")), xx=True, keepttl=True
        )
        if not written:
            return False
        if _index_keys(old) != _index_keys(data):
            ttl = max(int(self._redis.ttl(self._key(session_id))), 1)
            with self._redis.pipeline(transaction=True) as pipe:
                for field, value in _index_keys(old):
                    pipe.srem(self._index_key(field, value), session_id)
                for field, value in _index_keys(data):
                    index = self._index_key(field, value)
                    pipe.sadd(index, session_id)
                    pipe.expire(index, ttl, gt=True)  # never shorten the life of a newer session's entry
                    pipe.expire(index, ttl, nx=True)
                pipe.execute()
        return True

    def pop(self, session_id: str) -> dict[str, Any] | None:
        """Take a record exactly once (GETDEL is atomic)."""
        if not _valid(session_id):
            return None
        data = self._decode(self._redis.getdel(self._key(session_id)))
        if data is not None:
            with self._redis.pipeline(transaction=True) as pipe:
                for field, value in _index_keys(data):
                    pipe.srem(self._index_key(field, value), session_id)
                pipe.execute()
        return data

    def delete(self, session_id: str) -> None:
        """Forget a session (nothing happens when it is unknown)."""
        self.pop(session_id)

    def ids_for(self, *, sid: str | None = None, sub: str | None = None) -> list[str]:
        """The live sessions whose record has this ``sid`` (or, given only ``sub``, this ``sub``)."""
        key = _pick(sid, sub)
        if key is None:
            return []
        index = self._index_key(*key)
        found = []
        for member in sorted(self._redis.smembers(index)):
            session_id = member.decode() if isinstance(member, bytes) else str(member)
            data = self.get(session_id)
            if data is not None and data.get(key[0]) == key[1]:
                found.append(session_id)
            elif data is None:
                self._redis.srem(index, session_id)  # expired: Redis dropped the key, not the entry
        return found

    def add(self, key: str, ttl: int) -> bool:
        """``ReplayCache`` (hawiya_rp.backchannel) shared by every process: record ``key`` for
        ``ttl`` seconds; False when it is already recorded (a replayed logout token)."""
        return bool(self._redis.set(f"{self.prefix}seen:{_digest(key)}", b"1", nx=True, ex=max(int(ttl), 1)))

    def close(self) -> None:
        """Release the connection pool."""
        self._redis.close()


def open_store(spec: str, *, prefix: str = "hawiya-rp:") -> TokenStore:
    """A store from one setting: ``redis://…`` or ``rediss://…`` for Redis, else a folder path."""
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisTokenStore(spec, prefix)
    return FileTokenStore(spec)
