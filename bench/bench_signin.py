"""Password sign-ins: how close Hawiya gets to the Argon2id limit, and what a whole browser sign-in
costs besides the hash. Hawiya on PostgreSQL + Redis (gunicorn), server on its CPU, this driver on
the load CPU.

(a) Sign-ins per second at several concurrencies (Python threads): each is a fresh browser whose
    authorization request is already parked (its /authorize done before the clock starts), then
    GET the sign-in page (its interaction, CSRF token) and POST the password; a sign-in counts when
    Hawiya answers with the redirect back to the authorization. Compared with the Argon2id limit:
    Hawiya's own hasher and settings timed in a process on the server CPU while the server is idle
    (before and after the load; the faster), limit = server cores / verify time.
(b) The whole browser sign-in, one at a time, each with a fresh browser and a person never seen
    before (so the consent page is real): /authorize, sign-in page, POST password, resume, consent
    page, POST consent, POST /token, GET /userinfo. Median time per step, client-side and from
    gunicorn's access log (server-side), and the median total without the password hash.

People come from one `hawiya users import` and their activation codes spent at /activate.
Figures only: never fails on timing.

Run: .venv/bin/python bench/bench_signin.py [--seconds 8] [--concurrency 4,8] [--flows 50]
     [--workers N]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import flow
from bench.harness import LOAD_CPU, SERVER_CPU, BenchError, Hawiya, hawiya
from idp.settings import Settings

SCOPE = "openid profile"
CLIENT_ID = "bench-signin"
#: Full flows run (and not counted) before (b) is measured.
FLOW_WARMUP = 3
#: The steps of (b), in order.
STEPS = (
    "GET /authorize",
    "GET /signin",
    "POST /signin",
    "GET /authorize/resume",
    "GET /consent",
    "POST /consent",
    "POST /token",
    "GET /userinfo",
)
_ACCESS = re.compile(r'"(GET|POST) ([^"]+)" (\d{3}) \S+ ([0-9.]+)s$')


def ms(seconds: float) -> str:
    """Seconds as milliseconds, two decimals."""
    return f"{seconds * 1e3:.2f}"


@dataclass
class Throughput:
    """What one concurrency level of (a) measured."""

    concurrency: int
    done: int = 0
    refused: int = 0
    first_refusal: str | None = None
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    #: The run spent every parked sign-in before its time was up (it stopped early).
    exhausted: bool = False

    @property
    def rate(self) -> float:
        """Successful sign-ins per second."""
        return self.done / self.seconds if self.seconds else 0.0


def signin_load(
    idp: Hawiya, parked: list[tuple[flow.Browser, str]], people: list[str], concurrency: int, seconds: float
) -> Throughput:
    """``concurrency`` threads signing in the ``parked`` browsers (people round-robin) for
    ``seconds`` or until every parked browser is used."""
    result = Throughput(concurrency)
    lock = threading.Lock()
    queue = list(reversed(parked))
    deadline = 0.0

    def worker() -> None:
        while time.perf_counter() < deadline:
            with lock:
                if not queue:
                    result.exhausted = True
                    return
                browser, path = queue.pop()
                person = people[len(queue) % len(people)]
            start = time.perf_counter()
            try:
                fields = browser.sign_in_page(path)
                response = browser.request(
                    "POST /signin",
                    "POST",
                    "/signin",
                    data={**fields, "username": person, "password": flow.PASSWORD},
                )
                ok = (
                    response.is_redirect
                    and urlsplit(response.headers["Location"]).path == "/authorize/resume"
                )
                failure = None if ok else f"{response.status_code}: {_page_error(response.text)}"
            except (BenchError, OSError) as error:
                failure = str(error)[:300]
            elapsed = time.perf_counter() - start
            with lock:
                if failure is None:
                    result.done += 1
                    result.latencies.append(elapsed)
                else:
                    result.refused += 1
                    result.first_refusal = result.first_refusal or failure

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    cpu = flow.cpu_seconds(idp.pids())
    start = time.perf_counter()
    deadline = start + seconds
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - start
    result.server_cpu = flow.cpu_seconds(idp.pids()) - cpu
    return result


def _page_error(html: str) -> str:
    """The error a refused sign-in page shows (its alert), or the start of the page."""
    found = re.search(r'id="signin-error"[^>]*>([^<]*)<', html)
    return (found.group(1).strip() if found else html[:200]).replace("\n", " ")


def access_log(idp: Hawiya, offset: int) -> list[tuple[str, int, float]]:
    """(method and path, status, seconds) of every request gunicorn logged after byte ``offset``."""
    lines = (idp.instance / "serve.log").read_bytes()[offset:].decode(errors="replace").splitlines()
    found = []
    for line in lines:
        match = _ACCESS.search(line)
        if match:
            method, path, status, seconds = match.groups()
            found.append((f"{method} {path}", int(status), float(seconds)))
    return found


def log_size(idp: Hawiya) -> int:
    """How long the server's log is now (where the next request's line will start)."""
    return (idp.instance / "serve.log").stat().st_size


def full_flows(
    idp: Hawiya, secret: str, people: list[str]
) -> tuple[dict[str, list[float]], dict[str, list[float]], list[float], list[float]]:
    """(b): one whole sign-in per person, sequentially. Client-side and server-side (access log)
    times by step, and the client-side and server-side total of each flow."""
    client: dict[str, list[float]] = {step: [] for step in STEPS}
    server: dict[str, list[float]] = {step: [] for step in STEPS}
    totals: list[float] = []
    server_totals: list[float] = []
    for person in people:
        time.sleep(0.02)  # let the previous flow's access-log lines reach the file
        offset = log_size(idp)
        browser = flow.Browser(idp.url)
        code, verifier = browser.full_signin(CLIENT_ID, person, scope=SCOPE)
        tokens = browser.token(CLIENT_ID, secret, code, verifier)
        browser.userinfo(str(tokens["access_token"]))
        names = [step.name for step in browser.steps]
        if tuple(names) != STEPS:
            raise BenchError(f"unexpected flow: {names}")
        for step in browser.steps:
            client[step.name].append(step.seconds)
        totals.append(sum(step.seconds for step in browser.steps))
        time.sleep(0.05)
        logged = access_log(idp, offset)
        if [entry[0] for entry in logged] == list(STEPS):
            for name, _status, seconds in logged:
                server[name].append(seconds)
            server_totals.append(sum(entry[2] for entry in logged))
    return client, server, totals, server_totals


def _port(port: int | None) -> dict[str, int]:
    return {"port": port} if port else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8, help="each concurrency level of (a)")
    parser.add_argument("--concurrency", default="4,8", help="(a): concurrent sign-ins, comma-separated")
    parser.add_argument("--flows", type=int, default=50, help="(b): whole sign-ins, one at a time")
    parser.add_argument("--people", type=int, default=16, help="(a): people signing in, round-robin")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: Hawiya's own)")
    parser.add_argument("--port", type=int, help="Hawiya's port (default: a free one)")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    # This driver, and every process it starts except the pinned ones, stays off the server CPU.
    os.sched_setaffinity(0, flow.cpus(LOAD_CPU))
    with hawiya(**_port(args.port), workers=args.workers) as idp:
        secret = flow.web_client(idp, client_id=CLIENT_ID, scope=SCOPE)
        print("measuring Argon2id on the server CPU (idle server) ...", flush=True)
        argon2 = flow.argon2_verify(idp, SERVER_CPU)
        idp.start()
        server_cores = len(os.sched_getaffinity(idp.process.pid)) if idp.process else 1
        limit = server_cores / argon2.median
        count = max(args.people, args.flows + FLOW_WARMUP)
        print(f"seeding {count} people (import, then /activate each) ...", flush=True)
        people = flow.seed_people(idp, count, prefix="signin")

        # (a) Warm every worker, then each concurrency level on browsers parked beforehand.
        pool = people[: args.people]
        signin_load(
            idp, flow.park_signins(idp.url, CLIENT_ID, 4 * levels[0], scope=SCOPE), pool, levels[0], 30
        )
        runs: list[Throughput] = []
        for level in levels:
            parked = flow.park_signins(
                idp.url, CLIENT_ID, math.ceil(limit * args.seconds * 1.6) + 2 * level, scope=SCOPE
            )
            runs.append(signin_load(idp, parked, pool, level, args.seconds))

        # Once more, the server idle again: the machine's other load only ever makes a hash slower,
        # so the faster of the two measurements sets the limit.
        after = flow.argon2_verify(idp, SERVER_CPU)
        measured = (argon2, after)
        argon2 = min(measured, key=lambda timing: timing.median)
        limit = server_cores / argon2.median

        # (b) Whole flows, one at a time, a new person each (the consent page is real).
        print(f"running {args.flows} whole sign-ins one at a time ...", flush=True)
        floor = flow.Browser(idp.url)
        for _ in range(30):
            floor.expect(floor.request("GET /healthz", "GET", "/healthz"))
        full_flows(idp, secret, people[-FLOW_WARMUP:])
        client, server, totals, server_totals = full_flows(idp, secret, people[: args.flows])

        print(
            f"\n(a) Password sign-ins (GET sign-in page with its parked interaction + POST password), "
            f"{args.seconds:g} s per level"
        )
        print(
            f"Argon2id {argon2.params} verify on the server CPU (Hawiya's hasher, idle server): median "
            f"{ms(argon2.median)} ms (min {ms(argon2.min)}, max {ms(argon2.max)}; medians before/after "
            f"the load {' / '.join(ms(timing.median) for timing in measured)} ms, the lower used)"
        )
        print(f"limit = {server_cores} server core(s) / {ms(argon2.median)} ms = {limit:.1f} sign-ins/s")
        print(
            f"{'concurrency':>11} {'sign-ins/s':>10} {'of limit':>8} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'refused':>7} {'server CPU':>10} {'CPU ms/signin':>13}  note"
        )
        for run in runs:
            p50 = statistics.median(run.latencies) if run.latencies else 0.0
            p99 = statistics.quantiles(run.latencies, n=100)[98] if len(run.latencies) > 1 else p50
            busy = f"{run.server_cpu / run.seconds:.0%}" if run.seconds else "-"
            per = f"{run.server_cpu / run.done * 1e3:.1f}" if run.done else "-"
            note = "ran out of parked sign-ins (rate over the time it ran)" if run.exhausted else ""
            print(
                f"{run.concurrency:>11} {run.rate:>10.1f} {run.rate / limit:>8.0%} {ms(p50):>8} {ms(p99):>8} "
                f"{run.refused:>7} {busy:>10} {per:>13}  {note}"
            )
        print("target: >= 80% of the Argon2id limit")
        successes = sum(run.done for run in runs)
        refused = sum(run.refused for run in runs)
        if refused:
            first = next(run.first_refusal for run in runs if run.first_refusal)
            print(f"WARNING: {refused} sign-ins refused; first: {first}")
        else:
            limits = Settings.from_env(idp.env)
            print(
                f"throttling: none of {successes} successful sign-ins from one address "
                f"({len(pool)} people, ~{successes // len(pool)} each) was refused; the limits, "
                f"{limits.signin_max_failures} per account and {limits.ip_max_failures} per address, "
                "count failures only"
            )

        print(f"\n(b) Whole browser sign-ins, one at a time, {args.flows} fresh browsers and people")
        print(f"{'step':<24} {'client ms':>10} {'server ms':>10}")
        for step in STEPS:
            server_ms = ms(statistics.median(server[step])) if server[step] else "-"
            print(f"{step:<24} {ms(statistics.median(client[step])):>10} {server_ms:>10}")
        total = statistics.median(totals)
        server_total = statistics.median(server_totals) if server_totals else float("nan")
        print(f"{'total (median)':<24} {ms(total):>10} {ms(server_total):>10}")
        print(
            f"{'total without the hash':<24} {ms(total - argon2.median):>10} "
            f"{ms(server_total - argon2.median):>10}"
        )
        floor_ms = statistics.median(step.seconds for step in floor.steps)
        print(
            f"client-side includes each request's round trip: GET /healthz alone takes {ms(floor_ms)} ms "
            f"here; server ms: gunicorn's request time ({len(server_totals)} of {len(totals)} flows logged)"
        )
        print(
            f"hash: the Argon2id verify median above ({ms(argon2.median)} ms); "
            "target: median server time without the hash < 15 ms"
        )


if __name__ == "__main__":
    main()
