"""Seed a Hawiya PostgreSQL database in bulk: N people and M clients, with PostgreSQL COPY in one
transaction, so benchmarks can measure how the cost grows with the data.

One Argon2id hash is computed with Hawiya's own hasher (its settings' parameters) and reused for
every person: every seeded person has the same password, and seeding a million people costs one
hash, not a million. People are citizens with valid, unique, deterministic national identity
numbers (the check-digit rule of ``idp.accounts.identity``, the numbering of
tests/support/identity.py); clients are confidential (client_secret_basic) with one known secret,
stored as Hawiya stores it (SHA-256 hex), allowed authorization_code, refresh_token and
client_credentials, each on its own redirect host (so each is its own pairwise sector). Like
``AccountService.create`` and ``ClientService.create``, every row gets its ``account.created`` or
``client.created`` audit event. Nothing else is needed for a person to sign in or a client to get
tokens: pairwise subjects and consents are written by the server on first use.

Without ``--database-url`` (or HAWIYA_DATABASE_URL), a fresh benchmark instance is set up (the
harness's ``Hawiya``), seeded, served, and checked end to end: a seeded person signs in through the
real pages (sign-in and consent forms with their CSRF tokens, code exchange with PKCE, userinfo) and
a seeded client gets a client_credentials token. With a URL, that database (already made by
``hawiya init``) is only seeded.

Run: .venv/bin/python bench/seed.py [--users 1000000] [--clients 10000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import re
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
import requests

from bench.harness import API_RESOURCE, API_SCOPE, BenchError, basic, hawiya
from idp.accounts.identity import with_check_digit
from idp.accounts.passwords import PasswordHasher
from idp.accounts.policy import normalise
from idp.settings import Settings

#: Every seeded person's password (long enough for the no-MFA policy, though it is never checked).
PASSWORD = "bench-seeded-password-2b7f0c"  # a benchmark fixture, like the secret below
#: Every seeded client's secret (client secrets are random in production; one known one here).
CLIENT_SECRET = "bench-seeded-client-secret-5QmZ8vK2wR7tY4nX9pL3"
#: What seeded clients may ask for: sign-in scopes and the benchmark API's scope.
CLIENT_SCOPE = f"openid profile email phone {API_SCOPE}"
#: The actor the seed's audit events name.
ACTOR = "operator:bench-seed"
#: Rows per COPY write.
_BATCH = 20_000


def username(index: int) -> str:
    """The username of seeded person ``index`` (0-based)."""
    return f"person{index:07d}"


def client_id(index: int) -> str:
    """The client id of seeded client ``index`` (0-based)."""
    return f"bench-client-{index:05d}"


def redirect_uri(index: int) -> str:
    """Seeded client ``index``'s redirect URI (its own host: its own pairwise sector)."""
    return f"https://rp{index}.bench.example/callback"


def national_id(index: int) -> str:
    """A valid national identity number for person ``index``, distinct for every index below 10**8:
    ``2`` then nine digits ``index * 10 + step``, the first step (0-9) whose check digit exists
    (the numbering of tests/support/identity.py; the rule is ``idp.accounts.identity``'s)."""
    for step in range(10):
        complete = with_check_digit(f"2{index * 10 + step:09d}")
        if complete is not None:
            return complete
    raise AssertionError("unreachable: one of ten consecutive numbers has a check digit")


