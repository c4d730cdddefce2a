"""Account use cases: create, list, look up, and the facts sign-in and claims need."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Protocol

from idp.accounts.identity import (
    PROOFING_LEVELS,
    STAFF_ROLES,
    national_id_problem,
    normalise_country,
    normalise_passport,
)
from idp.accounts.passwords import PasswordHasher
from idp.accounts.policy import PasswordPolicy, normalise
from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.clock import Clock
from idp.errors import InvalidInput, NotFound
from idp.inbound import is_identifier
from idp.settings import MFA_REQUIRED_ACCOUNT_TYPES
from idp.storage.models import Account
from idp.storage.repositories.accounts import AccountRepository

#: Account types. Business roles attach to people through organisations (idp.accounts.organisations).
ACCOUNT_TYPES = ("citizen", "resident", "visitor", "staff")
#: Types whose identity number comes from the national register.
REGISTERED_TYPES = ("citizen", "resident")
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{2,149}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")


class PasswordListener(Protocol):
    """Told after an account's password was set anew (``idp.accounts.eviction.Eviction``)."""

    def __call__(self, account_id: str, *, via: str, ip: str | None) -> None:
        """React to the new password of ``account_id``, set through ``via``."""
        ...


@dataclass(frozen=True)
class Person:
    """An account as the rest of the IdP sees it (never its password hash)."""

    id: str
    username: str
    account_type: str
    status: str
    name: str | None = None
    name_ar: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    email_verified: bool = False
    phone: str | None = None
    phone_verified: bool = False
    birthdate: date | None = None
    address: dict[str, Any] | None = None
    locale: str | None = None
    proofing_level: str = "self_asserted"
    updated_at: datetime | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    national_id: str | None = None
    nationality: str | None = None
    passport_number: str | None = None

    @property
    def agency(self) -> str | None:
        """Staff: the agency they work for."""
        value = self.attributes.get("agency")
        return str(value) if value else None

    @property
    def department(self) -> str | None:
        """Staff: their department."""
        value = self.attributes.get("department")
        return str(value) if value else None

    @property
    def roles(self) -> tuple[str, ...]:
        """Staff: the roles they hold."""
        return tuple(str(role) for role in self.attributes.get("roles", ()))

    @property
    def active(self) -> bool:
        """True when the account may sign in."""
        return self.status == "active"


@dataclass(frozen=True)
class NewAccount:
    """An account to create, without its credential: what creating one by hand, importing a file
    and self-registration all check through ``AccountService.check``."""

    account_type: str
    username: str
    email: str | None = None
    name: str | None = None
    name_ar: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    phone: str | None = None
    email_verified: bool = False
    phone_verified: bool = False
    birthdate: date | None = None
    address: dict[str, Any] | None = None
    national_id: str | None = None
    nationality: str | None = None
    passport_number: str | None = None
    proofing_level: str = "self_asserted"
    agency: str | None = None
    department: str | None = None
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class SigninRecord:
    """What password sign-in needs: the person and their stored hash."""

    person: Person
    password_hash: str | None


def _person(row: Account) -> Person:
    return Person(
        id=row.id,
        username=row.username,
        account_type=row.account_type,
        status=row.status,
        name=row.name,
        name_ar=row.name_ar,
        given_name=row.given_name,
        family_name=row.family_name,
        email=row.email,
        email_verified=row.email_verified,
        phone=row.phone,
        phone_verified=row.phone_verified,
        birthdate=row.birthdate,
        address=row.address,
        locale=row.locale,
        proofing_level=row.proofing_level,
        updated_at=row.updated_at,
        attributes=dict(row.attributes or {}),
        national_id=row.national_id,
        nationality=row.nationality,
        passport_number=row.passport_number,
    )


