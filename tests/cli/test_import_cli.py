"""``hawiya users import``, ``users activation-code`` and ``users create --no-password``, run as an
operator runs them: bad files are refused whole with every problem listed by line, good files
import atomically and re-run safely, a terminal shows a progress bar, and activation codes reach
the operator's terminal or the person's mailbox, never a log."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from idp.accounts.activation import ActivationRefused
from tests.support.audit import audit_events
from tests.support.cli import ROOT, Instance, assert_clean_error, new_instance
from tests.support.identity import national_id
from tests.support.outbox import body, to
from tests.support.people_csv import people_csv

PASSWORD = "a long walk to the old souq"
CODE = re.compile(r"activation code: ([A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4})")
MAILED_CODE = re.compile(r"\b[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}\b")
ROWS = [
    {
        "type": "citizen",
        "username": "huda",
        "national_id": national_id(201),
        "name": "Huda Al-Shammari",
        "email": "huda@example.org",
        "proofing_level": "counter",
    },
    {"type": "resident", "username": "arjun", "national_id": national_id(202), "name": "Arjun Nair"},
    {
        "type": "staff",
        "username": "salem",
        "national_id": national_id(203),
        "email": "salem@gov.example",
        "agency": "Ministry of Interior",
        "roles": "helpdesk;auditor",
    },
]


@pytest.fixture(scope="module")
def hawiya(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """One initialised deployment for this module (each test uses its own people)."""
    instance = new_instance(tmp_path_factory.mktemp("import"))
    instance.ok("init")
    yield instance


def _file(tmp_path: Path, data: bytes, name: str = "people.csv") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _usernames(hawiya: Instance) -> set[str]:
    return {u["username"] for u in hawiya.json("users", "list")}


def test_bad_rows_are_all_listed_and_nothing_is_imported(hawiya: Instance, tmp_path: Path) -> None:
    before = _usernames(hawiya)
    rows = [
        {"type": "citizen", "username": "good.one", "national_id": national_id(210)},
        {"type": "citizen", "username": "bad.id", "national_id": "12345"},
        {"type": "visitor", "username": "no.passport", "nationality": "DE"},
        {"type": "staff", "username": "good.two", "national_id": national_id(211), "agency": "MOI"},
        {
            "type": "citizen",
            "username": "bad.date",
            "national_id": national_id(212),
            "birthdate": "31-01-1990",
        },
        {"type": "citizen", "username": "good.one", "national_id": national_id(213)},
    ]
    result = hawiya.run("users", "import", _file(tmp_path, people_csv(rows)))
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "line 3: a national identity number is 11 digits",
        "line 4: a visitor account needs a passport number and a nationality",
        "line 6: birthdate must be a date written YYYY-MM-DD",
        "line 7: the same username as line 2",
        "hawiya: error: 4 problem(s) in people.csv; nothing was imported",
    ]
    assert _usernames(hawiya) == before


def test_an_unreadable_file_is_one_clean_error(hawiya: Instance, tmp_path: Path) -> None:
    result = hawiya.run("users", "import", _file(tmp_path, b"type,username,colour\n"))
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith("line 1: unknown column(s) 'colour'")
    missing = hawiya.run("users", "import", str(tmp_path / "absent.csv"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr and "absent.csv" in missing.stderr


def test_import_rerun_and_activation_by_mail(hawiya: Instance, tmp_path: Path) -> None:
    path = _file(tmp_path, people_csv(ROWS, bom=True))
    first = hawiya.ok("users", "import", path, "--send-activation")
    assert first.splitlines() == [
        "imported 3, unchanged 0",
        "activation codes mailed: 2",
        "1 new person(s) have no email address: give them a code with"
        " `hawiya users activation-code USERNAME`",
    ]
    again = hawiya.run("users", "import", path, "--send-activation")
    assert again.returncode == 0 and again.stdout.splitlines()[:2] == [
        "imported 0, unchanged 3",
        "activation codes mailed: 0",
    ]
    assert "\r" not in first + again.stdout  # no progress bar when the output is not a terminal

    registry = hawiya.registry()
    try:
        outbox = registry.settings.outbox_path
        assert len(to(outbox, "huda@example.org")) == len(to(outbox, "salem@gov.example")) == 1
        (found,) = set(MAILED_CODE.findall(body(to(outbox, "huda@example.org")[0])))
        huda = registry.activation_codes.use(found, new_password=PASSWORD)
        assert registry.passwords.authenticate("huda", PASSWORD).account_id == huda.id
        imported = [event["detail"] for event in audit_events(registry, "accounts.imported")]
        assert [(e["imported"], e["unchanged"], e["activation_codes_sent"]) for e in imported] == [
            (0, 3, 0),
            (3, 0, 2),
        ]
    finally:
        registry.close()
    for output in (first, again.stdout + again.stderr):
        assert found not in output


def test_a_terminal_sees_a_progress_bar(hawiya: Instance, tmp_path: Path) -> None:
    rows = [
        {"type": "citizen", "username": f"tty{n:03d}", "national_id": national_id(300 + n)}
        for n in range(120)
    ]
    path = _file(tmp_path, people_csv(rows))
    leader, follower = pty.openpty()
    try:
        with subprocess.Popen(
            [sys.executable, "-m", "idp.cli", "users", "import", path],
            stdout=follower,
            stderr=follower,
            env=hawiya.env,
            cwd=ROOT,
        ) as process:
            os.close(follower)
            output = b""
            while True:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the terminal closed with the process
                    break
                if not chunk:
                    break
                output += chunk
            assert process.wait(timeout=120) == 0, output.decode(errors="replace")
    finally:
        os.close(leader)
    text = output.decode()
    assert "importing" in text and "100%" in text
    assert "imported 120, unchanged 0" in text


def test_create_without_a_password_prints_an_activation_code(hawiya: Instance) -> None:
    output = hawiya.ok(
        "users", "create", "--type", "citizen", "--username", "rana", "--national-id", national_id(220),
        "--email", "rana@example.org", "--no-password",
    )  # fmt: skip
    first = CODE.search(output)
    assert first and "works once, until" in output and "mailed" not in output

    issued = hawiya.json("users", "activation-code", "rana", "--send")
    assert issued["username"] == "rana" and issued["activation_sent_to"] == "rana@example.org"
    second = issued["activation_code"]
    registry = hawiya.registry()
    try:
        mails = to(registry.settings.outbox_path, "rana@example.org")
        assert len(mails) == 1 and second in body(mails[0])
        with pytest.raises(ActivationRefused):  # the newer code replaced the first
            registry.activation_codes.use(first.group(1), new_password=PASSWORD)
        registry.activation_codes.use(second, new_password=PASSWORD)
        assert registry.passwords.authenticate("rana", PASSWORD).account_id
    finally:
        registry.close()

    counter = hawiya.ok("users", "activation-code", "rana")
    assert CODE.search(counter) and "mailed" not in counter


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("users", "activation-code", "nobody-at-all"), "no account 'nobody-at-all'"),
        (("users", "create", "--type", "visitor", "--username", "both", "--password-stdin", "--no-password"),
         "--password-stdin, or use --no-password"),
        (("users", "create", "--type", "visitor", "--username", "mailonly", "--send-activation"),
         "--password-stdin, or use --no-password"),
    ],
)  # fmt: skip
def test_activation_commands_refuse_cleanly(hawiya: Instance, args: tuple[str, ...], says: str) -> None:
    assert says in assert_clean_error(hawiya.run(*args, stdin=PASSWORD))
