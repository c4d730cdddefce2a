"""Who among staff may do what: one table of operations and the staff roles that allow each.

Staff accounts carry roles (``idp.accounts.identity.STAFF_ROLES``); the admin console (``/admin``)
and the state-changing ``hawiya`` commands (when an operator is named) check this table, and only
this table. Only an *active staff* account holds permissions: a citizen, resident or visitor holds
none, whatever its attributes say, and a suspended staff account loses them at once.

The split follows separation of duties: the ``admin`` runs the service (agencies' clients, staff
accounts, bulk imports, organisations) but cannot touch signing keys; the ``key-officer`` alone
rotates and revokes keys and the master key; the ``auditor`` reads (the audit trail, and the
clients and keys it refers to) and changes nothing; the ``helpdesk`` serves people at the counter
(finds them, creates individual accounts, issues activation codes, registers businesses and fixes
their roles) but never creates staff or imports files, which may hold staff rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from idp.accounts.identity import STAFF_ROLES
from idp.errors import NotAllowed

#: Operation -> the staff roles that allow it. A new operation is a reviewed change here.
OPERATIONS: Mapping[str, frozenset[str]] = {
    # Agencies' OpenID Connect clients.
    "clients.read": frozenset({"admin", "auditor"}),
    "clients.manage": frozenset({"admin"}),
    # Signing keys and the master key (separation of duties: not the admin).
    "keys.read": frozenset({"key-officer", "admin", "auditor"}),
    "keys.manage": frozenset({"key-officer"}),
    # The audit trail.
    "audit.read": frozenset({"auditor", "admin"}),
    # People (accounts of individuals): finding, creating one, first credentials.
    "people.read": frozenset({"helpdesk", "admin"}),
    "people.create": frozenset({"helpdesk", "admin"}),
    "people.activate": frozenset({"helpdesk", "admin"}),
    # Bulk imports may create staff accounts with roles: the admin's, like staff accounts.
    "people.import": frozenset({"admin"}),
    "staff.manage": frozenset({"admin"}),
    # Organisations: registering them and fixing who acts for them; suspending stops everyone.
    "orgs.manage": frozenset({"admin", "helpdesk"}),
    "orgs.suspend": frozenset({"admin"}),
}


class StaffMember(Protocol):
    """What a permission check reads of an account (``idp.accounts.service.Person`` has it)."""

    @property
    def account_type(self) -> str:
        """``staff`` for staff accounts."""
        ...

    @property
    def active(self) -> bool:
        """True while the account may sign in."""
        ...

    @property
    def roles(self) -> tuple[str, ...]:
        """The staff roles the account holds."""
        ...


def _roles_for(operation: str) -> frozenset[str]:
    try:
        return OPERATIONS[operation]
    except KeyError:
        # A typo in code must never read as "nobody may": it is a bug, and fails loudly.
        raise ValueError(f"unknown operation {operation!r}") from None


def roles_of(person: StaffMember | None) -> frozenset[str]:
    """The known staff roles ``person`` holds while an active staff account; else none."""
    if person is None or person.account_type != "staff" or not person.active:
        return frozenset()
    return frozenset(role for role in person.roles if role in STAFF_ROLES)


def allowed(person: StaffMember | None, operation: str) -> bool:
    """True when ``person`` (an active staff account) holds a role that allows ``operation``.

    ValueError for an operation not in ``OPERATIONS``.
    """
    return bool(roles_of(person) & _roles_for(operation))


def require(person: StaffMember | None, operation: str) -> None:
    """Return when ``person`` may do ``operation``; NotAllowed (``not_permitted``) otherwise."""
    roles = _roles_for(operation)
    if roles_of(person) & roles:
        return
    if person is None or person.account_type != "staff":
        raise NotAllowed(f"{operation} is for staff accounts only", code="not_permitted")
    if not person.active:
        raise NotAllowed(f"{operation} needs an active staff account", code="not_permitted")
    raise NotAllowed(f"{operation} needs the role {' or '.join(sorted(roles))}", code="not_permitted")


def operations_of(person: StaffMember | None) -> frozenset[str]:
    """Every operation ``person`` may do (what the console shows them)."""
    held = roles_of(person)
    return frozenset(op for op, roles in OPERATIONS.items() if held & roles)
