"""``hawiya orgs``: an operator registers organisations, gives people roles in them (with an
optional expiry), takes roles away, suspends and reactivates, the way an operator runs it (the
first command through the real entry point, the rest in process: tests/support/cli.py); refusals
are one clean line; the demo brings a business owned by the demo citizen."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.audit import audit_events
from tests.support.cli import Instance, assert_clean_error, new_instance, succeeded
from tests.support.identity import national_id


@pytest.fixture(scope="module")
def hawiya(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """A deployment with three citizens, shared by this module's tests (each uses its own
    organisations). The people are made in process: only the ``orgs`` commands are under test."""
    instance = new_instance(tmp_path_factory.mktemp("orgs"))
    instance.ok("init")
    registry = instance.registry()
    try:
        for seed, username in enumerate(("huda", "omar", "sara"), start=41):
            registry.accounts.create(
                account_type="citizen", username=username, password=None, national_id=national_id(seed)
            )
    finally:
        registry.close()
    yield instance


def _in_two_days() -> str:
    return (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d")


def test_an_organisation_from_creation_to_suspension(hawiya: Instance) -> None:
    args = ("orgs", "create", "--number", "cr-5001", "--name", "Pearl Foods", "--name-ar", "أغذية اللؤلؤ")
    created = json.loads(succeeded(hawiya.run_process(*args, "--json")))  # the real entry point
    assert created["registration_number"] == "CR-5001" and created["status"] == "active"
    assert created["name_ar"] == "أغذية اللؤلؤ"

    owner = hawiya.json("orgs", "add-member", "CR-5001", "--username", "huda", "--role", "owner")
    assert (owner["username"], owner["role"], owner["granted_by"], owner["expires_at"]) == (
        "huda",
        "owner",
        "operator:cli",
        None,
    )
    day = _in_two_days()
    said = hawiya.ok(
        "orgs", "add-member", created["id"], "--username", "omar", "--role", "employee", "--expires", day
    )
    assert said.strip() == f"omar is employee of CR-5001 until {day}"

    shown = hawiya.json("orgs", "show", "cr-5001")
    assert shown["id"] == created["id"]
    assert [(m["username"], m["role"]) for m in shown["members"]] == [("huda", "owner"), ("omar", "employee")]
    assert shown["members"][1]["expires_at"].startswith(day)
    text = hawiya.ok("orgs", "show", "CR-5001")
    assert "status: active" in text and f"until {day}" in text

    assert "no longer holds a role" in hawiya.ok("orgs", "remove-member", "CR-5001", "--username", "omar")
    assert "suspended CR-5001" in hawiya.ok("orgs", "suspend", "CR-5001")
    listed = {o["registration_number"]: o for o in hawiya.json("orgs", "list")}
    assert listed["CR-5001"]["status"] == "suspended" and listed["CR-5001"]["name"] == "Pearl Foods"
    assert "reactivated CR-5001" in hawiya.ok("orgs", "reactivate", created["id"])

    registry = hawiya.registry()
    try:
        huda = registry.accounts.by_username("huda")
        omar = registry.accounts.by_username("omar")
        assert huda is not None and omar is not None
        acting = registry.organisations.acting(huda.id, "CR-5001")
        assert acting is not None and acting.role == "owner"
        assert registry.organisations.acting(omar.id, "CR-5001") is None
    finally:
        registry.close()


def test_refusals_are_one_clean_line(hawiya: Instance) -> None:
    hawiya.ok("orgs", "create", "--number", "CR-6001", "--name", "Oasis Books")
    hawiya.ok("orgs", "add-member", "CR-6001", "--username", "sara", "--role", "owner")
    cases = {
        "orgs create --number cr-6001 --name Copy": "exists",
        "orgs add-member CR-6001 --username nobody --role owner": "no account 'nobody'",
        "orgs add-member CR-6001 --username omar --role employee --expires 2001-01-01": "future",
        "orgs remove-member CR-6001 --username sara": "must keep an owner",
        "orgs remove-member CR-6001 --username omar": "holds no role",
    }
    for command, says in cases.items():
        line = assert_clean_error(hawiya.run(*shlex.split(command)))
        assert says in line, (command, line)
    shown = hawiya.json("orgs", "show", "CR-6001")
    assert [(m["username"], m["role"]) for m in shown["members"]] == [("sara", "owner")]
    assert shown["name"] == "Oasis Books"


def test_the_demo_brings_a_business_once(tmp_path: Path) -> None:
    instance = new_instance(tmp_path)
    instance.ok("init")
    assert "CR-100200" in instance.ok("demo")
    instance.ok("demo")
    shown = instance.json("orgs", "show", "CR-100200")
    assert (shown["name"], shown["name_ar"]) == ("Gulf Trading Company", "شركة الخليج للتجارة")
    assert [(m["username"], m["role"]) for m in shown["members"]] == [("citizen", "owner")]
    registry = instance.registry()
    try:
        assert len([o for o in registry.organisations.list() if o.registration_number == "CR-100200"]) == 1
        assert len(audit_events(registry, "membership.granted")) == 1
    finally:
        registry.close()
