"""The browser side of the benchmarks, over plain HTTP (requests): people seeded through the CLI and
their activation codes, the sign-in form with its CSRF token, consent, PKCE, codes minted in bulk
from one signed-in browser (SSO, consent remembered) and sign-ins parked at their sign-in page;
plus two measuring aids: Hawiya's own Argon2id verification timed on a given CPU, and the CPU time
the server's processes used.

Every step follows Hawiya's real pages; nothing reaches into its storage.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

from bench import harness
from bench.harness import BenchError, Hawiya
from idp.accounts.identity import with_check_digit

#: Every benchmark person's password (15+ characters: a password alone signs in).
PASSWORD = "bench horse battery staple 7319"
REDIRECT_URI = "https://rp.bench.example/cb"
TIMEOUT = 30

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
_CODE = re.compile(r"\b([A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4})\b")


def cpus(spec: str) -> set[int]:
    """The CPUs of a taskset list such as ``1``, ``0-1`` or ``0,2``."""
    out: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of a page's forms (the CSRF token, the interaction id)."""
    return {name: unescape(value) for name, value in _HIDDEN.findall(html)}


def pkce() -> tuple[str, str]:
    """A fresh PKCE (RFC 7636) verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def national_id(seed: int) -> str:
    """A valid, distinct national identity number for each ``seed`` (tests/support/identity.py)."""
    for step in range(10):
        number = with_check_digit(f"3{(seed * 10 + step) % 10**9:09d}")
        if number is not None:
            return number
    raise AssertionError("unreachable: one of ten consecutive numbers has a check digit")


def web_client(
    idp: Hawiya, *, client_id: str = "bench-web", scope: str = "openid profile offline_access"
) -> str:
    """Register a confidential client (client_secret_basic, authorization_code + refresh_token,
    redirect ``REDIRECT_URI``); its secret."""
    out = idp.cli(
        "clients", "create", "--name", "Benchmark web client", "--client-id", client_id,
        "--redirect-uri", REDIRECT_URI, "--grant-type", "authorization_code",
        "--grant-type", "refresh_token", "--scope", scope, "--auth-method", "client_secret_basic",
        "--json",
    )  # fmt: skip
    return str(json.loads(out)["client_secret"])


def import_people(idp: Hawiya, count: int, *, prefix: str = "bench") -> list[str]:
    """``count`` citizens imported from one CSV by ``hawiya users import --send-activation``
    (one CLI run); their usernames. They have no password yet: see ``activate``."""
    names = [f"{prefix}{i:04d}" for i in range(count)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["type", "username", "national_id", "name", "email"])
    for i, name in enumerate(names):
        writer.writerow(["citizen", name, national_id(i), f"Bench Person {i}", f"{name}@bench.example"])
    path = idp.instance / f"{prefix}-people.csv"
    path.write_text(out.getvalue())
    idp.cli("users", "import", str(path), "--send-activation")
    # The import queued the mails: deliver them now rather than wait for a server's worker pass.
    idp.cli("mail-worker", "--once")
    return names


def activation_codes(idp: Hawiya) -> dict[str, str]:
    """The activation code mailed to each address (read from the instance's outbox)."""
    codes: dict[str, str] = {}
    for path in sorted((idp.instance / "outbox").glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        part = message.get_body(preferencelist=("plain",))
        found = _CODE.search(str(part.get_content()) if part is not None else "")
        if found:
            codes[str(message["To"])] = found.group(1)
    return codes


def activate(url: str, code: str, password: str = PASSWORD) -> None:
    """Set a first password at ``/activate`` (the server hashes it), as the person would."""
    http = requests.Session()
    page = http.get(f"{url}/activate", timeout=TIMEOUT)
    fields = hidden_fields(page.text)
    fields.update(code=code, password=password, password_confirm=password)
    done = http.post(f"{url}/activate", data=fields, allow_redirects=False, timeout=TIMEOUT)
    if done.status_code != 302:
        raise BenchError(f"/activate answered {done.status_code}: {done.text[:300]}")


def seed_people(idp: Hawiya, count: int, *, prefix: str = "bench", workers: int = 4) -> list[str]:
    """``count`` signed-up citizens whose password is ``PASSWORD`` (the server must be running):
    one import, then each activation code spent at ``/activate``."""
    names = import_people(idp, count, prefix=prefix)
    codes = activation_codes(idp)
    missing = [name for name in names if f"{name}@bench.example" not in codes]
    if missing:
        raise BenchError(f"no activation mail for {missing[:3]} (outbox: {idp.instance / 'outbox'})")
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda name: activate(idp.url, codes[f"{name}@bench.example"]), names))
    return names


