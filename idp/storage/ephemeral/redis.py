"""Redis backend of the ephemeral store (the redis-py boundary: its exceptions stay here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import redis

from idp.errors import HawiyaError
from idp.storage.ephemeral.base import Claimed

#: Claim the earliest job due by ARGV[1] in the sorted set KEYS[1] (scores: due times), pushing it
#: to ARGV[2]; a job whose value key (ARGV[3] .. item) expired is dropped on the way. One script is
#: one atomic step. (The value keys are derived, not declared: standalone Redis, not Cluster.)
_CLAIM = """
while true do
    local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
    if #due == 0 then
        return false
    end
    local value = redis.call('GET', ARGV[3] .. due[1])
    if value then
        redis.call('ZADD', KEYS[1], 'XX', ARGV[2], due[1])
        return {due[1], value}
    end
    redis.call('ZREM', KEYS[1], due[1])
end
"""


class EphemeralUnavailable(HawiyaError):
    """The ephemeral store cannot be reached."""

    code = "ephemeral_unavailable"
    status = 503


class RedisStore:
    """Ephemeral store on Redis. Atomicity comes from single commands (GETDEL, SET NX, INCR, SADD)."""

    def __init__(self, url: str, *, prefix: str = "hawiya:") -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._prefix = prefix
        self._claim = self._redis.register_script(_CLAIM)

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

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """MGET."""
        if not keys:
            return []
        try:
            return cast(list[bytes | None], self._redis.mget([self._k(key) for key in keys]))
        except redis.RedisError as exc:
            raise EphemeralUnavailable("the session store is unavailable") from exc

    def put_many(self, items: Sequence[tuple[str, bytes]], ttl: int) -> None:
        """SET EX for each, pipelined (not a transaction: each SET stands alone)."""
        if not items:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for key, value in items:
                pipe.set(self._k(key), value, ex=max(1, ttl))
            pipe.execute()
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

    def add_member(self, key: str, member: str, ttl: int) -> None:
        """SADD, then EXPIRE NX (a new set) and EXPIRE GT (a longer life), in one transaction."""
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.sadd(self._k(key), member)
            pipe.expire(self._k(key), max(1, ttl), nx=True)
            pipe.expire(self._k(key), max(1, ttl), gt=True)
            pipe.execute()
        except redis.RedisError as exc:
            raise EphemeralUnavailable("the session store is unavailable") from exc

    def remove_member(self, key: str, member: str) -> None:
        """SREM."""
        try:
            self._redis.srem(self._k(key), member)
        except redis.RedisError as exc:
            raise EphemeralUnavailable("the session store is unavailable") from exc

    def members(self, key: str) -> frozenset[str]:
        """SMEMBERS."""
        try:
            found = cast(set[bytes], self._redis.smembers(self._k(key)))
        except redis.RedisError as exc:
            raise EphemeralUnavailable("the session store is unavailable") from exc
        return frozenset(member.decode() for member in found)

    def _queue(self, queue: str) -> tuple[str, str]:
        """The queue's sorted set (job ids by due time) and the prefix of its jobs' value keys."""
        return self._k(f"queue:{queue}"), self._k(f"queue:{queue}:job:")

    def enqueue(self, queue: str, item: str, value: bytes, *, due: float, ttl: int) -> None:
        """SET the value with its expiry and ZADD the due time; the set lives as long as its
        longest-lived job (EXPIRE NX, then GT), all in one transaction."""
        index, jobs = self._queue(queue)
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(jobs + item, value, ex=max(1, ttl))
            pipe.zadd(index, {item: due})
            pipe.expire(index, max(1, ttl), nx=True)
            pipe.expire(index, max(1, ttl), gt=True)
            pipe.execute()
        except redis.RedisError as exc:
            raise EphemeralUnavailable("the session store is unavailable") from exc

    def claim(self, queue: str, *, now: float, lease: float) -> Claimed | None:
        """A Lua script: the earliest due job, its due time moved to the end of the lease."""
        index, jobs = self._queue(queue)
        try:
            found = self._claim(keys=[index], args=[repr(float(now)), repr(float(now + lease)), jobs])
        except redis.RedisError as exc:
            raise EphemeralUnavailable("the session store is unavailable") from exc
        if not found:
            return None
        item, value = cast(list[bytes], found)
        return Claimed(item.decode(), bytes(value))

    def dequeue(self, queue: str, item: str) -> None:
        """ZREM and DEL in one transaction."""
        index, jobs = self._queue(queue)
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.zrem(index, item)
            pipe.delete(jobs + item)
            pipe.execute()
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
