"""Memory over a soak: the RSS of every gunicorn process under a mixed load, and the state one SSO
session keeps in Redis.

A fresh instance is seeded (bench/seed.py) and served (gunicorn, PostgreSQL + Redis, server CPU).
First, on the idle server, one browser signs in (authorize, sign-in and consent forms, code
exchange) and the Redis keys it left under the run's prefix are listed, each with what it is, its
TTL, Redis's ``MEMORY USAGE`` and its raw value size; the keys named after the session (its handle
hash, its ``sid``, its person) are summed against the target of < 2 KB per SSO session.

Then, for ``--seconds`` (the issue asks for 10 minutes: ``--seconds 600``), wrk drives
client_credentials at ``--connections`` connections (a random seeded client per request) while a
Python thread signs in again and again, each time in a fresh browser (new cookie jar, never signing
out), so SSO sessions, spent-code markers and token ledgers accumulate as they would in
production. Every ``--interval`` seconds the VmRSS of each gunicorn process (``/proc/PID/status``)
and the keys under the prefix are sampled. Printed: start, end and max RSS per process, the slope
over the second half of the run (after warm-up; MB per minute, least squares), and what Redis held
at the end per key family. Figures only: never fails on timing or growth.

Run: .venv/bin/python bench/bench_soak.py [--seconds 60] [--interval 5] [--connections 8]
     [--users 10000] [--clients 100] [--workers N]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis
import requests

from bench import harness
from bench.harness import API_RESOURCE, API_SCOPE, BENCH, Hawiya, Load, hawiya, wrk
from bench.seed import (
    SeedInfo,
    SigninFailed,
    authorize,
    client_id,
    exchange,
    redirect_uri,
    seed,
    sign_in,
    username,
)

MANY_CLIENTS = BENCH / "wrk" / "client_credentials_many.lua"
#: The target the issue sets for the Redis state of one SSO session.
SESSION_TARGET = 2048
#: What each key family under the prefix holds (the part of the key name before the first ':').
FAMILIES = {
    "sso": "the SSO session: JSON (sid, account, auth_time, amr, acr, times, clients, user agent, "
    "IP) under the SHA-256 of the cookie handle; until the absolute timeout + 1 h grace",
    "sso-sid": "sid -> the session's handle hash (logout by sid, is_live); until the idle timeout, "
    "renewed on use",
    "sso-account": "the person's index of live sessions: a set of handle hashes, one per session",
    "grant-token-set": "the access tokens one grant (here: the session) issued, 'jti exp' members, "
    "for revocation when it ends; while its tokens live",
    "grant-tokens": "the access tokens one grant (a code, a refresh family) issued, JSON "
    "[jti, exp] pairs, for revocation on a replay; while its tokens live",
    "code": "an authorization code (JSON); single use, 60 s",
    "code-spent": "a redeemed code's marker (its client id), to recognise replays; 1 h",
    "webauthn": "a passkey ceremony (challenge) that every sign-in page render starts; 5 min",
    "interaction": "a parked authorization request between pages",
    "signin-fail": "failed sign-ins of one username (throttle window)",
    "signin-fail-ip": "failed sign-ins from one address (throttle window)",
}


def _family(name: str) -> str:
    """``sso-sid`` for ``<prefix>sso-sid:abc`` (the run's prefix already stripped)."""
    return name.split(":", 1)[0]


def _short(name: str) -> str:
    """A key name with its long random parts cut, for printing."""
    parts = name.split(":")
    return ":".join(part if len(part) <= 24 else part[:10] + "…" for part in parts)


@dataclass(frozen=True)
class KeyState:
    """One Redis key as ``MEMORY USAGE``, ``TYPE``, ``TTL`` and its raw value see it."""

    name: str
    kind: str
    ttl: int
    memory: int
    raw: int
    members: int


def _describe(client: redis.Redis, prefix: str, keys: list[bytes]) -> list[KeyState]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
        pipe.ttl(key)
        pipe.memory_usage(key, samples=0)
    answers = pipe.execute()
    states = []
    for index, key in enumerate(keys):
        kind, ttl, memory = answers[3 * index : 3 * index + 3]
        kind = kind.decode()
        if kind == "string":
            value = client.get(key) or b""
            raw, members = len(value), 1
        elif kind == "set":
            found = client.smembers(key)
            raw, members = sum(len(m) for m in found), len(found)
        else:
            raw, members = 0, 0
        states.append(KeyState(key.decode()[len(prefix) :], kind, int(ttl), int(memory or 0), raw, members))
    return states


def _scan(client: redis.Redis, prefix: str) -> set[bytes]:
    return set(client.scan_iter(match=f"{prefix}*", count=1000))


def _claims(jwt: str) -> dict[str, object]:
    payload = jwt.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def session_state(idp: Hawiya, info: SeedInfo) -> None:
    """One sign-in on the idle server: the keys it left, what each is, and the session's bytes."""
    client = redis.Redis.from_url(harness.REDIS_URL)
    prefix = harness.REDIS_PREFIX
    before = _scan(client, prefix)
    http = requests.Session()
    authorized = authorize(
        idp.url,
        user=username(1),
        password=info.password,
        client=client_id(0),
        secret=info.client_secret,
        redirect=redirect_uri(0),
        http=http,
    )
    at_code = _scan(client, prefix) - before
    tokens = exchange(idp.url, authorized)
    left = sorted(_scan(client, prefix) - before)
    sid = str(_claims(str(tokens["id_token"])).get("sid", ""))
    found = client.get(f"{prefix}sso-sid:{sid}")
    digest = found.decode() if isinstance(found, bytes) else ""
    session_raw = client.get(f"{prefix}sso:{digest}") if digest else None
    account = str(json.loads(session_raw)["account_id"]) if session_raw else ""
    marks = [mark for mark in (sid, digest, account) if mark]
    states = _describe(client, prefix, left)
    gone = sorted(key.decode()[len(prefix) :] for key in at_code - set(left))

    print("\nRedis state one sign-in leaves (authorize, sign-in, consent, code exchange; idle server)")
    print(f"{'key':<52} {'type':<6} {'TTL s':>7} {'MEMORY USAGE':>12} {'raw B':>6}  session")
    for state in states:
        mine = any(mark in state.name for mark in marks)
        print(
            f"{_short(state.name):<52} {state.kind:<6} {state.ttl:>7} {state.memory:>12} "
            f"{state.raw:>6}  {'yes' if mine else '-'}"
        )
    if gone:
        print("gone by the end of the exchange: " + ", ".join(_short(name) for name in gone))
    print("what each key is:")
    for family in dict.fromkeys(_family(state.name) for state in states):
        print(f"  {family + ':':<18} {FAMILIES.get(family, '(not known to this script)')}")
    idle = int(idp.settings.get("HAWIYA_SESSION_IDLE_TTL", "3600"))
    session = [s for s in states if any(mark in s.name for mark in marks)]
    lasting = [s for s in session if s.ttl >= idle]
    total = sum(s.memory for s in states)
    print(
        f"the session's keys that live as long as it (named after it, TTL >= the idle timeout "
        f"{idle} s): {sum(s.memory for s in lasting)} B by MEMORY USAGE "
        f"({sum(s.raw for s in lasting)} B of raw values) in {len(lasting)} keys"
    )
    print(
        f"with the session's shorter-lived keys too: {sum(s.memory for s in session)} B; "
        f"everything the sign-in left: {total} B in {len(states)} keys"
    )
    verdict = "met" if sum(s.memory for s in lasting) < SESSION_TARGET else "NOT met"
    print(f"target: < {SESSION_TARGET} B per SSO session: {verdict}")


@dataclass
class Samples:
    """What the sampler saw."""

    #: pid -> [(seconds since start, RSS kB)].
    rss: dict[int, list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))
    #: (seconds since start, keys under the prefix).
    keys: list[tuple[float, int]] = field(default_factory=list)
    roles: dict[int, str] = field(default_factory=dict)


