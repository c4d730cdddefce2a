"""client_credentials with ES256 JWT access tokens: Hawiya beside panva's oidc-provider.

Both servers on the same CPU, wrk on the other, alternately A B A B; prints requests/s, p50/p99,
errors and the ratio to the peer. Figures only: never fails on timing.

Run: .venv/bin/python bench/bench_client_credentials.py [--seconds 10] [--rounds 2]
     [--connections 8] [--scaling 1,2,4,8,16] [--workers N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    API_RESOURCE,
    API_SCOPE,
    BENCH,
    PEER_CLIENT,
    Load,
    basic,
    hawiya,
    peer,
    peer_available,
    wrk,
)

SCRIPT = BENCH / "wrk" / "client_credentials.lua"


def _row(name: str, loads: list[Load], peer_rate: float | None = None) -> str:
    rate = statistics.median(load.rate for load in loads)
    p50 = statistics.median(load.p50_ms for load in loads)
    p99 = max(load.p99_ms for load in loads)
    errors = sum(load.errors for load in loads)
    ratio = f"{rate / peer_rate:6.2f}" if peer_rate else "     -"
    return f"{name:<28} {rate:>9.0f} {p50:>8.2f} {p99:>8.2f} {errors:>7} {ratio}"


def header() -> str:
    """The table's first line."""
    return f"{'server':<28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'ratio':>6}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of A B (C ...)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--servers", default="gunicorn,granian", help="Hawiya's HTTP servers to measure")
    parser.add_argument("--scaling", help="Also Hawiya alone at these connection counts, e.g. 1,2,4,8,16")
    parser.add_argument("--workers", type=int, help="worker processes (default: Hawiya's own)")
    args = parser.parse_args()
    servers = [name.strip() for name in args.servers.split(",") if name.strip()]

    with hawiya(workers=args.workers) as idp:
        secret = idp.api_client()
        ours_env = {"BASIC": basic("bench-api", secret), "SCOPE": API_SCOPE, "RESOURCE": API_RESOURCE}
        peer_env = {"BASIC": basic(*PEER_CLIENT), "SCOPE": API_SCOPE, "RESOURCE": API_RESOURCE}
        with_peer = peer_available()
        if not with_peer:
            print("(node or bench/peer/node_modules missing: Hawiya alone; `make bench` installs the peer)")
        ours: dict[str, list[Load]] = {name: [] for name in servers}
        theirs: list[Load] = []

        def measure(server: str, seconds: float, connections: int) -> Load:
            """Serve with ``server``, warm it for 2 s, then measure."""
            idp.settings["HAWIYA_SERVER"] = server
            idp.start()
            try:
                wrk(f"{idp.url}/token", SCRIPT, connections=connections, seconds=2, env=ours_env)
                return wrk(f"{idp.url}/token", SCRIPT, connections=connections, seconds=seconds, env=ours_env)
            finally:
                idp.stop()

        with peer() if with_peer else nullcontext() as peer_url:
            if peer_url:  # warm it (the JIT) before anything is counted
                wrk(f"{peer_url}/token", SCRIPT, connections=args.connections, seconds=2, env=peer_env)
            for _ in range(args.rounds):
                for server in servers:
                    ours[server].append(measure(server, args.seconds, args.connections))
                if peer_url:
                    theirs.append(
                        wrk(
                            f"{peer_url}/token",
                            SCRIPT,
                            connections=args.connections,
                            seconds=args.seconds,
                            env=peer_env,
                        )
                    )
        print(
            f"\nclient_credentials, ES256 JWT access token, {args.connections} connections, "
            f"{args.rounds} x {args.seconds:g} s each, alternated (median rate, worst p99)"
        )
        print(header())
        peer_rate = statistics.median(load.rate for load in theirs) if theirs else None
        for server in servers:
            print(_row(f"hawiya ({server}, PG+Redis)", ours[server], peer_rate))
        if theirs:
            print(_row("oidc-provider 9.13.3", theirs))
        print("target: ratio >= 1.0 (aim 1.5), zero errors")
        print("(`hawiya serve` runs gunicorn unless HAWIYA_SERVER=granian)")
        if args.scaling:
            for server in servers:
                print(f"\nhawiya ({server}) alone by connections ({args.seconds:g} s each)")
                print(header())
                for count in (int(c) for c in args.scaling.split(",")):
                    print(_row(f"{count} connections", [measure(server, args.seconds, count)]))


if __name__ == "__main__":
    main()
