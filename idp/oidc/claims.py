"""Subject identifiers and claims (OIDC Core 5.1, 5.4, 8).

Subjects are pairwise by sector by default (OIDC Core 8.1): ``sub`` is
``base64url(HMAC-SHA256(pairwise salt, sector || 0x00 || account id))``, so two agencies in
different sectors cannot correlate a person by ``sub``. The salt is a sealed instance secret shared
by every IdP process. Each (sector, sub) pair is recorded so userinfo can find the person again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Set
from typing import Any, Protocol

from idp.accounts.service import AccountService, Person
from idp.oidc.clients import RegisteredClient

#: Claims released per scope (OIDC Core 5.4, and Hawiya's own three). ``preferred_username`` is
#: never released: it would let agencies correlate a person across sectors and defeat pairwise
#: subjects. ``identity``: the identity the national register (or a passport) vouches for, with how
#: it was verified (``proofing_level``: self_asserted, counter, document_check), which is not the
#: authentication level (``acr``). ``staff``: the agency, department and roles of government staff,
#: released only to clients of the same agency. ``business``: the organisation the person acts for.
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": ("name", "name#ar", "given_name", "family_name", "birthdate", "locale", "updated_at"),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "address": ("address",),
    "identity": ("national_id", "passport_number", "nationality", "birthdate", "proofing_level"),
    "staff": ("agency", "department", "roles"),
    "business": ("organisation",),
}
#: Claims only staff of the client's own agency release.
STAFF_CLAIMS = frozenset(SCOPE_CLAIMS["staff"])


class ActingFor(Protocol):
    """What claims need of a usable membership (idp.accounts.organisations.Acting)."""

    @property
    def organisation(self) -> Any: ...

    @property
    def role(self) -> str: ...


def organisation_claim(acting: ActingFor) -> dict[str, Any]:
    """The ``organisation`` claim: who the person acts for, and in which role."""
    org = acting.organisation
    claim = {
        "id": org.id,
        "registration_number": org.registration_number,
        "name": org.name,
        "role": acting.role,
    }
    if org.name_ar:
        claim["name#ar"] = org.name_ar
    return claim


class SubjectService:
    """Derive and resolve the ``sub`` each client knows a person by."""

    #: Pairwise subjects this process knows are recorded (they never change once recorded), at
    #: most this many in each direction.
    KNOWN_MAX = 100_000

    def __init__(self, accounts: AccountService, salt: bytes) -> None:
        self._accounts = accounts
        self._salt = salt
        self._known: dict[tuple[str, str], str] = {}
        #: And the other way: (sector, subject) -> account id, for userinfo.
        self._owners: dict[tuple[str, str], str] = {}

    def subject(self, client: RegisteredClient, account_id: str) -> str:
        """The ``sub`` for this person at this client."""
        if client.subject_type == "public":
            return account_id
        digest = hmac.new(
            self._salt,
            client.sector_identifier.encode() + b"\x00" + account_id.encode(),
            hashlib.sha256,
        ).digest()
        subject = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        key = (client.sector_identifier, account_id)
        known = self._known.get(key)
        if known is not None:
            return known  # recorded before: no database round-trip (two per code exchange)
        recorded = self._accounts.record_subject(client.sector_identifier, account_id, subject)
        if len(self._known) >= self.KNOWN_MAX:
            self._known.clear()
        self._known[key] = recorded
        return recorded

    def person(self, client: RegisteredClient, subject: str) -> Person | None:
        """The person behind ``subject`` at this client, or None."""
        if client.subject_type == "public":
            return self._accounts.find(subject)
        account_id = self._owners.get((client.sector_identifier, subject))
        if account_id is not None:
            return self._accounts.find(account_id)  # the pairwise row never changes: one read less
        person = self._accounts.by_subject(client.sector_identifier, subject)
        if person is not None:
            if len(self._owners) >= self.KNOWN_MAX:
                self._owners.clear()
            self._owners[(client.sector_identifier, subject)] = person.id
        return person


def releases_staff_claims(person: Person | None, client_agency: str | None) -> bool:
    """Staff claims go only to a client of the staff member's own agency (one rule: claims and the
    consent page both ask it)."""
    return (
        person is not None
        and person.account_type == "staff"
        and person.agency is not None
        and person.agency == client_agency
    )


def claims_for(
    person: Person,
    scopes: Set[str],
    extra: Set[str] = frozenset(),
    *,
    client_agency: str | None = None,
    acting: ActingFor | None = None,
) -> dict[str, Any]:
    """The claims ``scopes`` release about ``person``, plus the individually consented ``extra``
    claims (OIDC Core 5.5), without ``sub``; absent values are omitted. Staff claims go only to a
    client of the person's own agency (``client_agency``); ``organisation`` only with ``acting``."""
    values: dict[str, Any] = {
        "name": person.name,
        "name#ar": person.name_ar,
        "given_name": person.given_name,
        "family_name": person.family_name,
        "birthdate": person.birthdate.isoformat() if person.birthdate else None,
        "locale": person.locale,
        "updated_at": int(person.updated_at.timestamp()) if person.updated_at else None,
        "email": person.email,
        "email_verified": person.email_verified if person.email else None,
        "phone_number": person.phone,
        "phone_number_verified": person.phone_verified if person.phone else None,
        "address": person.address,
        "national_id": person.national_id,
        "passport_number": person.passport_number,
        "nationality": person.nationality,
        "proofing_level": person.proofing_level,
        "organisation": organisation_claim(acting) if acting is not None else None,
    }
    if releases_staff_claims(person, client_agency):
        values.update(agency=person.agency, department=person.department, roles=list(person.roles) or None)
    names = {claim for scope in scopes for claim in SCOPE_CLAIMS.get(scope, ())} | set(extra)
    return {name: values[name] for name in sorted(names) if values.get(name) is not None}
