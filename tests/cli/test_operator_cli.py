"""Named operators on the command line: with ``HAWIYA_OPERATOR`` (or ``--operator``) naming a staff
account, a state-changing command runs only when that account's roles allow it, and the audit names
the operator instead of ``cli``; with ``HAWIYA_CLI_OPERATOR_REQUIRED`` nobody-named is refused.
Refusals are one clean line; read-only commands are never gated."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update

from idp.storage.models import Account
from tests.conftest import PASSWORD
from tests.support.cli import Instance, assert_clean_error, new_instance
from tests.support.identity import national_id

STAFF = {"amal": ("admin",), "khalid": ("key-officer",), "hana": ("helpdesk",), "sami": ("key-officer",)}


@pytest.fixture(scope="module")
def hawiya(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """A deployment with one staff member per role (``sami``, a key officer, is suspended) and a
    citizen; made in process: only the gating is under test."""
    instance = new_instance(tmp_path_factory.mktemp("operators"))
    instance.ok("init")
    registry = instance.registry()
    try:
        for seed, (username, roles) in enumerate(STAFF.items(), start=61):
            registry.accounts.create(
                account_type="staff",
                username=username,
                password=PASSWORD,
                national_id=national_id(seed),
                agency="Ministry of Interior",
                roles=roles,
            )
        registry.accounts.create(
            account_type="citizen", username="fatima", password=None, national_id=national_id(69)
        )
        with registry.db.transaction() as session:
            session.execute(update(Account).where(Account.username == "sami").values(status="suspended"))
    finally:
        registry.close()
    yield instance


def _events(instance: Instance, event: str) -> list[Any]:
    registry = instance.registry()
    try:
        return registry.audit.recent(event=event)
    finally:
        registry.close()


def _keys(instance: Instance) -> list[Any]:
    registry = instance.registry()
    try:
        return registry.keystore.describe()
    finally:
        registry.close()


def _as(operator: str) -> dict[str, str]:
    return {"HAWIYA_OPERATOR": operator}


def test_an_operator_with_the_role_is_named_in_the_audit(hawiya: Instance) -> None:
    rotated = hawiya.run("keys", "rotate", "--alg", "ES256", "--force", **_as("khalid"))
    assert rotated.returncode == 0, rotated.stderr
    assert _events(hawiya, "signing_key.rotated")[0].actor == "khalid"

    created = hawiya.run(
        "clients", "create", "--name", "Ministry of Justice", "--redirect-uri", "https://moj.example/cb",
        **_as("amal"),
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert _events(hawiya, "client.created")[0].actor == "amal"

    person = hawiya.run(
        "users", "create", "--type", "citizen", "--username", "yousef", "--national-id", national_id(70),
        "--no-password", **_as("hana"),
    )  # fmt: skip
    assert person.returncode == 0, person.stderr
    assert "activation code:" in person.stdout
    assert _events(hawiya, "account.created")[0].actor == "hana"
    assert _events(hawiya, "activation_code.issued")[0].actor == "hana"


def test_the_operator_option_names_the_operator_too(hawiya: Instance) -> None:
    # The option wins over the environment (here: a helpdesk member who may not prune keys).
    pruned = hawiya.run("--operator", "khalid", "keys", "prune", **_as("hana"))
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.startswith("pruned ")


def test_an_operator_without_the_role_is_refused_in_one_line(hawiya: Instance) -> None:
    before = _keys(hawiya)
    line = assert_clean_error(hawiya.run("keys", "rotate", "--force", **_as("hana")))
    assert line == "hawiya: error: operator 'hana' refused: keys.manage needs the role key-officer"
    # Separation of duties: the admin does not touch keys either.
    line = assert_clean_error(hawiya.run("keys", "revoke", before[0].kid, "--reason", "x", **_as("amal")))
    assert "keys.manage needs the role key-officer" in line
    assert _keys(hawiya) == before
    refused = _events(hawiya, "operation.refused")[:2]
    assert [(e.actor, e.detail["operation"], e.detail["channel"]) for e in refused] == [
        ("amal", "keys.manage", "cli"),
        ("hana", "keys.manage", "cli"),
    ]


@pytest.mark.parametrize(
    ("operator", "message"),
    [
        ("fatima", "hawiya: error: the operator 'fatima' is not a staff account"),
        ("nobody", "hawiya: error: the operator 'nobody' is not a staff account"),
        ("sami", "hawiya: error: operator 'sami' refused: keys.manage needs an active staff account"),
    ],
    ids=["citizen", "unknown", "suspended-staff"],
)
def test_only_an_active_staff_account_can_be_the_operator(
    hawiya: Instance, operator: str, message: str
) -> None:
    assert assert_clean_error(hawiya.run("keys", "prune", **_as(operator))) == message


def test_creating_staff_or_their_codes_needs_the_admin(hawiya: Instance) -> None:
    staff = hawiya.run(
        "users", "create", "--type", "staff", "--username", "newbie", "--agency", "MOI",
        "--national-id", national_id(71), "--role", "admin", "--no-password", **_as("hana"),
    )  # fmt: skip
    line = assert_clean_error(staff)
    assert "staff.manage needs the role admin" in line
    line = assert_clean_error(hawiya.run("users", "activation-code", "amal", **_as("hana")))
    assert "staff.manage needs the role admin" in line
    assert assert_clean_error(hawiya.run("users", "import", __file__, **_as("hana"))).endswith(
        "people.import needs the role admin"
    )
    # The admin may give a staff member a code.
    assert hawiya.run("users", "activation-code", "khalid", **_as("amal")).returncode == 0
    assert _events(hawiya, "activation_code.issued")[0].actor == "amal"


def test_organisations_need_their_roles(hawiya: Instance) -> None:
    created = hawiya.run("orgs", "create", "--number", "CR-7001", "--name", "Dates Co", **_as("hana"))
    assert created.returncode == 0, created.stderr
    assert hawiya.run(
        "orgs", "add-member", "CR-7001", "--username", "fatima", "--role", "owner", **_as("hana")
    ).returncode == 0  # fmt: skip
    line = assert_clean_error(hawiya.run("orgs", "suspend", "CR-7001", **_as("hana")))
    assert "orgs.suspend needs the role admin" in line
    assert hawiya.run("orgs", "suspend", "CR-7001", **_as("amal")).returncode == 0
    assert _events(hawiya, "organisation.created")[0].actor == "hana"
    assert _events(hawiya, "membership.granted")[0].actor == "operator:hana"
    assert _events(hawiya, "organisation.suspended")[0].actor == "amal"


def test_nobody_named_is_cli_unless_an_operator_is_required(hawiya: Instance) -> None:
    assert hawiya.run("orgs", "create", "--number", "CR-7002", "--name", "Nobody Named").returncode == 0
    assert _events(hawiya, "organisation.created")[0].actor == "cli"

    required = {"HAWIYA_CLI_OPERATOR_REQUIRED": "true"}
    for command in (("clients", "disable", "anything"), ("keys", "rotate")):
        line = assert_clean_error(hawiya.run(*command, **required))
        assert line == (
            "hawiya: error: this command needs an operator: set HAWIYA_OPERATOR (or --operator) to your "
            "staff username"
        ), command
    # Read-only commands and init are never gated.
    for command in (("keys", "list"), ("users", "list"), ("init",)):
        result = hawiya.run(*command, **required)
        assert result.returncode == 0, (command, result.stderr)
    # Named, the same command runs.
    assert hawiya.run("keys", "prune", **required, **_as("khalid")).returncode == 0