class AccountService:
    """Create and read accounts."""

    def __init__(
        self,
        repository: AccountRepository,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        clock: Clock,
        audit: AuditLog,
        *,
        on_password_set: Sequence[PasswordListener] = (),
    ) -> None:
        self._repository = repository
        self._hasher = hasher
        self._policy = policy
        self._clock = clock
        self._audit = audit
        self._on_password_set = tuple(on_password_set)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    def create(
        self,
        *,
        account_type: str,
        username: str,
        password: str | None,
        email: str | None = None,
        name: str | None = None,
        name_ar: str | None = None,
        given_name: str | None = None,
        family_name: str | None = None,
        phone: str | None = None,
        email_verified: bool = False,
        phone_verified: bool = False,
        birthdate: date | None = None,
        address: dict[str, Any] | None = None,
        national_id: str | None = None,
        nationality: str | None = None,
        passport_number: str | None = None,
        proofing_level: str = "self_asserted",
        agency: str | None = None,
        department: str | None = None,
        roles: Sequence[str] = (),
        actor: str | None = None,
    ) -> Person:
        """Create an account after checking every field and the password policy.

        ``password`` None creates an account with no credential yet: the person sets one with an
        activation code (``idp.accounts.activation``)."""
        new = self.check(
            NewAccount(
                account_type=account_type,
                username=username,
                email=email,
                name=name,
                name_ar=name_ar,
                given_name=given_name,
                family_name=family_name,
                phone=phone,
                email_verified=email_verified,
                phone_verified=phone_verified,
                birthdate=birthdate,
                address=address,
                national_id=national_id,
                nationality=nationality,
                passport_number=passport_number,
                proofing_level=proofing_level,
                agency=agency,
                department=department,
                roles=tuple(roles),
            )
        )
        password_hash = None
        if password is not None:
            password_hash = self.hash_new_password(password, username=username, account_type=account_type)
        return self.create_checked(new, password_hash=password_hash, actor=actor)

    def check(self, new: NewAccount) -> NewAccount:
        """``new`` with its fields normalised, after checking each against the account rules;
        InvalidInput (with a stable code) for the first that breaks one. Touches no storage."""
        if new.account_type not in ACCOUNT_TYPES:
            raise InvalidInput(
                f"account type must be one of {', '.join(ACCOUNT_TYPES)}", code="account_type_invalid"
            )
        if not _USERNAME.fullmatch(new.username):
            raise InvalidInput(
                "username must be 3-150 letters, digits or . _ @ + - and start with a letter or digit",
                code="username_invalid",
            )
        if new.email is not None and (len(new.email) > 320 or not _EMAIL.fullmatch(new.email)):
            raise InvalidInput("email is not a valid address", code="email_invalid")
        for label, value, limit in (
            ("name", new.name, 300),
            ("Arabic name", new.name_ar, 300),
            ("given name", new.given_name, 150),
            ("family name", new.family_name, 150),
        ):
            if value is not None and len(value) > limit:
                raise InvalidInput(f"the {label} has at most {limit} characters", code="name_too_long")
        if new.phone is not None and not _PHONE.fullmatch(new.phone):
            raise InvalidInput(
                "phone must be in international form, for example +96512345678", code="phone_invalid"
            )
        identity = check_identity(
            new.account_type,
            national_id=new.national_id,
            nationality=new.nationality,
            passport_number=new.passport_number,
            proofing_level=new.proofing_level,
            agency=new.agency,
            department=new.department,
            roles=new.roles,
        )
        attributes = identity["attributes"]
        return replace(
            new,
            national_id=identity["national_id"],
            nationality=identity["nationality"],
            passport_number=identity["passport_number"],
            agency=attributes.get("agency"),
            department=attributes.get("department"),
            roles=tuple(attributes.get("roles", ())),
        )

    def hash_new_password(self, password: str, *, username: str, account_type: str) -> str:
        """The stored form of a new password, after the policy (NIST SP 800-63B-4 3.1.1.2: 8
        characters suffice where a second factor is always required, else 15); WeakPassword."""
        self._policy.check(
            password, username=username, mfa_required=account_type in MFA_REQUIRED_ACCOUNT_TYPES
        )
        return self._hasher.hash(normalise(password))

    def create_checked(self, new: NewAccount, *, password_hash: str | None, actor: str | None) -> Person:
        """Store one account that ``check`` accepted, with a password already hashed (or none)."""
        row = self._repository.add(self._row(new, password_hash, self._now()))
        self._audit.record(
            AuditEvent.ACCOUNT_CREATED,
            actor=actor,
            subject=row.id,
            detail={"account_type": new.account_type},
        )
        return _person(row)

    def create_many(
        self, accounts: Sequence[NewAccount], *, progress: Callable[[int], None] | None = None
    ) -> list[Person]:
        """Store accounts that ``check`` accepted, none with a password, in one transaction: all of
        them or (on any conflict) none. ``progress`` hears how many rows each step wrote. The
        caller audits the batch."""
        now = self._now()
        rows = self._repository.add_many([self._row(new, None, now) for new in accounts], progress=progress)
        return [_person(row) for row in rows]

    def existing(self, *, national_ids: Sequence[str], usernames: Sequence[str]) -> list[Person]:
        """Accounts holding any of these national identity numbers or (whatever their case)
        usernames."""
        return [_person(row) for row in self._repository.matching(national_ids, usernames)]

    def email_in_use(self, email: str) -> bool:
        """True when some account has this email address (whatever its case)."""
        return self._repository.email_in_use(email)

    @staticmethod
    def _row(new: NewAccount, password_hash: str | None, now: datetime) -> Account:
        attributes: dict[str, Any] = {}
        if new.account_type == "staff":
            attributes = {"agency": new.agency, "department": new.department, "roles": list(new.roles)}
        return Account(
            id=str(uuid.uuid4()),
            username=new.username,
            account_type=new.account_type,
            status="active",
            password_hash=password_hash,
            name=new.name,
            name_ar=new.name_ar,
            given_name=new.given_name,
            family_name=new.family_name,
            email=new.email,
            email_verified=new.email_verified,
            phone=new.phone,
            phone_verified=new.phone_verified,
            birthdate=new.birthdate,
            address=new.address,
            national_id=new.national_id,
            nationality=new.nationality,
            passport_number=new.passport_number,
            proofing_level=new.proofing_level,
            attributes=attributes,
            created_at=now,
            updated_at=now,
        )

    def get(self, account_id: str) -> Person:
        """The account with this id; NotFound otherwise."""
        row = self._repository.by_id(account_id) if is_identifier(account_id) else None
        if row is None:
            raise NotFound("no such account")
        return _person(row)

    def find(self, account_id: str) -> Person | None:
        """The account with this id, or None (an id no account could have names none, unread)."""
        row = self._repository.by_id(account_id) if is_identifier(account_id) else None
        return None if row is None else _person(row)

    def by_username(self, username: str) -> Person | None:
        """The account with this username, or None (a value no username could be names none)."""
        row = self._repository.by_username(username) if is_identifier(username) else None
        return None if row is None else _person(row)

    def list(self) -> Sequence[Person]:
        """Every account."""
        return [_person(row) for row in self._repository.list()]

    def has_active_admin(self) -> bool:
        """True when an active staff account holds the ``admin`` role (the first-admin bootstrap
        of ``hawiya users create`` is over)."""
        return any("admin" in _person(row).roles for row in self._repository.active_staff())

    def signin_record(self, username: str) -> SigninRecord | None:
        """The person and password hash for ``username``, or None."""
        row = self._repository.by_username(username) if is_identifier(username) else None
        return None if row is None else SigninRecord(_person(row), row.password_hash)

    def replace_password_hash(self, account_id: str, phc: str) -> None:
        """Store a re-computed hash of the same password (parameters rose): not a new password,
        so nobody is evicted."""
        self._repository.update(account_id, password_hash=phc)

    def set_password(self, account_id: str, password: str, *, via: str, ip: str | None = None) -> None:
        """Set a new password (the policy applies: WeakPassword) and evict whoever held the
        account (``password_changed``)."""
        person = self.get(account_id)
        phc = self.hash_new_password(password, username=person.username, account_type=person.account_type)
        self._repository.update(account_id, password_hash=phc, updated_at=self._now())
        self.password_changed(account_id, via=via, ip=ip)

    def password_changed(self, account_id: str, *, via: str, ip: str | None = None) -> None:
        """The one place every route that stored a new password goes through: audit it, then tell
        every listener (``idp.accounts.eviction``: end every session, revoke every token)."""
        self._audit.record(AuditEvent.PASSWORD_CHANGED, subject=account_id, ip=ip, detail={"via": via})
        for listener in self._on_password_set:
            listener(account_id, via=via, ip=ip)

    def record_subject(self, sector: str, account_id: str, subject: str) -> str:
        """Remember the pairwise subject a sector knows this account by."""
        return self._repository.pairwise_subject(sector, account_id, subject)

    def by_subject(self, sector: str, subject: str) -> Person | None:
        """The account a sector knows as ``subject``."""
        row = self._repository.by_subject(sector, subject)
        return None if row is None else _person(row)


