"""Organisations, the roles people hold in them, and invitations to join them.

A change to who holds a role is decided and made in one transaction that first locks the
organisation's row (a no-op UPDATE: a row lock on PostgreSQL, the write lock on SQLite), so two
concurrent changes are serialised: two owners cannot remove each other and leave none, and a
granter removed a moment ago cannot grant. The caller's rule (``Check``) sees a ``MembershipState``
read under that lock and either refuses (a reason) or lets the write go ahead. Accepting an
invitation is also one conditional UPDATE (``accepted_at IS NULL``), so a link works once; so is
claiming one (``claimed_by IS NULL``: the first claim wins), and confirming a claim spends the
invitation only while that same account still holds the claim.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.errors import Conflict
from idp.storage.db import Database
from idp.storage.models import Account, Invitation, Membership, Organisation

MISSING = "missing"


@dataclass(frozen=True)
class MembershipState:
    """What a rule about one person's role in one organisation needs, read under the lock."""

    #: The organisation's status (``active`` or ``suspended``).
    status: str
    #: The granter's role, when they hold an unexpired one (None: no granter, or no usable role).
    granter_role: str | None
    #: The target's current role, expired or not (None: not a member).
    target_role: str | None
    #: True when the target's current membership has not expired.
    target_usable: bool
    #: Unexpired owners besides the target.
    other_owners: int


#: A rule: None lets the change go ahead, otherwise the reason it is refused.
Check = Callable[[MembershipState], str | None]
Acceptance = Literal["accepted", "unknown", "used", "expired"]
#: ``claimed``: this call claimed it; ``pending``: the account already holds the claim;
#: ``already_claimed``: another account does.
Claiming = Literal["claimed", "pending", "already_claimed", "unknown", "used", "expired"]
#: ``not_inviter``: the caller did not send it; ``not_claimed``: that account holds no claim on it.
Confirmation = Literal["accepted", "not_inviter", "not_claimed", "unknown", "used", "expired"]


@dataclass(frozen=True)
class Grant:
    """The membership a grant or an accepted invitation writes."""

    role: str
    granted_by: str
    expires_at: datetime | None


def _usable(now: datetime) -> ColumnElement[bool]:
    return or_(Membership.expires_at.is_(None), Membership.expires_at > now)


