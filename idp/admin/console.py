"""The staff console's use cases (``/admin``) and the operator check of the command line.

Every use case takes the acting staff member (a ``Person`` read afresh for each request, so a role
taken away or an account suspended counts at once), checks the permission table
(``idp.admin.permissions``) and audits what it changes with the staff member's username as the
``actor``. A refusal is audited too (``operation.refused``), so probing the console leaves a trace.
The views only hide what a person may not do; the checks that count are here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from idp.accounts.activation import ActivationCodes, IssuedCode
from idp.accounts.identity import national_id_problem
from idp.accounts.service import AccountService, Person
from idp.admin import permissions
from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditEntry, AuditLog
from idp.errors import InvalidInput, NotAllowed, NotFound
from idp.inbound import is_identifier
from idp.keys.keystore import KeyStore, PublicKeyInfo, Rotation
from idp.oidc.clients import ClientService, RegisteredClient

#: Audit event names are lower-case words joined by dots (``signin.failed``).
_EVENT = re.compile(r"[a-z0-9._]{1,64}")


class FactorReader(Protocol):
    """The one thing the console reads of authenticators: how many an account has confirmed."""

    def factors(self, account_id: str) -> Sequence[object]:
        """The account's confirmed authenticators."""
        ...


@dataclass(frozen=True)
class PersonSummary:
    """What the helpdesk sees of an account: who, what kind, in what state (never a secret)."""

    id: str
    username: str
    account_type: str
    status: str
    name: str | None
    name_ar: str | None
    proofing_level: str
    #: The email address with its local part masked (``f•••@example.org``), or None.
    email: str | None
    #: How many second factors (authenticator apps, passkeys, security keys) it has confirmed.
    factors: int
    agency: str | None
    department: str | None
    roles: tuple[str, ...]


def mask_email(email: str | None) -> str | None:
    """``fatima@example.org`` -> ``f•••@example.org``: enough to recognise, not to harvest."""
    if not email or "@" not in email:
        return None
    local, domain = email.rsplit("@", 1)
    return f"{local[:1]}•••@{domain}"


def actor_of(staff: Person) -> str:
    """The audit ``actor`` of a staff member's actions: their username."""
    return staff.username


class StaffAuthority:
    """Who may act as staff: the permission table applied to accounts, refusals audited. Small
    on purpose (accounts and audit only), so the command line can check an operator without
    opening any key."""

    def __init__(self, accounts: AccountService, audit: AuditLog) -> None:
        self._accounts = accounts
        self._audit = audit

    def authorise(
        self, person: Person | None, operation: str, *, channel: str, ip: str | None = None
    ) -> None:
        """Return when ``person`` may do ``operation``; NotAllowed (audited) otherwise."""
        try:
            permissions.require(person, operation)
        except NotAllowed:
            self._audit.record(
                AuditEvent.OPERATION_REFUSED,
                actor=person.username if person else None,
                subject=person.id if person else None,
                ip=ip,
                detail={"operation": operation, "channel": channel},
            )
            raise

    def staff_member(self, account_id: str, *, ip: str | None = None) -> Person:
        """The signed-in account as a staff member who may use the console (holds some
        permission); NotAllowed (audited) otherwise."""
        person = self._accounts.find(account_id)
        if person is None or not permissions.operations_of(person):
            self._audit.record(
                AuditEvent.OPERATION_REFUSED,
                actor=person.username if person else None,
                subject=account_id,
                ip=ip,
                detail={"operation": "console", "channel": "console"},
            )
            raise NotAllowed("the staff console is for staff with a role", code="not_permitted")
        return person

    def operator(self, username: str, operation: str) -> str:
        """The audit actor for ``username`` running ``operation`` on the command line: NotAllowed
        (audited) unless it is an active staff account holding a role that allows it."""
        named = is_identifier(username) is not None
        person = self._accounts.by_username(username) if named else None
        if person is None or person.account_type != "staff":
            self._audit.record(
                AuditEvent.OPERATION_REFUSED,
                actor=username if named else None,
                detail={"operation": operation, "channel": "cli", "reason": "not_staff"},
            )
            raise NotAllowed(f"the operator {username[:150]!r} is not a staff account", code="not_permitted")
        try:
            self.authorise(person, operation, channel="cli")
        except NotAllowed as refused:
            raise NotAllowed(f"operator {username!r} refused: {refused.message}", code=refused.code) from None
        return actor_of(person)