def authorize_query(client_id: str, challenge: str, *, scope: str, prompt: str | None = None) -> str:
    """The query of an authorization request (code flow, PKCE S256)."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if prompt:
        params["prompt"] = prompt
    return urlencode(params)


def code_of(location: str) -> str:
    """The code in the redirect back to the client; BenchError for anything else."""
    if not location.startswith(REDIRECT_URI):
        raise BenchError(f"expected a redirect to the client, got {location[:200]}")
    params = parse_qs(urlsplit(location).query)
    if "code" not in params:
        raise BenchError(f"no code in the redirect: {params.get('error')} {params.get('error_description')}")
    return params["code"][0]


@dataclass
class Step:
    """One timed HTTP request of a flow."""

    name: str
    seconds: float
    status: int


@dataclass
class Browser:
    """One browser (its own cookies), driving Hawiya's pages; records each request's time."""

    url: str
    http: requests.Session = field(default_factory=requests.Session)
    steps: list[Step] = field(default_factory=list)

    def request(self, name: str, method: str, target: str, **kwargs: object) -> requests.Response:
        """One request, never following redirects, timed from send to the whole body read."""
        url = target if target.startswith("http") else urljoin(self.url, target)
        start = time.perf_counter()
        response = self.http.request(method, url, allow_redirects=False, timeout=TIMEOUT, **kwargs)  # type: ignore[arg-type]
        _ = response.content
        self.steps.append(Step(name, time.perf_counter() - start, response.status_code))
        return response

    @staticmethod
    def location(response: requests.Response) -> str:
        """Where a redirect goes (absolute); BenchError when the response is no redirect."""
        if not response.is_redirect:
            raise BenchError(
                f"{response.request.method} {urlsplit(response.url).path}: expected a redirect, "
                f"got {response.status_code}: {response.text[:300]}"
            )
        return urljoin(response.url, response.headers["Location"])

    def expect(self, response: requests.Response, status: int = 200) -> requests.Response:
        """``response`` when it has ``status``; BenchError else."""
        if response.status_code != status:
            raise BenchError(
                f"{response.request.method} {urlsplit(response.url).path}: expected {status}, "
                f"got {response.status_code}: {response.text[:300]}"
            )
        return response

    def sign_in_page(self, path: str) -> dict[str, str]:
        """GET the sign-in page at ``path``; the hidden fields of its form."""
        page = self.expect(self.request("GET /signin", "GET", path))
        if 'name="password"' not in page.text:
            raise BenchError("the sign-in page has no password field")
        return hidden_fields(page.text)

    def post_password(self, fields: dict[str, str], username: str, password: str = PASSWORD) -> str:
        """POST the sign-in form; where it redirects to."""
        response = self.request(
            "POST /signin", "POST", "/signin", data={**fields, "username": username, "password": password}
        )
        return self.location(response)

    def consent(self, path: str) -> str:
        """GET the consent page at ``path`` and approve; where the approval redirects to."""
        page = self.expect(self.request("GET /consent", "GET", path))
        fields = hidden_fields(page.text)
        fields["decision"] = "approve"
        return self.location(self.request("POST /consent", "POST", "/consent", data=fields))

    def full_signin(
        self, client_id: str, username: str, *, scope: str, prompt: str | None = None
    ) -> tuple[str, str]:
        """The browser flow from ``/authorize`` through sign-in and (when asked) consent to the
        redirect back to the client; the code and its PKCE verifier."""
        verifier, challenge = pkce()
        query = authorize_query(client_id, challenge, scope=scope, prompt=prompt)
        target = self.location(self.request("GET /authorize", "GET", f"/authorize?{query}"))
        if urlsplit(target).path != "/signin":
            raise BenchError(f"/authorize should ask for a sign-in, went to {target[:200]}")
        fields = self.sign_in_page(target)
        target = self.post_password(fields, username)
        if urlsplit(target).path != "/authorize/resume":
            raise BenchError(f"the sign-in should resume the authorization, went to {target[:200]}")
        target = self.location(self.request("GET /authorize/resume", "GET", target))
        if urlsplit(target).path == "/consent":
            target = self.consent(target)
        return code_of(target), verifier

    def token(self, client_id: str, secret: str, code: str, verifier: str) -> dict[str, object]:
        """Exchange a code at ``/token`` (client_secret_basic); the token response."""
        response = self.request(
            "POST /token",
            "POST",
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            auth=(client_id, secret),
        )
        return dict(self.expect(response).json())

    def userinfo(self, access_token: str) -> dict[str, object]:
        """GET ``/userinfo`` with the access token."""
        response = self.request(
            "GET /userinfo", "GET", "/userinfo", headers={"Authorization": f"Bearer {access_token}"}
        )
        return dict(self.expect(response).json())


def mint_codes(
    url: str,
    cookies: requests.cookies.RequestsCookieJar,
    client_id: str,
    count: int,
    *,
    scope: str,
    threads: int = 4,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[str, str]]:
    """``count`` fresh codes, each with its own PKCE verifier, from ``/authorize`` alone: the
    browser whose ``cookies`` are given is signed in and the client already consented. Runs
    ``threads`` browsers sharing that SSO cookie; returns (code, verifier) pairs."""
    minted: list[tuple[str, str]] = []
    lock = threading.Lock()
    local = threading.local()

    def one(_: int) -> None:
        http = getattr(local, "http", None)
        if http is None:
            http = local.http = requests.Session()
            http.cookies.update(cookies)
        verifier, challenge = pkce()
        query = authorize_query(client_id, challenge, scope=scope)
        response = http.get(f"{url}/authorize?{query}", allow_redirects=False, timeout=TIMEOUT)
        if not response.is_redirect:
            raise BenchError(f"/authorize answered {response.status_code}: {response.text[:300]}")
        code = code_of(response.headers["Location"])
        with lock:
            minted.append((code, verifier))
            if progress is not None:
                progress(len(minted))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))
    return minted


def write_lines(path: Path, rows: Sequence[tuple[str, ...] | str]) -> Path:
    """One row a line, fields separated by a space (codes, verifiers and tokens have none)."""
    path.write_text("".join((" ".join(row) if isinstance(row, tuple) else row) + "\n" for row in rows))
    return path


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes ``pids`` have used so far (Linux /proc), seconds.

    Sampled around a run, it tells CPU-bound (near the run's length per core) from waiting (on
    PostgreSQL's commits, on Redis) when the server is busy far less than its CPU allows."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a worker that exited meanwhile
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


def park_signins(
    url: str, client_id: str, count: int, *, scope: str, threads: int = 4
) -> list[tuple[Browser, str]]:
    """``count`` fresh browsers, each sent by ``/authorize`` to the sign-in page (its interaction
    parked, its cookie set); each with the path of that page (``/signin?ix=...``)."""

    def one(_: int) -> tuple[Browser, str]:
        browser = Browser(url)
        _verifier, challenge = pkce()
        query = authorize_query(client_id, challenge, scope=scope)
        target = browser.location(browser.request("GET /authorize", "GET", f"/authorize?{query}"))
        if urlsplit(target).path != "/signin":
            raise BenchError(f"/authorize should ask for a sign-in, went to {target[:200]}")
        browser.steps.clear()
        return browser, target

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))


#: Measures Argon2id verification with Hawiya's own hasher and settings (run in a pinned process).
_ARGON2 = r"""
import json, statistics, sys, time
from idp.accounts.passwords import PasswordHasher
from idp.accounts.policy import normalise
from idp.settings import Settings