def _rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _sample(idp: Hawiya, samples: Samples, elapsed: float, client: redis.Redis) -> None:
    pids = idp.pids()
    for pid in pids:
        rss = _rss_kb(pid)
        if rss is None:
            continue
        samples.rss[pid].append((elapsed, rss))
        if pid not in samples.roles:
            samples.roles[pid] = "worker" if _parent(pid) in pids else "arbiter"
    samples.keys.append((elapsed, len(_scan(client, harness.REDIS_PREFIX))))


def _slope(points: list[tuple[float, int]]) -> float | None:
    """Least-squares MB per minute over ``points`` (seconds, kB)."""
    if len(points) < 3:
        return None
    xs = [t for t, _ in points]
    ys = [kb / 1024 for _, kb in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread * 60


class SigninLoop(threading.Thread):
    """Full browser sign-ins, each in a fresh cookie jar, until stopped."""

    def __init__(self, idp: Hawiya, info: SeedInfo) -> None:
        super().__init__(daemon=True)
        self.idp = idp
        self.info = info
        self.stopping = threading.Event()
        self.done = 0
        self.failed: Counter[str] = Counter()
        self.seconds: list[float] = []

    def run(self) -> None:
        rng = random.Random(7)
        while not self.stopping.is_set():
            person, client = rng.randrange(self.info.users), rng.randrange(self.info.clients)
            started = time.perf_counter()
            try:
                sign_in(
                    self.idp.url,
                    user=username(person),
                    password=self.info.password,
                    client=client_id(client),
                    secret=self.info.client_secret,
                    redirect=redirect_uri(client),
                )
            except (SigninFailed, requests.RequestException) as failure:
                self.failed[type(failure).__name__ + ": " + str(failure)[:80]] += 1
                continue
            self.done += 1
            self.seconds.append(time.perf_counter() - started)


def soak(idp: Hawiya, info: SeedInfo, args: argparse.Namespace) -> None:
    """The mixed load, sampled; then the report."""
    client = redis.Redis.from_url(harness.REDIS_URL)
    clients_file = idp.instance / "clients.txt"
    clients_file.write_text("".join(f"{client_id(i)}\n" for i in range(info.clients)))
    env = {
        "SCOPE": API_SCOPE,
        "RESOURCE": API_RESOURCE,
        "CLIENTS_FILE": str(clients_file),
        "SECRET": info.client_secret,
    }
    loads: list[Load] = []
    runner = threading.Thread(
        target=lambda: loads.append(
            wrk(f"{idp.url}/token", MANY_CLIENTS, connections=args.connections, seconds=args.seconds, env=env)
        ),
        daemon=True,
    )
    signins = SigninLoop(idp, info)
    samples = Samples()
    started = time.monotonic()
    _sample(idp, samples, 0.0, client)
    runner.start()
    signins.start()
    print(f"\nsoak: {args.seconds:g} s, sampling every {args.interval:g} s ...", flush=True)
    next_at = started + args.interval
    while runner.is_alive():
        runner.join(timeout=max(0.0, next_at - time.monotonic()))
        if not runner.is_alive():
            break
        _sample(idp, samples, time.monotonic() - started, client)
        next_at += args.interval
    signins.stopping.set()
    signins.join(timeout=60)
    _sample(idp, samples, time.monotonic() - started, client)

    load = loads[0] if loads else None
    print(f"\nmixed load for {args.seconds:g} s:")
    if load is not None:
        print(
            f"  wrk client_credentials, {args.connections} connections, random of {info.clients} "
            f"clients: {load.rate:.0f} req/s, p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms, "
            f"{load.errors} errors"
        )
    took = statistics.median(signins.seconds) if signins.seconds else 0.0
    print(
        f"  browser sign-ins (fresh cookie jar each, never signed out): {signins.done} done "
        f"({signins.done / args.seconds:.1f}/s, median {took * 1000:.0f} ms), "
        f"{sum(signins.failed.values())} failed"
    )
    for reason, count in signins.failed.most_common(3):
        print(f"    {count} x {reason}")

    half = args.seconds / 2
    print(f"\nRSS per gunicorn process (VmRSS), slope over the second half (t >= {half:g} s)")
    print(
        f"{'pid':>8} {'role':<8} {'start MB':>9} {'mid MB':>8} {'end MB':>8} {'max MB':>8} "
        f"{'MB/min':>8} {'samples':>8}"
    )
    for pid, points in sorted(
        samples.rss.items(), key=lambda item: (samples.roles[item[0]] != "arbiter", item[0])
    ):
        slope = _slope([p for p in points if p[0] >= half])
        first, last = points[0][1] / 1024, points[-1][1] / 1024
        middle = next((kb for t, kb in points if t >= half), points[-1][1]) / 1024
        peak = max(kb for _, kb in points) / 1024
        shown = f"{slope:8.2f}" if slope is not None else "       -"
        role = samples.roles[pid]
        print(
            f"{pid:>8} {role:<8} {first:>9.1f} {middle:>8.1f} {last:>8.1f} {peak:>8.1f} {shown} "
            f"{len(points):>8}"
        )
    workers = [pid for pid, role in samples.roles.items() if role == "worker"]
    total = sum(samples.rss[pid][-1][1] for pid in samples.rss) / 1024
    print(f"  {len(workers)} workers; all processes together at the end: {total:.1f} MB")

    keys_start, keys_end = samples.keys[0][1], samples.keys[-1][1]
    print(f"\nRedis keys under the run's prefix: {keys_start} at the start, {keys_end} at the end")
    final = sorted(_scan(client, harness.REDIS_PREFIX))
    by_family: dict[str, list[KeyState]] = defaultdict(list)
    for start in range(0, len(final), 500):
        for state in _describe_sizes(client, harness.REDIS_PREFIX, final[start : start + 500]):
            by_family[_family(state.name)].append(state)
    print(f"{'family':<18} {'keys':>7} {'MEMORY USAGE':>13} {'per key B':>10}")
    for family, states in sorted(by_family.items(), key=lambda item: -sum(s.memory for s in item[1])):
        memory = sum(s.memory for s in states)
        print(f"{family:<18} {len(states):>7} {memory:>13,} {memory / len(states):>10.0f}")
    sessions = len(by_family.get("sso", []))
    if sessions:
        session_bytes = sum(
            sum(s.memory for s in by_family.get(family, [])) for family in ("sso", "sso-sid", "sso-account")
        )
        print(
            f"  {sessions} live SSO sessions hold {session_bytes:,} B in sso, sso-sid and sso-account: "
            f"{session_bytes / sessions:.0f} B per session"
        )


def _describe_sizes(client: redis.Redis, prefix: str, keys: list[bytes]) -> list[KeyState]:
    """Like ``_describe`` without reading the values (MEMORY USAGE only)."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key, samples=0)
    answers = pipe.execute()
    return [
        KeyState(key.decode()[len(prefix) :], "", 0, int(memory or 0), 0, 0)
        for key, memory in zip(keys, answers, strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="soak length (the issue asks for 600)")
    parser.add_argument("--interval", type=float, default=5, help="seconds between RSS samples")
    parser.add_argument("--connections", type=int, default=8, help="wrk client_credentials connections")
    parser.add_argument("--users", type=int, default=10_000, help="seeded people")
    parser.add_argument("--clients", type=int, default=100, help="seeded clients")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: Hawiya's own)")
    args = parser.parse_args()
    # The sign-in thread and the sampler run beside wrk, away from the servers.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(harness.LOAD_CPU)})
    with hawiya(workers=args.workers) as idp:
        info = seed(idp.database_url, users=args.users, clients=args.clients)
        print(f"seeded {info.users:,} people and {info.clients:,} clients in {info.seconds:.1f} s")
        idp.start()
        session_state(idp, info)
        soak(idp, info, args)


if __name__ == "__main__":
    main()
