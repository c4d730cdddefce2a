"""A validator matches the whole value: a trailing newline is not a valid username, address, phone,
identity number, country or passport (``re.match`` with ``$`` let ``"amal\\n"`` through, and a
look-alike of the account ``amal`` was created). Refused through every door that creates accounts:
the service, the command line, the registration page; and the console names nobody by one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from idp.errors import InvalidInput, NotAllowed, NotFound
from idp.registry import Registry
from tests.conftest import PASSWORD, World
from tests.support.cli import assert_clean_error, new_instance
from tests.support.flask_person import FlaskPerson
from tests.support.identity import national_id
from tests.support.person import hidden_fields

LOOKALIKE = "amal\n"


@pytest.mark.parametrize(
    "changes",
    [
        {"username": LOOKALIKE},
        {"username": "amal\r\n"},
        {"email": "amal@example.org\n"},
        {"phone": "+96550000009\n"},
    ],
    ids=lambda changes: next(iter(changes)),
)
def test_a_trailing_newline_is_refused_in_every_field(registry: Registry, changes: dict[str, Any]) -> None:
    fields: dict[str, Any] = {
        "account_type": "citizen",
        "username": "amal",
        "password": PASSWORD,
        "national_id": national_id(40),
        **changes,
    }
    with pytest.raises(InvalidInput):
        registry.accounts.create(**fields)
    assert registry.accounts.list() == []


def test_a_passport_number_with_a_trailing_newline_is_refused(registry: Registry) -> None:
    with pytest.raises(InvalidInput):
        registry.accounts.create(
            account_type="visitor",
            username="hans",
            password=PASSWORD,
            passport_number="X1234567\n",
            nationality="DE",
        )


def test_an_organisation_number_with_a_trailing_newline_is_refused(registry: Registry) -> None:
    with pytest.raises(InvalidInput):
        registry.organisations.create(registration_number="CR-1234\n-", name="Dates Co", actor="test")


def test_the_command_line_refuses_the_lookalike_username(tmp_path: Path) -> None:
    instance = new_instance(tmp_path)
    instance.ok("init")
    instance.ok(
        "users", "create", "--type", "citizen", "--username", "amal", "--national-id", national_id(41),
        "--password-stdin", stdin=PASSWORD,
    )  # fmt: skip
    refused = instance.run(
        "users", "create", "--type", "citizen", "--username", LOOKALIKE, "--national-id", national_id(42),
        "--password-stdin", stdin=PASSWORD,
    )  # fmt: skip
    assert "username must be" in assert_clean_error(refused)
    assert [u["username"] for u in instance.json("users", "list")] == ["amal"]


def test_the_registration_page_refuses_the_lookalike_username(app: Flask, registry: Registry) -> None:
    # The page trims what was typed: "amal\n" is "amal", which is taken.
    registry.accounts.create(
        account_type="visitor", username="amal", password=None, passport_number="X1111111", nationality="DE"
    )
    browser = FlaskPerson(app)
    fields = hidden_fields(browser.get("/register").get_data(as_text=True))
    fields.update(
        username=LOOKALIKE,
        email="amal@example.net",
        given_name="Amal",
        family_name="Saleh",
        passport_number="X7654321",
        nationality="de",
        password=PASSWORD,
        password_confirm=PASSWORD,
    )
    refused = browser.post("/register", fields)
    assert refused.status_code == 409, refused.status_code
    assert "That username is taken" in refused.get_data(as_text=True)
    assert [p.username for p in registry.accounts.list()] == ["amal"]


def test_the_console_names_nobody_by_a_lookalike(registry: Registry, world: World) -> None:
    amal = registry.accounts.create(
        account_type="staff",
        username="amal",
        password=PASSWORD,
        national_id=national_id(43),
        agency="Ministry of Interior",
        roles=("admin",),
    )
    assert registry.accounts.by_username(LOOKALIKE) is None
    with pytest.raises(NotAllowed):
        registry.staff_authority.operator(LOOKALIKE, "staff.manage")
    assert registry.staff_authority.operator("amal", "staff.manage") == "amal"
    with pytest.raises(NotFound):
        registry.console.person(amal, amal.id + "\n")
