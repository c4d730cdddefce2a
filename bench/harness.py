"""What every benchmark needs: Hawiya served as in production (gunicorn, PostgreSQL + Redis), the
peer (panva's oidc-provider), and wrk driving them, each pinned to its own CPU.

The servers share CPU ``SERVER_CPU``; wrk (and any Python driver) runs on ``LOAD_CPU``. PostgreSQL
and Redis are the machine's own services and are not pinned: both servers under test reach them the
same way, and the peer keeps its state in memory (it has no database to wait for).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent
SERVER_CPU = os.environ.get("BENCH_SERVER_CPU", "0")
LOAD_CPU = os.environ.get("BENCH_LOAD_CPU", "1")
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
#: One database and one Redis prefix per benchmark process, so that runs never meet.
PG_DATABASE = os.environ.get("BENCH_PG_DATABASE", f"hawiya_bench_{os.getpid()}")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_PREFIX = f"hawiya-bench-{os.getpid()}:"
#: The API scope and resource both servers grant to the benchmark client.
API_SCOPE = "records:read"
API_RESOURCE = "https://records.bench.example"


class BenchError(RuntimeError):
    """A benchmark could not run (a server did not start, a tool is missing)."""


def free_port() -> int:
    """A TCP port nothing listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pinned(cpu: str, argv: list[str]) -> list[str]:
    """``argv`` run on one CPU when taskset is there (it is, on Debian: util-linux)."""
    return ["taskset", "-c", cpu, *argv] if shutil.which("taskset") else argv


def basic(client_id: str, secret: str) -> str:
    """An RFC 6749 2.3.1 Basic credential (both parts are URL-safe here, so no form-encoding)."""
    return base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def fresh_database() -> str:
    """An empty PostgreSQL database for one run; its SQLAlchemy URL."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DATABASE}"


def flush_redis() -> None:
    """Forget the keys an earlier run left under the benchmark's prefix."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{REDIS_PREFIX}*", count=1000):
        client.delete(key)


