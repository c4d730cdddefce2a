"""How Hawiya's cost grows with the size of its data: the same requests against a database seeded
(bench/seed.py, PostgreSQL COPY) with few and with many people and clients.

For each data size, a fresh instance is seeded, served (gunicorn, PostgreSQL + Redis, on the server
CPU) and driven with wrk (on the load CPU):

- client_credentials for one client, then for a client picked at random per request among all the
  seeded ones (bench/wrk/client_credentials_many.lua): the client lookup at the token endpoint;
- userinfo with the access token of a person picked at random per request among ``--people``
  seeded people who signed in first through the real pages: the token's pairwise subject, then the
  account, looked up per request;
- the sign-in POST with a username nobody has (bench/wrk/signin_unknown.lua): the username lookup
  sign-in makes, but this path also runs a dummy Argon2id verification (no user enumeration), so
  its rate is Argon2's whatever the data size. The per-IP failure limit is raised for this run
  (HAWIYA_IP_MAX_FAILURES=1000000000) or wrk's address would be throttled after 100 failures.

and, in this process, the account lookups themselves through Hawiya's own AccountService (what
sign-in does before the password hash, and what the staff console's national-id search does).
Access tokens live an hour here (HAWIYA_ACCESS_TOKEN_TTL=3600) so the minted ones outlast the run.

The default sizes keep ``make bench`` short: 10k people / 100 clients and 100k / 1k. ``--large``
measures the issue's sizes: 10k / 100 and 1M / 10k. Figures only: never fails on timing.

Run: .venv/bin/python bench/bench_data_size.py [--large] [--sizes 10000:100,100000:1000]
     [--seconds 10] [--connections 8] [--people 50] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
import requests

from bench import harness
from bench.harness import API_RESOURCE, API_SCOPE, BENCH, Hawiya, Load, basic, hawiya, wrk
from bench.seed import (
    SeedInfo,
    client_id,
    libpq_url,
    national_id,
    redirect_uri,
    seed,
    sign_in,
    username,
)

DEFAULT_SIZES = ((10_000, 100), (100_000, 1_000))
LARGE_SIZES = ((10_000, 100), (1_000_000, 10_000))
SETTINGS = {"HAWIYA_ACCESS_TOKEN_TTL": "3600", "HAWIYA_IP_MAX_FAILURES": "1000000000"}
ONE_CLIENT = BENCH / "wrk" / "client_credentials.lua"
MANY_CLIENTS = BENCH / "wrk" / "client_credentials_many.lua"
USERINFO = BENCH / "wrk" / "userinfo_many.lua"
UNKNOWN_SIGNIN = BENCH / "wrk" / "signin_unknown.lua"
_CSRF = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Lookups:
    """In-process account lookups: how many, and their latencies."""

    count: int
    seconds: float
    p50_us: float
    p99_us: float

    @property
    def rate(self) -> float:
        """Lookups per second."""
        return self.count / self.seconds if self.seconds else 0.0


@dataclass
class Result:
    """Everything measured at one data size."""

    info: SeedInfo
    sizes: dict[str, int]
    signin_seconds: float
    loads: dict[str, Load]
    lookups: dict[str, Lookups]


def _table_sizes(database_url: str) -> dict[str, int]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        return {
            table: int(
                conn.execute("SELECT pg_total_relation_size(%s::regclass)", (table,)).fetchone()[0]  # type: ignore[index]
            )
            for table in ("accounts", "clients", "audit_events")
        }


def _mint_tokens(idp: Hawiya, info: SeedInfo, people: int, rng: random.Random) -> tuple[list[str], float]:
    """Access tokens of ``people`` seeded people picked at random, each signed in through the real
    pages at a random seeded client; and the median seconds of one whole sign-in."""
    picks = [(rng.randrange(info.users), rng.randrange(info.clients)) for _ in range(people)]

    def one(pick: tuple[int, int]) -> tuple[str, float]:
        person, client = pick
        started = time.perf_counter()
        tokens = sign_in(
            idp.url,
            user=username(person),
            password=info.password,
            client=client_id(client),
            secret=info.client_secret,
            redirect=redirect_uri(client),
        )
        return str(tokens["access_token"]), time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(one, picks))
    return [token for token, _ in done], statistics.median(took for _, took in done)


def _signin_form(idp: Hawiya) -> tuple[str, str]:
    """The CSRF token and Cookie header of one sign-in page (reusable until they expire)."""
    http = requests.Session()
    page = http.get(f"{idp.url}/signin", timeout=30)
    found = _CSRF.search(page.text)
    if page.status_code != 200 or found is None:
        raise harness.BenchError(f"/signin gave {page.status_code} without a CSRF token")
    cookie = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
    return found.group(1), cookie


def _check_unknown_signin(idp: Hawiya, csrf: str, cookie: str) -> str:
    """One unknown-user POST as wrk sends it: the page's answer (401 'not correct' expected)."""
    response = requests.post(
        f"{idp.url}/signin",
        data={"csrf_token": csrf, "username": "nobody-check", "password": "not-the-password-at-all"},
        headers={"Cookie": cookie},
        allow_redirects=False,
        timeout=30,
    )
    throttled = "too many" in response.text.lower()
    return f"{response.status_code}{' THROTTLED' if throttled else ''}"


