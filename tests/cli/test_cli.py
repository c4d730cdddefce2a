"""The ``hawiya`` command line, run as an operator runs it (settings from ``HAWIYA_*`` variables):
in this process through click (tests/support/cli.py), and through the real entry point in a
separate process where the test says ``run_process``. Bad input prints exactly one line on stderr
and exits with status 2."""

from __future__ import annotations

import hashlib
import json
import shlex
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from idp.errors import AuthenticationFailed
from tests.conftest import PASSWORD
from tests.support.audit import audit_events
from tests.support.cli import Instance, assert_clean_error, new_instance, succeeded
from tests.support.identity import national_id


@pytest.fixture(scope="module")
def hawiya(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """An initialised deployment shared by this module's tests (each uses its own names)."""
    instance = new_instance(tmp_path_factory.mktemp("cli"))
    instance.ok("init")
    instance.ok(
        "users", "create", "--type", "citizen", "--username", "existing", "--national-id", national_id(11),
        "--password-stdin", stdin=PASSWORD,
    )  # fmt: skip
    yield instance


# -- init ------------------------------------------------------------------------------------------


def test_init_is_idempotent(tmp_path: Path) -> None:
    instance = new_instance(tmp_path)
    first = succeeded(instance.run_process("init"))  # the real entry point, real key generation
    assert "created master key" in first
    assert "created signing key" in first
    assert stat.S_IMODE(instance.master_key_file.stat().st_mode) == 0o600
    key = instance.master_key_file.read_bytes()
    instance.ok(
        "users", "create", "--type", "resident", "--username", "ravi", "--national-id", national_id(12),
        "--password-stdin", stdin=PASSWORD,
    )  # fmt: skip

    second = instance.ok("init")
    assert "created" not in second
    assert "database ready" in second
    assert instance.master_key_file.read_bytes() == key
    assert [u["username"] for u in instance.json("users", "list")] == ["ravi"]


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (("users", "list"), None),
        (("clients", "list"), None),
        (("orgs", "list"), None),
        (("clients", "create", "--name", "Agency", "--redirect-uri", "https://agency.example/cb"), None),
        (("users", "create", "--type", "citizen", "--username", "early", "--password-stdin"), PASSWORD),
    ],
)
def test_commands_before_init_fail_cleanly(tmp_path: Path, args: tuple[str, ...], stdin: str | None) -> None:
    instance = new_instance(tmp_path)
    line = assert_clean_error(instance.run(*args, stdin=stdin))
    assert "hawiya init" in line
    assert not instance.master_key_file.exists()


# -- users -----------------------------------------------------------------------------------------