s = Settings.from_env()
hasher = PasswordHasher(memory_kib=s.argon2_memory_kib, iterations=s.argon2_iterations, lanes=s.argon2_lanes)
password = normalise(sys.argv[1])
phc = hasher.hash(password)
for _ in range(3):
    hasher.verify(password, phc)
times = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    ok = hasher.verify(password, phc)
    times.append(time.perf_counter() - start)
    assert ok
print(json.dumps({"median": statistics.median(times), "min": min(times), "max": max(times),
                  "params": phc.split("$")[3]}))
"""


@dataclass(frozen=True)
class Argon2Timing:
    """Argon2id verification times (seconds) on one CPU, and the parameters (``m=..,t=..,p=..``)."""

    median: float
    min: float
    max: float
    params: str


def argon2_verify(idp: Hawiya, cpu: str, *, rounds: int = 30) -> Argon2Timing:
    """Time Hawiya's own Argon2id verification (its PasswordHasher, this instance's settings) in a
    process pinned to ``cpu`` (the server's), ``rounds`` times."""
    done = subprocess.run(
        harness.pinned(cpu, [sys.executable, "-c", _ARGON2, PASSWORD, str(rounds)]),
        env=idp.env,
        cwd=harness.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"argon2 measurement failed: {done.stderr.strip()[-500:]}")
    return Argon2Timing(**json.loads(done.stdout))
