"""Authorization-code exchanges and refresh grants per second: Hawiya on PostgreSQL + Redis.

One person signs in once through the real browser flow (authorize, sign-in form with its CSRF
token, consent, PKCE); that browser's SSO cookie then mints codes from /authorize alone (consent
remembered), each with its own PKCE verifier. wrk (bench/wrk/code_exchange.lua) spends each code
once at POST /token (client_secret_basic), keeping the refresh tokens it receives; then wrk
(bench/wrk/refresh.lua) rotates those refresh tokens, each presented once. Codes are minted before
the run, so the run sets HAWIYA_CODE_TTL above its default 60 s. Prints requests/s, p50/p99,
errors, and how busy the server's CPU was (CPU ms per request: CPU-bound or waiting on commits).
Figures only: never fails on timing.

Run: .venv/bin/python bench/bench_grants.py [--seconds 5] [--connections 8] [--warmup 2]
     [--workers N] [--codes N] [--code-ttl 900]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import flow
from bench.harness import BENCH, LOAD_CPU, SERVER_CPU, Hawiya, Load, basic, hawiya, wrk

CODE_SCRIPT = BENCH / "wrk" / "code_exchange.lua"
REFRESH_SCRIPT = BENCH / "wrk" / "refresh.lua"
SCOPE = "openid profile offline_access"
CLIENT_ID = "bench-web"
#: The codes of one warm-up run (also how fast the exchange goes, to size the measured run).
WARMUP_CODES = 300


def wrk_threads(connections: int) -> int:
    """The thread count bench.harness.wrk gives wrk for ``connections`` (the scripts slice by it)."""
    return max(1, min(connections, 2))


@dataclass
class Run:
    """One wrk run and what the scripts left beside it."""

    load: Load
    #: Codes or refresh tokens the run was given.
    supplied: int
    #: The first error answer a wrk thread saw ("status body"), if any.
    first_error: str | None
    #: The run spent everything it was given before its time was up (its rate is a lower bound).
    exhausted: bool
    #: CPU the server's processes used during the run, seconds.
    server_cpu: float = 0.0


def _first_error(prefix: Path) -> str | None:
    for path in sorted(prefix.parent.glob(prefix.name + ".*")):
        text = path.read_text().strip()
        if text:
            return text[:500]
    return None


def _collect(prefix: Path) -> list[str]:
    tokens: list[str] = []
    for path in sorted(prefix.parent.glob(prefix.name + ".*")):
        tokens += [line for line in path.read_text().splitlines() if line]
    return tokens


def exchange(
    idp: Hawiya,
    env: dict[str, str],
    codes: list[tuple[str, str]],
    work: Path,
    name: str,
    *,
    connections: int,
    seconds: float,
) -> tuple[Run, list[str]]:
    """Spend ``codes`` at /token with wrk; the run and the refresh tokens it received."""
    codes_file = flow.write_lines(work / f"{name}.codes", codes)
    out, errors = work / f"{name}.refresh", work / f"{name}.errors"
    cpu = flow.cpu_seconds(idp.pids())
    load = wrk(
        f"{idp.url}/token",
        CODE_SCRIPT,
        connections=connections,
        seconds=seconds,
        env={
            **env,
            "CODES": str(codes_file),
            "THREADS": str(wrk_threads(connections)),
            "REFRESH_OUT": str(out),
            "ERRORS": str(errors),
        },
    )
    cpu = flow.cpu_seconds(idp.pids()) - cpu
    run = Run(load, len(codes), _first_error(errors), load.requests >= len(codes) - connections, cpu)
    return run, _collect(out)


def refresh(
    idp: Hawiya,
    env: dict[str, str],
    tokens: list[str],
    work: Path,
    name: str,
    *,
    connections: int,
    seconds: float,
) -> Run:
    """Rotate ``tokens`` at /token with wrk (each presented once; each answer's new token queued)."""
    tokens_file = flow.write_lines(work / f"{name}.tokens", tokens)
    errors = work / f"{name}.errors"
    cpu = flow.cpu_seconds(idp.pids())
    load = wrk(
        f"{idp.url}/token",
        REFRESH_SCRIPT,
        connections=connections,
        seconds=seconds,
        env={
            **env,
            "TOKENS": str(tokens_file),
            "THREADS": str(wrk_threads(connections)),
            "ERRORS": str(errors),
        },
    )
    # The queue only runs dry when answers carry no new token (errors): then the run stopped early.
    cpu = flow.cpu_seconds(idp.pids()) - cpu
    dry = load.errors > 0 and load.errors >= len(tokens) - connections
    return Run(load, len(tokens), _first_error(errors), dry, cpu)


def header() -> str:
    """The table's first line."""
    return (
        f"{'grant':<34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
        f"{'server CPU':>10} {'CPU ms/req':>10}  note"
    )


def row(name: str, run: Run) -> str:
    """One line of the table."""
    load = run.load
    note = "RAN OUT of codes/tokens: rate is a lower bound" if run.exhausted else ""
    if load.requests == 0:
        note = "NO ANSWER within the run"
    busy = f"{run.server_cpu / load.seconds:.0%}" if load.seconds else "-"
    per = f"{run.server_cpu / load.requests * 1e3:.2f}" if load.requests else "-"
    return (
        f"{name:<34} {load.rate:>9.0f} {load.p50_ms:>8.2f} {load.p99_ms:>8.2f} {load.errors:>7} "
        f"{busy:>10} {per:>10}  {note}"
    )


def _port(port: int | None) -> dict[str, int]:
    return {"port": port} if port else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5, help="each measured run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=2, help="seconds of each warm-up run")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: Hawiya's own)")
    parser.add_argument(
        "--codes", type=int, help="codes to mint for the measured run (default: sized from the warm-up)"
    )
    parser.add_argument(
        "--code-ttl", type=int, default=900, help="HAWIYA_CODE_TTL for this run, s (Hawiya's default: 60)"
    )
    parser.add_argument("--mint-threads", type=int, default=4, help="Python threads minting codes")
    parser.add_argument("--port", type=int, help="Hawiya's port (default: a free one)")
    args = parser.parse_args()

    # This driver (it mints the codes) and the CLI runs it starts stay off the server CPU.
    os.sched_setaffinity(0, flow.cpus(LOAD_CPU))
    settings = {"HAWIYA_CODE_TTL": str(args.code_ttl)}
    with (
        hawiya(**_port(args.port), workers=args.workers, settings=settings) as idp,
        tempfile.TemporaryDirectory(prefix="bench-grants-") as tmp,
    ):
        work = Path(tmp)
        secret = flow.web_client(idp, client_id=CLIENT_ID, scope=SCOPE)
        idp.start()
        (username,) = flow.seed_people(idp, 1, prefix="grants")

        # The one real sign-in: authorize, sign-in form, consent, code; its tokens prove the client.
        browser = flow.Browser(idp.url)
        code, verifier = browser.full_signin(CLIENT_ID, username, scope=SCOPE)
        first = browser.token(CLIENT_ID, secret, code, verifier)
        if "refresh_token" not in first:
            raise SystemExit(f"the code exchange issued no refresh token: {sorted(first)}")
        cookies = browser.http.cookies
        env = {"BASIC": basic(CLIENT_ID, secret), "REDIRECT_URI": flow.REDIRECT_URI}

        def mint(count: int) -> tuple[list[tuple[str, str]], float]:
            start = time.perf_counter()
            codes = flow.mint_codes(
                idp.url, cookies, CLIENT_ID, count, scope=SCOPE, threads=args.mint_threads
            )
            return codes, time.perf_counter() - start

        # Warm-up (imports, pools, caches), which also says how many codes a measured run needs; it
        # runs again with three times the codes while it runs out of them. The measured run gets 2.5
        # times what the warm-up's rate asks for: the machine's other load varies.
        warm_tokens: list[str] = []
        size = WARMUP_CODES
        for attempt in range(4):
            codes, mint_seconds = mint(size)
            mint_rate = len(codes) / mint_seconds
            warm, received = exchange(
                idp, env, codes, work, f"warm{attempt}", connections=args.connections, seconds=args.warmup
            )
            warm_tokens += received
            if not warm.exhausted:
                break
            size *= 3
        estimate = warm.load.rate * (2 if warm.exhausted else 1)
        needed = args.codes or math.ceil(estimate * args.seconds * 2.5) + 4 * args.connections
        codes, mint_seconds = mint(needed)
        if mint_seconds + args.seconds + 5 > args.code_ttl:
            print(f"(warning: minting took {mint_seconds:.0f} s: codes may expire; raise --code-ttl)")
        measured, tokens = exchange(
            idp, env, codes, work, "measured", connections=args.connections, seconds=args.seconds
        )

        # Refresh: the warm-up's tokens warm it; the measured exchange's tokens feed the measured run.
        warm_refresh = refresh(
            idp, env, warm_tokens, work, "warm-refresh", connections=args.connections, seconds=args.warmup
        )
        # Spent tokens must never come back (that is a reuse: Hawiya revokes the family), so a pool
        # too small to keep every connection busy is topped up with fresh exchanges, not the warm-up's.
        pool = list(tokens)
        if len(pool) < 4 * args.connections:
            extra, _seconds = mint(4 * args.connections - len(pool))
            pool += [str(browser.token(CLIENT_ID, secret, c, v)["refresh_token"]) for c, v in extra]
        refreshed = refresh(
            idp, env, pool, work, "refresh", connections=args.connections, seconds=args.seconds
        )

        print(
            f"\nGrants at POST /token, Hawiya ({os.environ.get('HAWIYA_SERVER', 'gunicorn')}, "
            f"PostgreSQL + Redis, server on CPU {SERVER_CPU}), "
            f"{args.connections} connections, {args.seconds:g} s each after a {args.warmup:g} s warm-up"
        )
        print(
            f"codes: {len(codes)} minted from /authorize with one SSO session in {mint_seconds:.1f} s "
            f"({len(codes) / mint_seconds:.0f}/s by {args.mint_threads} Python threads; "
            f"warm-up {mint_rate:.0f}/s), HAWIYA_CODE_TTL={args.code_ttl} for this run (default 60)"
        )
        print(
            f"refresh: a pool of {len(pool)} distinct refresh tokens (offline_access), each presented once, "
            "each answer's new token queued (rotation)"
        )
        print(header())
        print(row("authorization_code (PKCE, basic)", measured))
        print(row("refresh_token (rotating)", refreshed))
        print("target: >= 480/s each, zero errors")
        for name, run in (
            ("warm-up code exchange", warm),
            ("authorization_code", measured),
            ("warm-up refresh", warm_refresh),
            ("refresh_token", refreshed),
        ):
            if run.load.errors:
                print(
                    f"WARNING: {name}: {run.load.errors} errors; first: {run.first_error or '(not captured)'}"
                )
        if measured.exhausted:
            print(f"WARNING: the exchange spent all {len(codes)} codes early: rerun with --codes larger")


if __name__ == "__main__":
    main()