def check_identity(
    account_type: str,
    *,
    national_id: str | None,
    nationality: str | None,
    passport_number: str | None,
    proofing_level: str,
    agency: str | None,
    department: str | None,
    roles: Sequence[str],
) -> dict[str, Any]:
    """The identity columns of a new account, checked against its type: citizens and residents
    carry a national identity number, visitors a passport and nationality, staff an agency."""
    if proofing_level not in PROOFING_LEVELS:
        raise InvalidInput(
            f"proofing level must be one of {', '.join(PROOFING_LEVELS)}", code="proofing_level_invalid"
        )
    if national_id is not None:
        national_id = national_id.strip()
        problem = national_id_problem(national_id)
        if problem:
            raise InvalidInput(problem, code="national_id_invalid")
    elif account_type in REGISTERED_TYPES:
        raise InvalidInput(
            f"a {account_type} account needs a national identity number", code="national_id_missing"
        )
    try:
        nationality = normalise_country(nationality) if nationality else None
    except ValueError as error:
        raise InvalidInput(str(error), code="nationality_invalid") from None
    try:
        passport_number = normalise_passport(passport_number) if passport_number else None
    except ValueError as error:
        raise InvalidInput(str(error), code="passport_invalid") from None
    if account_type == "visitor" and not (passport_number and nationality):
        raise InvalidInput(
            "a visitor account needs a passport number and a nationality", code="passport_missing"
        )
    attributes: dict[str, Any] = {}
    if account_type == "staff":
        if not agency or not agency.strip():
            raise InvalidInput("a staff account needs an agency", code="agency_missing")
        unknown = [role for role in roles if role not in STAFF_ROLES]
        if unknown:
            raise InvalidInput(
                f"unknown staff role {unknown[0]!r}; use {', '.join(STAFF_ROLES)}", code="role_invalid"
            )
        attributes = {
            "agency": agency.strip(),
            "department": (department or "").strip() or None,
            "roles": sorted(set(roles)),
        }
    elif agency or department or roles:
        raise InvalidInput(
            "only staff accounts have an agency, a department and roles", code="staff_fields_not_allowed"
        )
    return {
        "national_id": national_id,
        "nationality": nationality,
        "passport_number": passport_number,
        "proofing_level": proofing_level,
        "attributes": attributes,
    }