@dataclass(frozen=True)
class SeedInfo:
    """What was seeded, and the credentials a benchmark uses."""

    users: int
    clients: int
    #: Wall time of the seed (hash, generate, COPY, commit, ANALYZE), seconds.
    seconds: float
    #: Of which the one Argon2id hash.
    hash_seconds: float
    #: Every person's password and every client's secret.
    password: str = PASSWORD
    client_secret: str = CLIENT_SECRET

    @property
    def sample_username(self) -> str:
        """A seeded person (the middle one)."""
        return username(self.users // 2)

    @property
    def sample_national_id(self) -> str:
        """The sample person's national identity number."""
        return national_id(self.users // 2)

    @property
    def sample_client_id(self) -> str:
        """A seeded client (the middle one)."""
        return client_id(self.clients // 2)

    @property
    def sample_redirect_uri(self) -> str:
        """The sample client's redirect URI."""
        return redirect_uri(self.clients // 2)

    def username(self, index: int) -> str:
        """Seeded person ``index``'s username."""
        return username(index)

    def client_id(self, index: int) -> str:
        """Seeded client ``index``'s id."""
        return client_id(index)

    def redirect_uri(self, index: int) -> str:
        """Seeded client ``index``'s redirect URI."""
        return redirect_uri(index)

    def national_id(self, index: int) -> str:
        """Seeded person ``index``'s national identity number."""
        return national_id(index)


def libpq_url(database_url: str) -> str:
    """A SQLAlchemy PostgreSQL URL (``postgresql+psycopg://``) as libpq takes it."""
    if not database_url.startswith("postgresql"):
        raise BenchError(f"the seed needs PostgreSQL, not {database_url.split(':', 1)[0]}")
    return re.sub(r"^postgresql\+\w+://", "postgresql://", database_url)


def password_hash(password: str = PASSWORD) -> str:
    """The stored form of ``password``, made by Hawiya's hasher with its settings' parameters
    (HAWIYA_ARGON2_* from the environment, else Hawiya's defaults)."""
    # Only the Argon2 settings of the environment count here (a deployment may raise them).
    defaults = Settings.from_env({k: v for k, v in os.environ.items() if k.startswith("HAWIYA_ARGON2_")})
    hasher = PasswordHasher(
        memory_kib=defaults.argon2_memory_kib,
        iterations=defaults.argon2_iterations,
        lanes=defaults.argon2_lanes,
    )
    return hasher.hash(normalise(password))


def _copy_text(value: object) -> str:
    """One COPY text-format field (our values never hold tabs, newlines or backslashes)."""
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    text = str(value)
    if "\t" in text or "\n" in text or "\\" in text:
        raise ValueError(f"unexpected character in a seeded value: {text!r}")
    return text


def _account_ids(users: int) -> list[str]:
    """Random-looking (as uuid4 ones are in production) but reproducible account ids, in the
    canonical uuid4 form (version 4, RFC 4122 variant)."""
    hexes = random.Random(20260101).randbytes(16 * users).hex()
    ids = []
    for start in range(0, 32 * users, 32):
        h = hexes[start : start + 32]
        variant = "89ab"[int(h[16], 16) & 3]
        ids.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}")
    return ids


def _national_ids(users: int) -> Iterator[str]:
    """``national_id(index)`` for every index (about 4 µs each: 1M in 4 s)."""
    if users > 10**8:
        raise ValueError("at most 10**8 distinct national identity numbers this way")
    return (national_id(index) for index in range(users))


def _account_rows(ids: list[str], phc: str, now: str) -> Iterator[str]:
    born = date(1950, 1, 1)
    birthdates = [(born + timedelta(days=day)).isoformat() for day in range(20_000)]
    tail = f"\tKW\tcounter\t{{}}\t{now}\t{now}\n"
    for index, (account_id, number) in enumerate(zip(ids, _national_ids(len(ids)), strict=True)):
        name = f"person{index:07d}"
        yield (
            f"{account_id}\t{name}\tcitizen\tactive\t{phc}\tPerson {index}\tمواطن {index}\tPerson\t"
            f"Family{index % 997}\t{name}@bench.example\tt\t+965{50_000_000 + index}\tf\t"
            f"{birthdates[index % 20_000]}\t{number}{tail}"
        )


_ACCOUNT_COLUMNS = (
    "id, username, account_type, status, password_hash, name, name_ar, given_name, family_name, "
    "email, email_verified, phone, phone_verified, birthdate, national_id, nationality, "
    "proofing_level, attributes, created_at, updated_at"
)

_CLIENT_COLUMNS = (
    "client_id, name, agency, status, secret_hash, token_endpoint_auth_method, redirect_uris, "
    "post_logout_redirect_uris, grant_types, response_types, scope, resources, "
    "id_token_signed_response_alg, subject_type, first_party, created_at"
)


def _client_rows(clients: int, secret_hash: str, now: str) -> Iterator[str]:
    grant_types = json.dumps(["authorization_code", "refresh_token", "client_credentials"])
    resources = json.dumps([API_RESOURCE])
    for index in range(clients):
        yield (
            "\t".join(
                _copy_text(value)
                for value in (
                    client_id(index),
                    f"Bench client {index}",
                    f"Agency {index % 50}",
                    "active",
                    secret_hash,
                    "client_secret_basic",
                    json.dumps([redirect_uri(index)]),
                    "[]",
                    grant_types,
                    '["code"]',
                    CLIENT_SCOPE,
                    resources,
                    "ES256",
                    "pairwise",
                    False,
                    now,
                )
            )
            + "\n"
        )


def _audit_rows(account_ids: list[str], clients: int, now: str) -> Iterator[str]:
    account_detail = json.dumps({"account_type": "citizen"})
    for account_id in account_ids:
        yield f"{now}\taccount.created\t{ACTOR}\t{account_id}\t\\N\t{account_detail}\n"
    for index in range(clients):
        detail = json.dumps({"name": f"Bench client {index}", "auth_method": "client_secret_basic"})
        yield f"{now}\tclient.created\t{ACTOR}\t\\N\t{client_id(index)}\t{detail}\n"


@contextmanager
def _indexes_rebuilt(cursor: psycopg.Cursor[Any], table: str, rebuilt: list[float]) -> Iterator[None]:
    """Drop ``table``'s indexes, primary and unique keys (and the foreign keys that lean on them)
    for the body, then create them again from their own definitions (pg_get_indexdef,
    pg_get_constraintdef): one sorted build per index is far cheaper than a million random
    inserts into each. Inside the caller's transaction, so nobody sees the table without them.
    The seconds the rebuild took are appended to ``rebuilt``."""
    keys = cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u') ORDER BY contype",
        (table,),
    ).fetchall()
    foreign = cursor.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE confrelid = %s::regclass AND contype = 'f'",
        (table,),
    ).fetchall()
    indexes = cursor.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
        (table,),
    ).fetchall()
    for owner, name, _definition in foreign:
        cursor.execute(f'ALTER TABLE {owner} DROP CONSTRAINT "{name}"')
    for name, _definition in keys:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    yield
    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
    started = time.perf_counter()
    for name, definition in keys:
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for _name, definition in indexes:
        cursor.execute(definition)
    for owner, name, definition in foreign:
        cursor.execute(f'ALTER TABLE {owner} ADD CONSTRAINT "{name}" {definition}')
    rebuilt.append(time.perf_counter() - started)


