"""A second, independent OpenID Provider for the interop tests: panva's ``oidc-provider`` from npm,
configured by tests/rp/oidc_provider/server.mjs and run with the machine's Node.

``npm ci`` runs once, only when tests/rp/oidc_provider/node_modules is missing (``make setup``
does it ahead of time when node is present); the server then starts on a loopback port the OS
picks, announces ``READY <issuer>`` on stdout and is terminated with SIGTERM afterwards.

Without node or npm the interop tests skip locally and fail under CI=true, like the browser tests.
"""

from __future__ import annotations

import fcntl
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from tests.support.needs import unavailable

OIDC_PROVIDER_DIR = Path(__file__).resolve().parents[1] / "rp" / "oidc_provider"
#: Seconds ``npm ci`` may take (a cold cache downloads ~40 small packages).
NPM_CI_TIMEOUT = 300
#: Seconds the server may take to print its ready line (about 0.5 s on this machine).
READY_TIMEOUT = 30
#: Seconds it may take to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 5

# Characters that client_secret_basic must form-urlencode before base64 (RFC 6749 2.3.1): a colon
# in the id, and a colon, space, percent, plus, slash, ampersand and tilde in the secret.
CLIENT_ID = "urn:agency:interop-rp"
CLIENT_SECRET = "interop secret: 100% +/=&~ 0123456789abcdefghijklmnopqrstuvwxyz"
#: Nothing listens here: the test stops following redirects when one points at it.
REDIRECT_URI = "http://127.0.0.1:8765/auth/callback"


@dataclass(frozen=True)
class RunningOP:
    """The OP the fixture started; iterable as ``(issuer, client_id, client_secret, redirect_uri)``."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    #: Seconds ``npm ci`` took for this start (None: node_modules was already there).
    npm_ci_seconds: float | None
    #: Seconds from spawning node to its ready line.
    start_seconds: float

    def __iter__(self) -> Iterator[str]:
        return iter((self.issuer, self.client_id, self.client_secret, self.redirect_uri))


def require_node() -> tuple[str, str]:
    """The paths of node and npm; skip locally (fail in CI) when either is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if path is None)
        unavailable(
            f"{missing} not found on PATH: the interop tests run panva's oidc-provider "
            "(install Node.js 20+ with npm, e.g. apt-get install -y nodejs npm)"
        )
    return node, npm


def installed() -> bool:
    return (OIDC_PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").is_file()


def ensure_node_modules(npm: str) -> float | None:
    """Run ``npm ci`` when node_modules is missing; the seconds it took, or None when not needed.

    A lock file serialises concurrent test processes so only one of them installs.
    """
    if installed():
        return None
    lock_path = Path(tempfile.gettempdir()) / "hawiya-oidc-provider-npm-ci.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if installed():
                return None
            started = time.monotonic()
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=OIDC_PROVIDER_DIR,
                capture_output=True,
                text=True,
                timeout=NPM_CI_TIMEOUT,
                check=False,
            )
            if result.returncode != 0 or not installed():
                pytest.fail(
                    f"npm ci in {OIDC_PROVIDER_DIR} failed ({result.returncode}):\n"
                    f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
                )
            return time.monotonic() - started
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_lines(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


@contextmanager
def run_oidc_provider(
    *,
    client_id: str = CLIENT_ID,
    client_secret: str = CLIENT_SECRET,
    redirect_uri: str = REDIRECT_URI,
    signing_alg: str = "ES256",
) -> Iterator[RunningOP]:
    """Install if needed, start oidc-provider on a free loopback port, yield it, stop it."""
    node, npm = require_node()
    npm_seconds = ensure_node_modules(npm)
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": "0",
        "CLIENT_ID": client_id,
        "CLIENT_SECRET": client_secret,
        "REDIRECT_URI": redirect_uri,
        "ID_TOKEN_ALG": signing_alg,
        "NODE_ENV": "test",
    }
    env.pop("ISSUER", None)
    with tempfile.TemporaryFile("w+") as stderr:
        started = time.monotonic()
        process = subprocess.Popen(
            [node, "server.mjs"],
            cwd=OIDC_PROVIDER_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        assert process.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True)
        reader.start()
        try:
            issuer = _wait_ready(process, lines, stderr)
            yield RunningOP(
                issuer=issuer,
                client_id=client_id,
                client_secret=client_secret,
                redirect_uri=redirect_uri,
                npm_ci_seconds=npm_seconds,
                start_seconds=time.monotonic() - started,
            )
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            reader.join(timeout=STOP_TIMEOUT)
            process.stdout.close()


def _wait_ready(process: subprocess.Popen[str], lines: queue.Queue[str | None], stderr: IO[str]) -> str:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        try:
            line = lines.get(timeout=max(remaining, 0))
        except queue.Empty:
            line = ""
        if line and line.startswith("READY "):
            return line.split()[1]
        if line is None or process.poll() is not None or remaining <= 0:
            stderr.seek(0)
            what = "exited" if process.poll() is not None else f"not ready after {READY_TIMEOUT} s"
            pytest.fail(f"oidc-provider {what} (exit code {process.poll()}):\n{stderr.read()[-4000:]}")
