"""The permission table: which staff roles allow which operations, and who holds none at all."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from idp.accounts.identity import STAFF_ROLES
from idp.admin.permissions import OPERATIONS, allowed, operations_of, require
from idp.errors import NotAllowed


@dataclass(frozen=True)
class Someone:
    """Just what a permission check reads of an account."""

    roles: tuple[str, ...] = ()
    account_type: str = "staff"
    status: str = "active"

    @property
    def active(self) -> bool:
        return self.status == "active"


#: The table as a reader should understand it: role -> what it may do.
EXPECTED = {
    "admin": {
        "clients.read",
        "clients.manage",
        "keys.read",
        "audit.read",
        "people.read",
        "people.create",
        "people.activate",
        "people.import",
        "staff.manage",
        "orgs.manage",
        "orgs.suspend",
    },
    "key-officer": {"keys.read", "keys.manage"},
    "auditor": {"clients.read", "keys.read", "audit.read"},
    "helpdesk": {"people.read", "people.create", "people.activate", "orgs.manage"},
}


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_each_role_allows_exactly_its_operations(role: str) -> None:
    person = Someone((role,))
    assert operations_of(person) == EXPECTED[role]
    for operation in OPERATIONS:
        assert allowed(person, operation) == (operation in EXPECTED[role]), operation


def test_every_operation_names_known_roles_and_someone_holds_it() -> None:
    for operation, roles in OPERATIONS.items():
        assert roles and roles <= set(STAFF_ROLES), operation


def test_separation_of_duties() -> None:
    # The admin runs the service but never touches signing keys; only key officers do.
    assert not allowed(Someone(("admin",)), "keys.manage")
    assert {role for role in STAFF_ROLES if allowed(Someone((role,)), "keys.manage")} == {"key-officer"}
    # The auditor reads and changes nothing.
    assert {op for op in operations_of(Someone(("auditor",))) if not op.endswith(".read")} == set()
    # The helpdesk never creates staff, imports files (which may hold staff rows) or suspends.
    helpdesk = Someone(("helpdesk",))
    assert not any(allowed(helpdesk, op) for op in ("staff.manage", "people.import", "orgs.suspend"))


def test_roles_add_up() -> None:
    both = Someone(("helpdesk", "key-officer"))
    assert operations_of(both) == EXPECTED["helpdesk"] | EXPECTED["key-officer"]


@pytest.mark.parametrize(
    "person",
    [
        Someone(("admin",), account_type="citizen"),
        Someone(("admin",), account_type="resident"),
        Someone(("admin",), account_type="visitor"),
        Someone(("admin",), status="suspended"),
        Someone(()),
        Someone(("superuser", "root")),
        None,
    ],
    ids=["citizen", "resident", "visitor", "suspended-staff", "no-role", "unknown-roles", "nobody"],
)
def test_only_active_staff_with_a_role_hold_permissions(person: Someone | None) -> None:
    assert operations_of(person) == frozenset()
    with pytest.raises(NotAllowed) as refused:
        require(person, "audit.read")
    assert refused.value.code == "not_permitted" and refused.value.status == 403


def test_the_refusal_says_which_role_is_needed() -> None:
    with pytest.raises(NotAllowed, match=r"^keys\.manage needs the role key-officer$"):
        require(Someone(("helpdesk",)), "keys.manage")
    with pytest.raises(NotAllowed, match="needs the role admin or auditor"):
        require(Someone(("helpdesk",)), "audit.read")
    with pytest.raises(NotAllowed, match=r"^audit\.read needs an active staff account$"):
        require(Someone(("admin",), status="suspended"), "audit.read")
    with pytest.raises(NotAllowed, match="for staff accounts only"):
        require(Someone(("admin",), account_type="citizen"), "audit.read")
    require(Someone(("key-officer",)), "keys.manage")  # allowed: no error


def test_an_unknown_operation_is_a_bug_not_a_refusal() -> None:
    with pytest.raises(ValueError, match="unknown operation"):
        allowed(Someone(("admin",)), "keys.mange")
    with pytest.raises(ValueError, match="unknown operation"):
        require(Someone(("admin",)), "everything")