def _copy(cursor: psycopg.Cursor[Any], statement: str, rows: Iterator[str]) -> int:
    count = 0
    with cursor.copy(statement) as copy:
        batch: list[str] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= _BATCH:
                copy.write("".join(batch).encode())
                count += len(batch)
                batch.clear()
        if batch:
            copy.write("".join(batch).encode())
            count += len(batch)
    return count


def seed(
    database_url: str, *, users: int, clients: int, audit: bool = True, verbose: bool = False
) -> SeedInfo:
    """Add ``users`` people and ``clients`` clients to a migrated Hawiya database, in one
    transaction (COPY), then ANALYZE the tables so the planner knows their sizes."""
    started = time.perf_counter()
    phc = password_hash()
    hash_seconds = time.perf_counter() - started
    secret_hash = hashlib.sha256(CLIENT_SECRET.encode()).hexdigest()
    now = datetime.now(UTC).isoformat()
    steps: list[tuple[str, float]] = [("argon2id hash (once)", hash_seconds)]
    mark = time.perf_counter()
    with psycopg.connect(libpq_url(database_url)) as conn:
        with conn.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
            ids = _account_ids(users)
            rebuilt: list[float] = []
            with _indexes_rebuilt(cursor, "accounts", rebuilt):
                _copy(cursor, f"COPY accounts ({_ACCOUNT_COLUMNS}) FROM STDIN", _account_rows(ids, phc, now))
            steps.append((f"COPY {users} accounts", time.perf_counter() - mark - rebuilt[-1]))
            steps.append(("  their indexes and keys rebuilt", rebuilt[-1]))
            mark = time.perf_counter()
            _copy(
                cursor,
                f"COPY clients ({_CLIENT_COLUMNS}) FROM STDIN",
                _client_rows(clients, secret_hash, now),
            )
            steps.append((f"COPY {clients} clients", time.perf_counter() - mark))
            mark = time.perf_counter()
            if audit:
                with _indexes_rebuilt(cursor, "audit_events", rebuilt):
                    _copy(
                        cursor,
                        "COPY audit_events (at, event, actor, subject, client_id, detail) FROM STDIN",
                        _audit_rows(ids, clients, now),
                    )
                steps.append(
                    (f"COPY {users + clients} audit events", time.perf_counter() - mark - rebuilt[-1])
                )
                steps.append(("  their indexes rebuilt", rebuilt[-1]))
                mark = time.perf_counter()
        conn.commit()
        steps.append(("commit", time.perf_counter() - mark))
    mark = time.perf_counter()
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        # Fresh statistics (autovacuum would get there later): the server plans with real sizes.
        for table in ("accounts", "clients", "audit_events"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
    steps.append(("VACUUM ANALYZE", time.perf_counter() - mark))
    seconds = time.perf_counter() - started
    if verbose:
        for name, took in steps:
            print(f"  {name:<32} {took:8.2f} s")
    return SeedInfo(users=users, clients=clients, seconds=seconds, hash_seconds=hash_seconds)


# -- a small browser: the sign-in flow over HTTP ----------------------------------------------------

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def _hidden_fields(html: str) -> dict[str, str]:
    return {name: unescape(value) for name, value in _HIDDEN.findall(html)}


def pkce_pair() -> tuple[str, str]:
    """A (code_verifier, S256 code_challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


class SigninFailed(BenchError):
    """The sign-in flow did not reach the client's redirect URI with a code."""


@dataclass(frozen=True)
class Authorized:
    """What reached the client's redirect URI, and what the code exchange needs."""

    code: str
    verifier: str
    client: str
    secret: str
    redirect: str


def authorize(
    idp_url: str,
    *,
    user: str,
    password: str,
    client: str,
    secret: str,
    redirect: str,
    scope: str = "openid profile email",
    http: requests.Session | None = None,
) -> Authorized:
    """A browser's way to a code, in a fresh cookie jar (unless ``http`` is given): /authorize,
    the sign-in form, the consent form (approved), the redirect back with the code."""
    http = http or requests.Session()
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(12)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client,
            "redirect_uri": redirect,
            "scope": scope,
            "state": state,
            "nonce": secrets.token_urlsafe(12),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    host = urlsplit(idp_url).netloc
    response = http.get(f"{idp_url}/authorize?{query}", allow_redirects=False, timeout=30)
    location = None
    for _ in range(20):
        if response.is_redirect:
            target = urljoin(response.url, response.headers["Location"])
            if urlsplit(target).netloc != host:
                location = target
                break
            response = http.get(target, allow_redirects=False, timeout=30)
            continue
        html = response.text
        path = urlsplit(response.url).path
        fields = _hidden_fields(html)
        if path == "/signin" and 'name="password"' in html and response.status_code == 200:
            fields.update(username=user, password=password)
            response = http.post(f"{idp_url}/signin", data=fields, allow_redirects=False, timeout=30)
        elif path == "/consent" and response.status_code == 200:
            fields["decision"] = "approve"
            response = http.post(f"{idp_url}/consent", data=fields, allow_redirects=False, timeout=30)
        else:
            raise SigninFailed(f"unexpected page {response.status_code} at {path}: {html[:300]!r}")
    if location is None:
        raise SigninFailed("too many pages")
    params = parse_qs(urlsplit(location).query)
    if params.get("state") != [state] or "code" not in params:
        raise SigninFailed(f"no code at the redirect: {location}")
    return Authorized(params["code"][0], verifier, client, secret, redirect)


def exchange(idp_url: str, authorized: Authorized) -> dict[str, object]:
    """The code exchanged at /token (client_secret_basic, PKCE); the token response."""
    token = requests.post(
        f"{idp_url}/token",
        data={
            "grant_type": "authorization_code",
            "code": authorized.code,
            "redirect_uri": authorized.redirect,
            "code_verifier": authorized.verifier,
        },
        headers={"Authorization": "Basic " + basic(authorized.client, authorized.secret)},
        timeout=30,
    )
    if token.status_code != 200:
        raise SigninFailed(f"code exchange: {token.status_code} {token.text[:300]}")
    answer: dict[str, object] = token.json()
    return answer


def sign_in(
    idp_url: str,
    *,
    user: str,
    password: str,
    client: str,
    secret: str,
    redirect: str,
    scope: str = "openid profile email",
    http: requests.Session | None = None,
) -> dict[str, object]:
    """One full browser sign-in (``authorize``), the code then exchanged (``exchange``); the
    token response."""
    authorized = authorize(
        idp_url,
        user=user,
        password=password,
        client=client,
        secret=secret,
        redirect=redirect,
        scope=scope,
        http=http,
    )
    return exchange(idp_url, authorized)


def client_credentials(idp_url: str, client: str, secret: str) -> dict[str, object]:
    """A client_credentials token for the benchmark API; BenchError unless 200."""
    response = requests.post(
        f"{idp_url}/token",
        data={"grant_type": "client_credentials", "scope": API_SCOPE, "resource": API_RESOURCE},
        headers={"Authorization": "Basic " + basic(client, secret)},
        timeout=30,
    )
    if response.status_code != 200:
        raise BenchError(f"client_credentials for {client}: {response.status_code} {response.text[:300]}")
    answer: dict[str, object] = response.json()
    return answer


def userinfo(idp_url: str, access_token: str) -> dict[str, object]:
    """The userinfo answer for a bearer token; BenchError unless 200."""
    response = requests.get(
        f"{idp_url}/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=30
    )
    if response.status_code != 200:
        raise BenchError(f"userinfo: {response.status_code} {response.text[:300]}")
    answer: dict[str, object] = response.json()
    return answer


def verify(idp_url: str, info: SeedInfo) -> None:
    """Through a running server: a seeded person (the last one) signs in at a seeded client and
    reads userinfo; a seeded client gets a client_credentials token."""
    person = info.users - 1
    client = info.clients - 1
    started = time.perf_counter()
    tokens = sign_in(
        idp_url,
        user=username(person),
        password=info.password,
        client=client_id(client),
        secret=info.client_secret,
        redirect=redirect_uri(client),
    )
    claims = userinfo(idp_url, str(tokens["access_token"]))
    if claims.get("email") != f"{username(person)}@bench.example":
        raise BenchError(f"userinfo names someone else: {claims}")
    print(
        f"verified: {username(person)} signed in at {client_id(client)} "
        f"(code + PKCE exchanged, userinfo email {claims['email']}) in {time.perf_counter() - started:.2f} s"
    )
    cc = client_credentials(idp_url, info.sample_client_id, info.client_secret)
    print(
        f"verified: {info.sample_client_id} got a client_credentials token "
        f"({cc.get('token_type')}, expires_in {cc.get('expires_in')}, scope {cc.get('scope')})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=1_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("HAWIYA_DATABASE_URL"),
        help="seed this migrated database only (default: HAWIYA_DATABASE_URL; without either, "
        "a fresh benchmark instance is seeded and checked through the server)",
    )
    parser.add_argument("--no-audit", action="store_true", help="skip the account/client audit events")
    args = parser.parse_args()
    if args.users < 1 or args.clients < 1:
        parser.error("--users and --clients must be at least 1")

    if args.database_url:
        info = seed(
            args.database_url, users=args.users, clients=args.clients, audit=not args.no_audit, verbose=True
        )
        print(f"seeded {info.users} people and {info.clients} clients in {info.seconds:.1f} s")
        print(f"sample person: {info.sample_username} / {info.password}")
        print(f"sample client: {info.sample_client_id} / {info.client_secret}")
        return
    with hawiya() as idp:
        print(f"fresh instance {idp.instance}, database {idp.database_url}")
        info = seed(
            idp.database_url, users=args.users, clients=args.clients, audit=not args.no_audit, verbose=True
        )
        print(f"seeded {info.users} people and {info.clients} clients in {info.seconds:.1f} s")
        idp.start()
        verify(idp.url, info)


if __name__ == "__main__":
    main()