def _lookups(idp: Hawiya, info: SeedInfo, seconds: float, rng: random.Random) -> dict[str, Lookups]:
    """Account lookups through Hawiya's AccountService in this process (load CPU), for
    ``seconds`` each: by username (sign-in's, before the hash), by an unknown username, by
    national id (the staff console's search)."""
    from idp.registry import Registry
    from idp.settings import Settings

    registry = Registry(Settings.from_env(idp.env))
    accounts = registry.accounts
    calls = {
        "lookup by username (AccountService.signin_record)": lambda: accounts.signin_record(
            username(rng.randrange(info.users))
        ),
        "lookup by unknown username (signin_record)": lambda: accounts.signin_record(
            f"nobody{rng.randrange(10**9)}"
        ),
        "lookup by national id (AccountService.existing)": lambda: accounts.existing(
            national_ids=[national_id(rng.randrange(info.users))], usernames=[]
        ),
    }
    found: dict[str, Lookups] = {}
    try:
        for name, call in calls.items():
            for _ in range(50):  # warm the connection pool and the statement cache
                call()
            took: list[float] = []
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                call()
                took.append(time.perf_counter() - started)
            took.sort()
            found[name] = Lookups(
                count=len(took),
                seconds=sum(took),
                p50_us=took[len(took) // 2] * 1e6,
                p99_us=took[min(len(took) - 1, int(len(took) * 0.99))] * 1e6,
            )
    finally:
        registry.close()
    return found


def measure(users: int, clients: int, args: argparse.Namespace) -> Result:
    """Seed, serve and measure one data size."""
    rng = random.Random(users * 7 + clients)
    with hawiya(workers=args.workers, settings=dict(SETTINGS)) as idp:
        print(f"\n== {users:,} people, {clients:,} clients: seeding ...", flush=True)
        info = seed(idp.database_url, users=users, clients=clients)
        sizes = _table_sizes(idp.database_url)
        print(f"   seeded in {info.seconds:.1f} s; serving, signing {args.people} people in ...", flush=True)
        idp.start()
        tokens, signin_seconds = _mint_tokens(idp, info, args.people, rng)
        clients_file = idp.instance / "clients.txt"
        clients_file.write_text("".join(f"{client_id(i)}\n" for i in range(clients)))
        tokens_file = idp.instance / "tokens.txt"
        tokens_file.write_text("".join(f"{token}\n" for token in tokens))
        common = {"SCOPE": API_SCOPE, "RESOURCE": API_RESOURCE}
        many_env = {**common, "CLIENTS_FILE": str(clients_file), "SECRET": info.client_secret}
        one_env = {**common, "BASIC": basic(info.sample_client_id, info.client_secret)}
        token_url = f"{idp.url}/token"
        # Warm every worker (imports, pools, caches) before anything is counted.
        wrk(token_url, MANY_CLIENTS, connections=args.connections, seconds=2, env=many_env)
        wrk(
            f"{idp.url}/userinfo",
            USERINFO,
            connections=args.connections,
            seconds=1,
            env={"TOKENS_FILE": str(tokens_file)},
        )
        print("   measuring ...", flush=True)
        loads: dict[str, Load] = {}
        loads["client_credentials, one client"] = wrk(
            token_url, ONE_CLIENT, connections=args.connections, seconds=args.seconds, env=one_env
        )
        loads[f"client_credentials, random of {clients:,} clients"] = wrk(
            token_url, MANY_CLIENTS, connections=args.connections, seconds=args.seconds, env=many_env
        )
        loads[f"userinfo, random of {len(tokens)} people"] = wrk(
            f"{idp.url}/userinfo",
            USERINFO,
            connections=args.connections,
            seconds=args.seconds,
            env={"TOKENS_FILE": str(tokens_file)},
        )
        csrf, cookie = _signin_form(idp)
        before = _check_unknown_signin(idp, csrf, cookie)
        # Argon2-bound whatever the data: a shorter run says as much.
        loads["sign-in POST, unknown username (401s expected)"] = wrk(
            idp.url, UNKNOWN_SIGNIN, connections=args.connections, seconds=min(args.seconds, 5),
            env={"CSRF_TOKEN": csrf, "COOKIE": cookie},
        )  # fmt: skip
        after = _check_unknown_signin(idp, csrf, cookie)
        if before != "401" or after != "401":
            print(f"   ! unknown-user sign-in answered {before} before and {after} after the run")
        lookups = _lookups(idp, info, args.lookup_seconds, rng)
        return Result(info, sizes, signin_seconds, loads, lookups)


def _mb(size: int) -> str:
    return f"{size / 1e6:,.0f} MB" if size >= 1e6 else f"{size / 1e3:,.0f} kB"


def report(result: Result, args: argparse.Namespace) -> None:
    """One data size's table."""
    info = result.info
    print(
        f"\n{info.users:,} people, {info.clients:,} clients: seeded in {info.seconds:.1f} s "
        f"(accounts {_mb(result.sizes['accounts'])}, clients {_mb(result.sizes['clients'])}, "
        f"audit_events {_mb(result.sizes['audit_events'])} with indexes)"
    )
    print(
        f"wrk, {args.connections} connections, {args.seconds:g} s each (unknown-user sign-ins "
        f"{min(args.seconds, 5):g} s); one full browser sign-in "
        f"(pages, Argon2id, consent, code exchange) took {result.signin_seconds * 1000:.0f} ms (median)"
    )
    print(f"{'what':<56} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, load in result.loads.items():
        errors = "(401s)" if "401" in name else str(load.errors)
        print(f"{name:<56} {load.rate:>9.0f} {load.p50_ms:>8.2f} {load.p99_ms:>8.2f} {errors:>7}")
    print(f"{'in-process, Hawiya AccountService on PostgreSQL':<56} {'/s':>9} {'p50 µs':>8} {'p99 µs':>8}")
    for name, lookup in result.lookups.items():
        print(f"{name:<56} {lookup.rate:>9.0f} {lookup.p50_us:>8.0f} {lookup.p99_us:>8.0f}")


def compare(results: list[Result]) -> None:
    """Each rate at the largest size as a share of the smallest's."""
    if len(results) < 2:
        return
    small, large = results[0], results[-1]
    print(
        f"\nlargest ({large.info.users:,} / {large.info.clients:,}) against smallest "
        f"({small.info.users:,} / {small.info.clients:,}): rate ratio (1.00 = no slower)"
    )
    for (name, load), other in zip(large.loads.items(), small.loads.values(), strict=True):
        generic = re.sub(r"[0-9,]+ (clients|people)", r"N \1", name)
        print(f"  {generic:<56} {load.rate / other.rate:6.2f}")
    for (name, lookup), other_lookup in zip(large.lookups.items(), small.lookups.values(), strict=True):
        print(f"  {name:<56} {lookup.rate / other_lookup.rate:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="10k/100 and 1M/10k (the issue's sizes)")
    parser.add_argument("--sizes", help="people:clients pairs, e.g. 10000:100,100000:1000")
    parser.add_argument("--seconds", type=float, default=10, help="per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--people", type=int, default=50, help="people signed in for userinfo tokens")
    parser.add_argument("--lookup-seconds", type=float, default=1.5, help="per in-process lookup kind")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: Hawiya's own)")
    args = parser.parse_args()
    if args.sizes:
        sizes = tuple(tuple(int(n) for n in pair.split(":")) for pair in args.sizes.split(","))
    else:
        sizes = LARGE_SIZES if args.large else DEFAULT_SIZES
    label = "--sizes" if args.sizes else "--large" if args.large else "default (--large for 1M / 10k)"
    print(
        f"data sizes ({label}): "
        + ", ".join(f"{users:,} people / {clients:,} clients" for users, clients in sizes)
    )
    # This process (the sign-ins and lookups it drives) runs beside wrk, away from the servers.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(harness.LOAD_CPU)})
    results = []
    for users, clients in sizes:
        result = measure(users, clients, args)
        report(result, args)
        results.append(result)
    compare(results)
    print(
        "\nsettings for these runs: HAWIYA_ACCESS_TOKEN_TTL=3600 (minted tokens outlast the run), "
        "HAWIYA_IP_MAX_FAILURES=1000000000 (wrk's unknown-user sign-ins are not throttled)"
    )


if __name__ == "__main__":
    main()