def test_users_create_reads_the_password_from_stdin(hawiya: Instance) -> None:
    result = hawiya.run_process(
        "users", "create", "--type", "citizen", "--username", "layla", "--email", "layla@example.org",
        "--national-id", national_id(13),
        "--password-stdin", "--json", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    created = json.loads(result.stdout)
    assert created["username"] == "layla" and created["type"] == "citizen"

    listed = {u["username"]: u for u in hawiya.json("users", "list")}
    assert listed["layla"]["id"] == created["id"]
    assert listed["layla"]["status"] == "active"

    # The password typed on stdin (without its newline) is the one that signs in.
    registry = hawiya.registry()
    try:
        assert registry.passwords.authenticate("layla", PASSWORD).account_id == created["id"]
        with pytest.raises(AuthenticationFailed):
            registry.passwords.authenticate("layla", PASSWORD + "\n")
    finally:
        registry.close()


def test_users_list_json_never_shows_password_hashes(hawiya: Instance) -> None:
    output = hawiya.ok("users", "list", "--json")
    assert "argon2" not in output
    assert all(set(u) == {"id", "username", "type", "status", "name"} for u in json.loads(output))


# -- clients ---------------------------------------------------------------------------------------


def _create_client(hawiya: Instance, *extra: str) -> dict[str, Any]:
    created: dict[str, Any] = hawiya.json(
        "clients",
        "create",
        "--name",
        "Ministry of Justice",
        "--redirect-uri",
        "https://moj.example/cb",
        *extra,
    )
    return created


def _secret_leaks(output: str, secret: str) -> bool:
    return secret in output or hashlib.sha256(secret.encode()).hexdigest() in output


def test_client_secret_is_shown_once(hawiya: Instance) -> None:
    created = _create_client(hawiya)
    client_id, secret = created["client_id"], created["client_secret"]
    assert client_id and len(secret) >= 32

    for args in (("clients", "show", client_id), ("clients", "list")):
        output = hawiya.ok(*args)
        assert not _secret_leaks(output, secret), args
        assert not any(line.startswith(("client_secret:", "secret_hash:")) for line in output.splitlines())
    listed = hawiya.ok("clients", "list", "--json")
    assert not _secret_leaks(listed, secret)
    assert all({"client_secret", "secret_hash"}.isdisjoint(c) for c in json.loads(listed))

    output = hawiya.ok("clients", "show", client_id, "--json")
    assert not _secret_leaks(output, secret)
    shown = json.loads(output)
    assert {"client_secret", "secret_hash"}.isdisjoint(shown)
    assert shown["client_id"] == client_id
    assert shown["redirect_uris"] == ["https://moj.example/cb"]
    assert shown["token_endpoint_auth_method"] == "client_secret_basic"
    assert shown["status"] == "active"


def test_rotate_secret_keeps_the_old_one_for_the_overlap(hawiya: Instance) -> None:
    """Reproduction: rotating a secret cut the old one off at once, so every agency had an outage
    between the rotation and deploying its new secret. Now both work for the overlap (7 days by
    default), and at most two are ever valid."""
    created = _create_client(hawiya)
    client_id, old = created["client_id"], created["client_secret"]
    rotated = json.loads(succeeded(hawiya.run_process("clients", "rotate-secret", client_id, "--json")))
    new = rotated["client_secret"]
    assert rotated["client_id"] == client_id
    assert new != old and len(new) >= 32
    until = datetime.fromisoformat(rotated["previous_secret_valid_until"])
    assert timedelta(days=6, hours=23) < until - datetime.now(UTC) <= timedelta(days=7)
    shown = hawiya.json("clients", "show", client_id, "--json")
    assert shown["previous_secret_valid_until"] == rotated["previous_secret_valid_until"]
    assert not _secret_leaks(json.dumps(shown), new) and not _secret_leaks(json.dumps(shown), old)

    again = hawiya.json("clients", "rotate-secret", client_id, "--overlap-days", "1", "--json")
    registry = hawiya.registry()
    try:
        client = registry.clients.active(client_id)
        assert client is not None
        assert client.check_client_secret(again["client_secret"]) and client.check_client_secret(new)
        assert not client.check_client_secret(old)  # the first secret stops: two at most
        events = audit_events(registry, "client.secret_rotated")
        assert events[0]["detail"]["previous_valid_until"] == again["previous_secret_valid_until"]
    finally:
        registry.close()


def test_rotate_secret_now_cuts_the_old_one_off(hawiya: Instance) -> None:
    created = _create_client(hawiya)
    client_id, old = created["client_id"], created["client_secret"]
    plain = hawiya.ok("clients", "rotate-secret", client_id, "--now")
    assert "no longer works" in plain
    registry = hawiya.registry()
    try:
        client = registry.clients.active(client_id)
        assert client is not None and not client.check_client_secret(old)
        assert audit_events(registry, "client.secret_rotated")[0]["detail"] == {"previous_valid_until": None}
    finally:
        registry.close()
    line = assert_clean_error(hawiya.run("clients", "rotate-secret", client_id, "--overlap-days", "400"))
    assert "'--overlap-days': 400 is not in the range" in line


def test_disable_stops_serving_a_client(hawiya: Instance) -> None:
    client_id = _create_client(hawiya)["client_id"]
    output = hawiya.ok("clients", "disable", client_id)
    assert client_id in output
    assert hawiya.json("clients", "show", client_id)["status"] == "disabled"
    listed = {c["client_id"]: c for c in hawiya.json("clients", "list")}
    assert listed[client_id]["status"] == "disabled"


def test_public_client_has_no_secret(hawiya: Instance) -> None:
    created = _create_client(hawiya, "--public")
    assert created.get("client_secret") is None
    assert created["token_endpoint_auth_method"] == "none"
    plain = hawiya.ok(
        "clients", "create", "--name", "App", "--redirect-uri", "https://app.example/cb", "--public"
    )
    assert "client_id:" in plain and "client_secret" not in plain
    line = assert_clean_error(hawiya.run("clients", "rotate-secret", created["client_id"]))
    assert "secret" in line


def test_pkce_exemption_is_granted_shown_and_withdrawn(hawiya: Instance) -> None:
    """New clients need PKCE; staff may excuse a legacy agency at creation or later (docs/clients.md)."""
    assert _create_client(hawiya)["pkce_exempt"] is False
    created = _create_client(hawiya, "--pkce-exempt")
    client_id = created["client_id"]
    assert created["pkce_exempt"] is True
    assert "pkce_exempt: True" in hawiya.ok("clients", "show", client_id)
    assert hawiya.json("clients", "update", client_id, "--no-pkce-exempt")["pkce_exempt"] is False
    assert hawiya.json("clients", "show", client_id)["pkce_exempt"] is False
    assert "pkce_exempt: True" in hawiya.ok("clients", "update", client_id, "--pkce-exempt")
    # Only the migration gives the token endpoint audience, and only to clients that existed then.
    assert created["legacy_assertion_audience"] is False
    assert "legacy_assertion_audience_until" not in created


# -- bad input -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A refused command: its words, stdin, extra environment, and what the error line must say."""

    command: str
    says: str
    stdin: str | None = None
    env: tuple[tuple[str, str], ...] = ()


NEW_CLIENT = "clients create --name X --redirect-uri https://a.example/cb"
NEW_USER = "users create --type visitor --passport X1234567 --nationality DE --password-stdin --username"
BAD_INPUT = {
    # Click's own usage errors are one line too (they were three: usage, hint, error).
    "unknown command": Bad("clients frobnicate", "No such command 'frobnicate'"),
    "unknown option": Bad("keys list --colour", "No such option '--colour'"),
    "value outside its range": Bad("serve --port 70000", "70000 is not in the range 1<=x<=65535"),
    "missing argument": Bad("clients show", "Missing argument 'CLIENT_ID'"),
    "unknown client (show)": Bad("clients show no-such-client", "no client 'no-such-client'"),
    "unknown client (show --json)": Bad("clients show no-such-client --json", "no client"),
    "unknown client (disable)": Bad("clients disable no-such-client", "no client"),
    "unknown client (rotate)": Bad("clients rotate-secret no-such-client", "no client"),
    "unknown client (update)": Bad("clients update no-such-client --no-pkce-exempt", "no client"),
    "update without a change": Bad("clients update no-such-client", "nothing to change"),
    "public client exempt from PKCE": Bad(NEW_CLIENT + " --public --pkce-exempt", "public"),
    "ftp redirect URI": Bad("clients create --name X --redirect-uri ftp://x", "ftp://x"),
    "http redirect URI off localhost": Bad(
        "clients create --name X --redirect-uri http://agency.example/cb", "https"
    ),
    "redirect URI with fragment": Bad(
        "clients create --name X --redirect-uri https://agency.example/cb#f", "fragment"
    ),
    "no redirect URI": Bad("clients create --name X", "redirect URI"),
    "unknown scope": Bad(NEW_CLIENT + " --scope 'openid admin'", "'admin'"),
    "resource is the issuer": Bad(NEW_CLIENT + " --resource http://localhost:8000", "identity provider"),
    "resource is an IdP endpoint": Bad(
        NEW_CLIENT + " --resource http://localhost:8000/introspect", "identity provider"
    ),
    "unsupported grant type": Bad(NEW_CLIENT + " --grant-type password", "grant types"),
    "duplicate client id": Bad(NEW_CLIENT.replace(" X ", " Dup ") + " --client-id dup", "exists"),
    "short password": Bad(NEW_USER + " weak1", "at least 15 characters", stdin="fourteen chars"),
    "common password": Bad(NEW_USER + " weak2", "too common", stdin="passwordpassword"),
    "empty password": Bad(NEW_USER + " weak3", "at least 15 characters", stdin=""),
    "missing --password-stdin": Bad(
        "users create --type citizen --username nostdin", "--password-stdin", stdin=PASSWORD
    ),
    "duplicate username": Bad(NEW_USER + " existing", "exists", stdin=PASSWORD),
    "duplicate username, other case": Bad(NEW_USER + " EXISTING", "exists", stdin=PASSWORD),
    "bad username": Bad(NEW_USER + " -x", "username", stdin=PASSWORD),
    "bad email": Bad(NEW_USER + " bademail --email nope", "email", stdin=PASSWORD),
    "unknown organisation (show)": Bad("orgs show CR-NOPE", "no organisation 'CR-NOPE'"),
    "unknown organisation (add-member)": Bad(
        "orgs add-member CR-NOPE --username existing --role owner", "no organisation"
    ),
    "bad registration number": Bad("orgs create --number 'CR 1' --name X", "registration number"),
    "bad setting value": Bad("users list", "HAWIYA_CODE_TTL", env=(("HAWIYA_CODE_TTL", "sixty"),)),
    "http issuer off localhost": Bad(
        "users list", "HAWIYA_ISSUER", env=(("HAWIYA_ISSUER", "http://idp.example.gov"),)
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_one_clean_line(hawiya: Instance, case: str) -> None:
    bad = BAD_INPUT[case]
    args = tuple(shlex.split(bad.command))
    if case == "duplicate client id":
        hawiya.ok(*args)
    line = assert_clean_error(hawiya.run(*args, stdin=bad.stdin, **dict(bad.env)))
    assert bad.says in line
    if bad.stdin:
        assert bad.stdin not in line  # a refused password is never echoed
    # A refused create leaves nothing behind.
    if args[:2] == ("users", "create") and not case.startswith("duplicate"):
        username = args[args.index("--username") + 1]
        assert username not in [u["username"] for u in hawiya.json("users", "list")]
    if args[:2] == ("clients", "create"):
        name = args[args.index("--name") + 1]
        expected = 1 if case == "duplicate client id" else 0
        assert len([c for c in hawiya.json("clients", "list") if c["name"] == name]) == expected


def test_weak_password_error_says_why(hawiya: Instance) -> None:
    line = assert_clean_error(
        hawiya.run_process(
            "users",
            "create",
            "--type",
            "citizen",
            "--username",
            "weak4",
            "--national-id",
            national_id(14),
            "--password-stdin",
            stdin="Tiny7secret",
        )
    )
    assert "at least 15 characters" in line
    assert "Tiny7secret" not in line


def test_init_refuses_to_replace_a_lost_master_key(tmp_path: Path) -> None:
    instance = new_instance(tmp_path)
    instance.ok("init")
    instance.master_key_file.rename(tmp_path / "lost.key")
    line = assert_clean_error(instance.run("init"))
    assert "master key" in line
    assert not instance.master_key_file.exists(), "a useless new master key was created"