class OrganisationRepository:
    """Read and write organisations, memberships and invitations."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- organisations --------------------------------------------------------------------------

    def add(self, row: Organisation) -> Organisation:
        """Insert an organisation; a duplicate registration number is a Conflict."""
        try:
            with self._db.transaction() as s:
                s.add(row)
        except IntegrityError:
            raise Conflict("an organisation with that registration number exists") from None
        return row

    def by_id(self, org_id: str) -> Organisation | None:
        """The organisation with this id."""
        with self._db.transaction() as s:
            return s.get(Organisation, org_id)

    def by_number(self, registration_number: str) -> Organisation | None:
        """The organisation with this registration number."""
        with self._db.transaction() as s:
            return s.scalars(
                select(Organisation).where(Organisation.registration_number == registration_number)
            ).first()

    def list(self, *, limit: int = 1000) -> Sequence[Organisation]:
        """Organisations by name."""
        with self._db.transaction() as s:
            return s.scalars(
                select(Organisation).order_by(Organisation.name, Organisation.id).limit(limit)
            ).all()

    def set_status(self, org_id: str, *, old: str, new: str, now: datetime) -> bool:
        """Move the organisation from ``old`` to ``new``; True when this call did it."""
        with self._db.transaction() as s:
            result = s.execute(
                update(Organisation)
                .where(Organisation.id == org_id, Organisation.status == old)
                .values(status=new, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    # -- memberships ----------------------------------------------------------------------------

    def state(
        self, org_id: str, account_id: str | None, *, granter_id: str | None, now: datetime
    ) -> MembershipState | None:
        """The state a rule sees, read without a lock (None: no such organisation)."""
        with self._db.transaction() as s:
            return self._state(s, org_id, account_id, granter_id, now)

    def grant(
        self,
        org_id: str,
        account_id: str,
        grant: Grant,
        *,
        granter_id: str | None,
        now: datetime,
        check: Check,
    ) -> MembershipState | str:
        """Give ``account_id`` the role (or change it) if ``check`` allows; the state it was
        decided on, or why not (``missing``: no such organisation)."""
        with self._db.transaction() as s:
            state = self._locked_state(s, org_id, account_id, granter_id, now)
            if isinstance(state, str):
                return state
            refusal = check(state)
            if refusal is not None:
                return refusal
            self._write(s, org_id, account_id, grant, now)
            return state

    def remove(
        self, org_id: str, account_id: str, *, granter_id: str | None, now: datetime, check: Check
    ) -> MembershipState | str:
        """Delete the membership if ``check`` allows; the state it was decided on, or why not
        (``missing``: no such organisation; ``not_member``, told only to those allowed to know)."""
        with self._db.transaction() as s:
            state = self._locked_state(s, org_id, account_id, granter_id, now)
            if isinstance(state, str):
                return state
            refusal = check(state)
            if refusal is not None:
                return refusal
            if state.target_role is None:
                return "not_member"
            row = s.scalars(
                select(Membership).where(
                    Membership.organisation_id == org_id, Membership.account_id == account_id
                )
            ).one()
            s.delete(row)
            return state

    def members(self, org_id: str) -> Sequence[tuple[Membership, str, str | None]]:
        """Every membership of the organisation (expired ones too) with each person's username
        and name."""
        with self._db.transaction() as s:
            rows = s.execute(
                select(Membership, Account.username, Account.name)
                .join(Account, Account.id == Membership.account_id)
                .where(Membership.organisation_id == org_id)
                .order_by(Account.username)
            ).all()
            return [(m, str(username), name) for m, username, name in rows]

    def usable_of(self, account_id: str, now: datetime) -> Sequence[tuple[Membership, Organisation]]:
        """The account's unexpired memberships in active organisations, by organisation name."""
        with self._db.transaction() as s:
            rows = s.execute(
                select(Membership, Organisation)
                .join(Organisation, Organisation.id == Membership.organisation_id)
                .where(
                    Membership.account_id == account_id,
                    Organisation.status == "active",
                    _usable(now),
                )
                .order_by(Organisation.name, Organisation.id)
            ).all()
            return [(m, o) for m, o in rows]

    # -- invitations ----------------------------------------------------------------------------

    def add_invitation(self, row: Invitation) -> None:
        """Store an invitation."""
        with self._db.transaction() as s:
            s.add(row)

    def invitation(self, code_hash: str) -> Invitation | None:
        """The invitation with this code hash (used or not, expired or not)."""
        with self._db.transaction() as s:
            return s.scalars(select(Invitation).where(Invitation.code_hash == code_hash)).first()

    def accept(
        self, code_hash: str, account_id: str, *, now: datetime, check: Callable[[Invitation], Check]
    ) -> tuple[Acceptance | str, Invitation | None]:
        """Spend the invitation and write the membership it offers, in one transaction, if
        ``check(invitation)`` allows; what happened and the invitation (None when unknown)."""
        with self._db.transaction() as s:
            found = s.scalars(select(Invitation).where(Invitation.code_hash == code_hash)).first()
            if found is None:
                return "unknown", None
            refusal, invitation = self._open(s, found, account_id, now, check)
            if refusal is not None:
                return refusal, invitation
            if not self._spend(s, invitation, account_id, now, claimed_by=None):
                return "used", invitation
            return "accepted", invitation

    def claim(
        self, code_hash: str, account_id: str, *, now: datetime, check: Callable[[Invitation], Check]
    ) -> tuple[Claiming | str, Invitation | None]:
        """Mark the invitation as asked for by ``account_id`` (granting nothing) if it is unused,
        unexpired, unclaimed and ``check(invitation)`` would let it be accepted; what happened and
        the invitation (None when unknown)."""
        with self._db.transaction() as s:
            found = s.scalars(select(Invitation).where(Invitation.code_hash == code_hash)).first()
            if found is None:
                return "unknown", None
            refusal, invitation = self._open(s, found, account_id, now, check)
            if refusal is not None:
                return refusal, invitation
            if invitation.claimed_by == account_id:
                return "pending", invitation
            claimed = s.execute(
                update(Invitation)
                .where(
                    Invitation.id == invitation.id,
                    Invitation.accepted_at.is_(None),
                    Invitation.claimed_by.is_(None),
                )
                .values(claimed_by=account_id, claimed_at=now)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return "already_claimed", invitation
            return "claimed", invitation

    def confirm(
        self,
        invitation_id: str,
        account_id: str,
        *,
        by: str,
        now: datetime,
        check: Callable[[Invitation], Check],
    ) -> tuple[Confirmation | str, Invitation | None]:
        """The inviter ``by`` lets the account holding the claim take up the invitation: spend it
        and write the membership, in one transaction, if ``check(invitation)`` allows; what
        happened and the invitation (None when unknown)."""
        with self._db.transaction() as s:
            found = s.get(Invitation, invitation_id)
            if found is None:
                return "unknown", None
            if found.invited_by != by:
                return "not_inviter", found
            refusal, invitation = self._open(s, found, account_id, now, check)
            if refusal is None and invitation.claimed_by != account_id:
                refusal = "not_claimed"
            if refusal is not None:
                return refusal, invitation
            if not self._spend(s, invitation, account_id, now, claimed_by=account_id):
                return "used", invitation
            return "accepted", invitation

    def decline(self, invitation_id: str, account_id: str, *, by: str) -> Invitation | None:
        """The inviter ``by`` turns down the claim ``account_id`` holds on an unused invitation:
        the claim is cleared, so the link can be taken up again. The invitation, or None when
        there was no such claim."""
        with self._db.transaction() as s:
            cleared = s.execute(
                update(Invitation)
                .where(
                    Invitation.id == invitation_id,
                    Invitation.invited_by == by,
                    Invitation.claimed_by == account_id,
                    Invitation.accepted_at.is_(None),
                )
                .values(claimed_by=None, claimed_at=None)
                .execution_options(synchronize_session=False)
            )
            if cleared.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return s.get(Invitation, invitation_id)

    def claims_for(
        self, inviter_id: str, now: datetime
    ) -> Sequence[tuple[Invitation, Organisation, str, str | None]]:
        """The unused, unexpired invitations ``inviter_id`` sent that an account has claimed, with
        the organisation and the claimant's username and name, oldest claim first."""
        with self._db.transaction() as s:
            rows = s.execute(
                select(Invitation, Organisation, Account.username, Account.name)
                .join(Organisation, Organisation.id == Invitation.organisation_id)
                .join(Account, Account.id == Invitation.claimed_by)
                .where(
                    Invitation.invited_by == inviter_id,
                    Invitation.accepted_at.is_(None),
                    Invitation.expires_at > now,
                )
                .order_by(Invitation.claimed_at, Invitation.id)
            ).all()
            return [(i, o, str(username), name) for i, o, username, name in rows]

    # -- inside a transaction -------------------------------------------------------------------

    def _open(
        self,
        s: Session,
        found: Invitation,
        account_id: str,
        now: datetime,
        check: Callable[[Invitation], Check],
    ) -> tuple[str | None, Invitation]:
        """Lock the invitation's organisation, then read the invitation afresh (another
        transaction may have spent or claimed it meanwhile): why ``account_id`` cannot take it up
        now (None: it can) and the invitation."""
        state = self._locked_state(s, found.organisation_id, account_id, found.invited_by, now)
        invitation = s.scalars(
            select(Invitation).where(Invitation.id == found.id).execution_options(populate_existing=True)
        ).one()
        if invitation.accepted_at is not None:
            return "used", invitation
        if invitation.expires_at <= now:
            return "expired", invitation
        if isinstance(state, str):
            return state, invitation
        return check(invitation)(state), invitation

    def _spend(
        self, s: Session, invitation: Invitation, account_id: str, now: datetime, *, claimed_by: str | None
    ) -> bool:
        """Mark the invitation used by ``account_id`` and write its membership; False when another
        transaction spent it first (or, for a confirmation, the claim changed hands)."""
        unused = [Invitation.id == invitation.id, Invitation.accepted_at.is_(None)]
        if claimed_by is not None:
            unused.append(Invitation.claimed_by == claimed_by)
        spent = s.execute(
            update(Invitation)
            .where(*unused)
            .values(accepted_at=now, accepted_by=account_id)
            .execution_options(synchronize_session=False)
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            return False
        grant = Grant(invitation.role, invitation.invited_by, invitation.membership_expires_at)
        self._write(s, invitation.organisation_id, account_id, grant, now)
        return True

    def _locked_state(
        self, s: Session, org_id: str, account_id: str, granter_id: str | None, now: datetime
    ) -> MembershipState | str:
        # A no-op write: PostgreSQL locks the row, SQLite takes its one write lock, until commit.
        locked = s.execute(
            update(Organisation)
            .where(Organisation.id == org_id)
            .values(status=Organisation.status)
            .execution_options(synchronize_session=False)
        )
        if locked.rowcount != 1:  # type: ignore[attr-defined]
            return MISSING
        state = self._state(s, org_id, account_id, granter_id, now)
        return MISSING if state is None else state

    def _state(
        self, s: Session, org_id: str, account_id: str | None, granter_id: str | None, now: datetime
    ) -> MembershipState | None:
        status = s.scalar(select(Organisation.status).where(Organisation.id == org_id))
        if status is None:
            return None
        granter_role = None
        if granter_id is not None:
            granter_role = s.scalar(
                select(Membership.role).where(
                    Membership.organisation_id == org_id,
                    Membership.account_id == granter_id,
                    _usable(now),
                )
            )
        target_role, target_usable = None, False
        if account_id is not None:
            target = s.scalars(
                select(Membership).where(
                    Membership.organisation_id == org_id, Membership.account_id == account_id
                )
            ).first()
            if target is not None:
                target_role = target.role
                target_usable = target.expires_at is None or target.expires_at > now
        others = s.scalar(
            select(func.count())
            .select_from(Membership)
            .where(
                Membership.organisation_id == org_id,
                Membership.role == "owner",
                Membership.account_id != (account_id or ""),
                _usable(now),
            )
        )
        return MembershipState(str(status), granter_role, target_role, target_usable, int(others or 0))

    def _write(self, s: Session, org_id: str, account_id: str, grant: Grant, now: datetime) -> None:
        row = s.scalars(
            select(Membership).where(
                Membership.organisation_id == org_id, Membership.account_id == account_id
            )
        ).first()
        if row is None:
            s.add(
                Membership(
                    organisation_id=org_id,
                    account_id=account_id,
                    role=grant.role,
                    granted_by=grant.granted_by,
                    created_at=now,
                    expires_at=grant.expires_at,
                )
            )
            return
        row.role = grant.role
        row.granted_by = grant.granted_by
        row.expires_at = grant.expires_at
