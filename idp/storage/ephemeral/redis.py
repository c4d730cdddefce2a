"""Redis backend of the ephemeral store (the redis-py boundary: its exceptions stay here)."""

from __future__ import annotations

from typing import cast

import redis

from idp.errors import HawiyaError


class EphemeralUnavailable(HawiyaError):
    """The ephemeral store cannot be reached."""

    code = "ephemeral_unavailable"
    status = 503


class RedisStore:
    """Ephemeral store on Redis. Atomicity comes from single commands (GETDEL, SET NX, INCR)."""

    def __init__(self, url: str, *, prefix: str = "hawiya:") -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._prefix = prefix

    def _k(self, key: str) -> str:
        return self._prefix + key

    def put(self, key: str, value: bytes, ttl: int) -> None:
        """Set with expiry."""
        try:
            self._redis.set(self._k(key), value, ex=max(1, ttl))
        except redis.RedisError as exc:
            raise EphemeralUnavailable("the session store is unavailable") from exc

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        """SET NX EX."""
        try:
            return bool(self._redis.set(self._k(key), value, ex=max(1, ttl), nx=True))
        except redis.RedisError as exc:
            raise EphemeralUnavailable("the session store is unavailable") from exc

    def get(self, key: str) -> bytes | None:
        """GET."""
        try:
            return cast(bytes | None, self._redis.get(self._k(key)))
        except redis.RedisError as exc:
            raise EphemeralUnavailable("the session store is unavailable") from exc

    def take(self, key: str) -> bytes | None:
        """GETDEL (Redis 6.2+): one round trip, atomic."""
        try:
            return cast(bytes | None, self._redis.getdel(self._k(key)))
        except redis.RedisError as exc:
            raise EphemeralUnavailable("the session store is unavailable") from exc

    def delete(self, key: str) -> None:
        """DEL."""
        try:
            self._redis.delete(self._k(key))
        except redis.RedisError as exc:
            raise EphemeralUnavailable("the session store is unavailable") from exc

    def incr(self, key: str, ttl: int) -> int:
        """INCR, and EXPIRE NX so the window starts at the first increment."""
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.incr(self._k(key))
            pipe.expire(self._k(key), max(1, ttl), nx=True)
            count, _ = pipe.execute()
            return int(count)
        except redis.RedisError as exc:
            raise EphemeralUnavailable("the session store is unavailable") from exc

    def ping(self) -> bool:
        """PING."""
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        """Close the connection pool."""
        self._redis.close()