class StaffConsole:
    """Staff operations, each behind its permission."""

    def __init__(
        self,
        authority: StaffAuthority,
        accounts: AccountService,
        clients: ClientService,
        keystore: KeyStore,
        activation_codes: ActivationCodes,
        factors: FactorReader,
        audit: AuditLog,
    ) -> None:
        self.authority = authority
        self._accounts = accounts
        self._clients = clients
        self._keystore = keystore
        self._activation = activation_codes
        self._factors = factors
        self._audit = audit

    def _authorise(self, person: Person, operation: str, *, ip: str | None = None) -> None:
        self.authority.authorise(person, operation, channel="console", ip=ip)

    def staff_member(self, account_id: str, *, ip: str | None = None) -> Person:
        """The signed-in account as a staff member who may use the console; NotAllowed otherwise."""
        return self.authority.staff_member(account_id, ip=ip)

    @staticmethod
    def operations(staff: Person) -> frozenset[str]:
        """What the staff member may do (the console shows only these)."""
        return permissions.operations_of(staff)

    # -- clients ----------------------------------------------------------------------------------

    def clients(self, staff: Person) -> list[RegisteredClient]:
        """Every registered client."""
        self._authorise(staff, "clients.read")
        return self._clients.list()

    def disable_client(self, staff: Person, client_id: str, *, ip: str | None = None) -> RegisteredClient:
        """Stop serving a client."""
        self._authorise(staff, "clients.manage", ip=ip)
        return self._clients.disable(self._client_id(client_id), actor=actor_of(staff))

    def set_first_party(
        self, staff: Person, client_id: str, first_party: bool, *, ip: str | None = None
    ) -> RegisteredClient:
        """Mark a client first-party (consent implied, still recorded) or not."""
        self._authorise(staff, "clients.manage", ip=ip)
        return self._clients.set_first_party(self._client_id(client_id), first_party, actor=actor_of(staff))

    @staticmethod
    def _client_id(client_id: str) -> str:
        if not is_identifier(client_id):
            raise NotFound("no such client")
        return client_id

    # -- keys -------------------------------------------------------------------------------------

    def keys(self, staff: Person) -> list[PublicKeyInfo]:
        """Every signing key and its state (never key material)."""
        self._authorise(staff, "keys.read")
        return self._keystore.describe()

    def rotate_key(self, staff: Person, alg: str, *, ip: str | None = None) -> Rotation:
        """Rotate ``alg``'s signing key (RotationRefused while its next key is too new to sign)."""
        self._authorise(staff, "keys.manage", ip=ip)
        if not any(info.alg == alg and info.state == "current" for info in self._keystore.describe()):
            raise NotFound("no such signing algorithm in use")
        return self._keystore.rotate(alg, actor=actor_of(staff))

    # -- audit ------------------------------------------------------------------------------------

    def audit_trail(
        self, staff: Person, *, event: str | None = None, subject: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """The newest audit events, of one event name and one subject when given. A subject that
        is a username means that person's account."""
        self._authorise(staff, "audit.read")
        event = (event or "").strip() or None
        subject = (subject or "").strip() or None
        if event is not None and not _EVENT.fullmatch(event):
            raise InvalidInput("an event name is letters, digits, dots and underscores", code="bad_filter")
        if subject is not None:
            if not is_identifier(subject):
                raise InvalidInput("a subject is an account id or a username", code="bad_filter")
            named = self._accounts.by_username(subject) if is_identifier(subject) else None
            subject = named.id if named is not None else subject
        return self._audit.recent(event=event, subject=subject, limit=limit)

    # -- people -----------------------------------------------------------------------------------

    def find_person(self, staff: Person, query: str, *, ip: str | None = None) -> PersonSummary | None:
        """The account whose username or national identity number is ``query``, or None. Every
        look-up is audited (who looked whom up; the query itself is not recorded)."""
        self._authorise(staff, "people.read", ip=ip)
        query = query.strip()
        by = "national_id" if national_id_problem(query) is None else "username"
        found: Person | None = None
        if by == "national_id":
            matches = self._accounts.existing(national_ids=[query], usernames=[])
            found = next((p for p in matches if p.national_id == query), None)
        elif is_identifier(query):
            found = self._accounts.by_username(query)
        self._audit.record(
            AuditEvent.ACCOUNT_LOOKED_UP,
            actor=actor_of(staff),
            subject=found.id if found else None,
            ip=ip,
            detail={"by": by, "found": found is not None},
        )
        return None if found is None else self._summary(found)

    def person(self, staff: Person, account_id: str) -> PersonSummary:
        """One account by id (after a look-up); NotFound otherwise."""
        self._authorise(staff, "people.read")
        found = self._accounts.find(account_id) if is_identifier(account_id) else None
        if found is None:
            raise NotFound("no such account")
        return self._summary(found)

    def _summary(self, person: Person) -> PersonSummary:
        return PersonSummary(
            id=person.id,
            username=person.username,
            account_type=person.account_type,
            status=person.status,
            name=person.name,
            name_ar=person.name_ar,
            proofing_level=person.proofing_level,
            email=mask_email(person.email),
            factors=len(self._factors.factors(person.id)),
            agency=person.agency,
            department=person.department,
            roles=person.roles,
        )

    def issue_activation_code(
        self, staff: Person, account_id: str, *, send: bool, ip: str | None = None
    ) -> IssuedCode:
        """A new activation code for the account (its earlier codes stop working), to hand over
        once. A staff account's code sets a staff password: that needs ``staff.manage`` too."""
        self._authorise(staff, "people.activate", ip=ip)
        person = self._accounts.find(account_id) if is_identifier(account_id) else None
        if person is None:
            raise NotFound("no such account")
        if person.account_type == "staff":
            self._authorise(staff, "staff.manage", ip=ip)
        return self._activation.issue(person.id, actor=actor_of(staff), send=send, ip=ip)