def wait_http(url: str, *, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Until ``url`` answers 200 (or the process died, or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BenchError(f"{url}: the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"{url} did not answer within {timeout:g} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL what is left after 10 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class Hawiya:
    """One Hawiya instance on PostgreSQL + Redis, set up by its own CLI."""

    port: int = field(default_factory=free_port)
    workers: int | None = None
    #: Extra HAWIYA_* settings for this run.
    settings: dict[str, str] = field(default_factory=dict)
    instance: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hawiya-bench-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The issuer (and base URL)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment of every ``hawiya`` command of this instance."""
        return {
            **os.environ,
            "HAWIYA_INSTANCE_PATH": str(self.instance),
            "HAWIYA_MASTER_KEY_FILE": str(self.instance / "master.key"),
            "HAWIYA_DATABASE_URL": self.database_url,
            "HAWIYA_EPHEMERAL_URL": REDIS_URL,
            "HAWIYA_REDIS_PREFIX": REDIS_PREFIX,
            "HAWIYA_ISSUER": self.url,
            "HAWIYA_LOG_LEVEL": "WARNING",
            **self.settings,
        }

    database_url: str = ""

    def setup(self) -> Hawiya:
        """A fresh database and instance, migrated, with signing keys."""
        self.database_url = fresh_database()
        flush_redis()
        self.cli("init")
        return self

    def cli(self, *args: str) -> str:
        """Run ``hawiya ARGS`` against this instance; its stdout."""
        done = subprocess.run(
            [str(BIN / "hawiya"), *args], env=self.env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise BenchError(f"hawiya {' '.join(args[:2])}: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def api_client(self, client_id: str = "bench-api") -> str:
        """Register the client_credentials client; its secret."""
        out = self.cli(
            "clients", "create", "--name", "Benchmark API client", "--client-id", client_id,
            "--grant-type", "client_credentials", "--scope", API_SCOPE, "--resource", API_RESOURCE,
            "--json",
        )  # fmt: skip
        return str(json.loads(out)["client_secret"])

    def start(self) -> Hawiya:
        """``hawiya serve`` (gunicorn, production settings) on the server CPU."""
        argv = [str(BIN / "hawiya"), "serve", "--port", str(self.port)]
        if self.workers:
            argv += ["--workers", str(self.workers)]
        log = (self.instance / "serve.log").open("wb")
        self.process = subprocess.Popen(
            pinned(SERVER_CPU, argv),
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_http(f"{self.url}/.well-known/openid-configuration", process=self.process)
        return self

    def stop(self) -> None:
        """Stop the server (its instance folder stays until ``cleanup``)."""
        if self.process is not None:
            stop(self.process)
            self.process = None

    def pids(self) -> list[int]:
        """The gunicorn arbiter and its workers."""
        if self.process is None:
            return []
        out = subprocess.run(
            ["pgrep", "-g", str(self.process.pid)], capture_output=True, text=True, check=False
        ).stdout
        return [int(pid) for pid in out.split()]

    def cleanup(self) -> None:
        """Stop, and remove the instance folder, the database and the Redis keys."""
        self.stop()
        shutil.rmtree(self.instance, ignore_errors=True)
        flush_redis()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')


@contextmanager
def hawiya(**kwargs: object) -> Iterator[Hawiya]:
    """A set-up Hawiya instance (not started), cleaned up afterwards."""
    instance = Hawiya(**kwargs).setup()  # type: ignore[arg-type]
    try:
        yield instance
    finally:
        instance.cleanup()


PEER_DIR = BENCH / "peer"
PEER_CLIENT = ("bench-api", "bench-secret-0123456789-0123456789-0123456789")


def peer_available() -> bool:
    """node is on the machine and the peer's packages are installed (``make bench`` does it)."""
    return shutil.which("node") is not None and (PEER_DIR / "node_modules" / "oidc-provider").is_dir()


@contextmanager
def peer(port: int = 0) -> Iterator[str]:
    """panva's oidc-provider on the server CPU, with the same client; yields its URL."""
    env = {
        **os.environ,
        "CLIENT_ID": PEER_CLIENT[0],
        "CLIENT_SECRET": PEER_CLIENT[1],
        "RESOURCE": API_RESOURCE,
        "NODE_ENV": "production",
    }
    process = subprocess.Popen(
        pinned(SERVER_CPU, ["node", str(PEER_DIR / "server.mjs"), str(port)]),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()
        if not line.startswith("READY "):
            raise BenchError(f"oidc-provider did not start: {line or 'no output'}")
        yield line.split(" ", 1)[1]
    finally:
        stop(process)


@dataclass(frozen=True)
class Load:
    """What one wrk run measured."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        """Completed requests per second (errors included: wrk counts every response)."""
        return self.requests / self.seconds if self.seconds else 0.0


#: Appended to every wrk script: print the figures as one JSON line wrk's own report cannot mix up.
_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nBENCH {"requests": %d, "micros": %d, "errors": %d, "p50": %d, "p99": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk(
    url: str, script: Path, *, connections: int, seconds: float, env: dict[str, str] | None = None
) -> Load:
    """Drive ``url`` with wrk (on the load CPU) and ``script``; non-2xx answers count as errors."""
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script.read_text() + _REPORT)
    try:
        threads = max(1, min(connections, 2))
        done = subprocess.run(
            pinned(
                LOAD_CPU, ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "-s", lua.name, url]
            ),
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        os.unlink(lua.name)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            figures = json.loads(line[6:])
            return Load(
                requests=figures["requests"],
                seconds=figures["micros"] / 1e6,
                errors=figures["errors"],
                p50_ms=figures["p50"] / 1000,
                p99_ms=figures["p99"] / 1000,
            )
    raise BenchError(f"wrk gave no figures: {done.stderr.strip() or done.stdout.strip()}")
