"""Organisations (companies and establishments) and the roles people hold in them.

A person acts for an organisation as its ``owner``, an authorised ``signatory`` or an
``employee``. Roles are granted by an owner or signatory of the same active organisation (only an
owner grants, changes or removes the owner role) or by an operator on the command line, may expire,
and can be offered by email: an invitation carries a random code (``secrets.token_urlsafe``, 192
bits) that Hawiya keeps only as SHA-256, works once, and lapses after seven days. Holding the code
is not enough: only an account whose *verified* email is the invited address takes the role at
once. Any other account that opens the link only claims the invitation (one claim at a time),
and the person who sent it confirms that named account (the role is then granted) or declines it
(the link works again, so whoever intercepted it cannot block it for good). An organisation
always keeps an owner. Only a membership whose organisation is active and which has not expired is
usable for acting on the organisation's behalf. Every grant, removal, refusal, invitation and
claim is audited.
"""

from __future__ import annotations

import builtins
import hashlib
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NoReturn

from idp.accounts.service import AccountService, Person
from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.clock import Clock
from idp.emails import MailRenderer
from idp.errors import Conflict, HawiyaError, InvalidInput, NotAllowed, NotFound
from idp.inbound import is_identifier
from idp.mail import Mail, MailSender
from idp.storage.models import Invitation, Membership, Organisation
from idp.storage.repositories.organisations import (
    MISSING,
    Check,
    Grant,
    MembershipState,
    OrganisationRepository,
)

log = logging.getLogger(__name__)

ROLES = ("owner", "signatory", "employee")
#: Roles that may grant, change and remove roles (and invite).
MANAGING_ROLES = ("owner", "signatory")
#: How long an invitation link works.
INVITATION_TTL = timedelta(days=7)

_NUMBER = re.compile(r"[A-Za-z0-9-]{3,32}")
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: ``token_urlsafe(24)`` makes 32 characters; anything far from that is not a code of ours.
_CODE = re.compile(r"[A-Za-z0-9_-]{16,64}")

#: Why a change was refused (``NotAllowed.code``), with the message an operator reads.
REFUSALS = {
    "not_allowed": "only an owner or an authorised signatory of the organisation can do that",
    "owner_only": "only an owner can grant, change or remove the owner role",
    "last_owner": "an organisation must keep an owner: make someone else owner first",
    "organisation_suspended": "the organisation is suspended",
    "not_member": "that person holds no role in the organisation",
    "inviter_not_allowed": "the person who sent the invitation can no longer grant that role",
    "already_claimed": "another account has asked to take up this invitation: the person who sent it"
    " must answer that first",
}
_ROLE_WORDS = {
    "owner": ("مالك", "owner"),
    "signatory": ("مفوّض بالتوقيع", "authorised signatory"),
    "employee": ("موظف", "employee"),
}


@dataclass(frozen=True)
class Org:
    """An organisation as the rest of the IdP sees it."""

    id: str
    registration_number: str
    name: str
    name_ar: str | None
    status: str

    @property
    def active(self) -> bool:
        """True when people may act for it."""
        return self.status == "active"


@dataclass(frozen=True)
class Acting:
    """A usable membership: the person may act for ``organisation`` in ``role``."""

    organisation: Org
    role: str
    expires_at: datetime | None


@dataclass(frozen=True)
class Member:
    """One person's role in an organisation (expired or not)."""

    account_id: str
    username: str
    name: str | None
    role: str
    #: The account id that granted it, or ``operator:<name>``.
    granted_by: str | None
    created_at: datetime
    expires_at: datetime | None

    def expired(self, now: datetime) -> bool:
        """True when the role has lapsed at ``now``."""
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class InvitationView:
    """What an invitation link offers (while it is still valid)."""

    organisation: Org
    role: str
    email: str
    expires_at: datetime
    membership_expires_at: datetime | None
    #: The account waiting for the inviter's confirmation, if any.
    claimed_by: str | None = None


@dataclass(frozen=True)
class AwaitingInviter:
    """An invitation taken up by an account whose verified email is not the invited address:
    nothing is granted until the person who sent it confirms that account."""

    organisation: Org
    role: str


@dataclass(frozen=True)
class Claim:
    """An invitation an account asks to take up, waiting for its inviter to confirm or decline."""

    invitation_id: str
    organisation: Org
    role: str
    #: The address the invitation was sent to.
    email: str
    account_id: str
    username: str
    name: str | None
    claimed_at: datetime
    membership_expires_at: datetime | None


def addressed_to(person: Person, email: str) -> bool:
    """True when ``email`` is the person's address and Hawiya has verified it is theirs (an
    unverified address proves nothing: anyone may type one in)."""
    return bool(person.email and person.email_verified) and _address(person.email or "") == _address(email)


def _address(email: str) -> str:
    return email.strip().lower()


def grantable(role: str) -> tuple[str, ...]:
    """The roles a person holding ``role`` may grant (and invite to)."""
    if role == "owner":
        return ROLES
    if role == "signatory":
        return tuple(r for r in ROLES if r != "owner")
    return ()


def expiry_of(day: date) -> datetime:
    """The moment a role given "until ``day``" lapses: the start of that day, UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def code_hash(code: str) -> str:
    """How an invitation code is stored: SHA-256 (the code is random, not a password)."""
    return hashlib.sha256(code.encode()).hexdigest()


def _org(row: Organisation) -> Org:
    return Org(row.id, row.registration_number, row.name, row.name_ar, row.status)


def _member(row: Membership, username: str, name: str | None) -> Member:
    return Member(row.account_id, username, name, row.role, row.granted_by, row.created_at, row.expires_at)


def _rule(role: str | None, *, by: str | None) -> Check:
    """May ``by`` (an account id; None for an operator) give the target ``role`` (None: remove)?"""

    def check(state: MembershipState) -> str | None:
        if by is not None:
            if state.status != "active":
                return "organisation_suspended"
            allowed = grantable(state.granter_role or "")
            if not allowed:
                return "not_allowed"
            if any(r is not None and r not in allowed for r in (role, state.target_role)):
                return "owner_only"
        losing_owner = state.target_role == "owner" and state.target_usable and role != "owner"
        if losing_owner and state.other_owners == 0:
            return "last_owner"
        return None

    return check


class Organisations:
    """Create organisations, grant and remove roles, invite people, and say who acts for whom."""

    def __init__(
        self,
        repository: OrganisationRepository,
        accounts: AccountService,
        mail: MailSender,
        clock: Clock,
        audit: AuditLog,
        *,
        issuer: str,
        renderer: MailRenderer,
    ) -> None:
        self._repository = repository
        self._accounts = accounts
        self._mail = mail
        self._clock = clock
        self._audit = audit
        self._issuer = issuer.rstrip("/")
        self._renderer = renderer

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    # -- organisations --------------------------------------------------------------------------

    def create(self, *, registration_number: str, name: str, name_ar: str | None = None, actor: str) -> Org:
        """Register an organisation (active). Conflict when the number is taken."""
        number = registration_number.strip().upper()
        if not _NUMBER.fullmatch(number):
            raise InvalidInput("a registration number is 3-32 letters, digits or hyphens")
        name = name.strip()
        if not name or len(name) > 300 or _CONTROL.search(name):
            raise InvalidInput("an organisation needs a name (at most 300 characters, no control characters)")
        name_ar = (name_ar or "").strip() or None
        if name_ar is not None and (len(name_ar) > 300 or _CONTROL.search(name_ar)):
            raise InvalidInput("the Arabic name is at most 300 characters, with no control characters")
        now = self._now()
        row = self._repository.add(
            Organisation(
                id=str(uuid.uuid4()),
                registration_number=number,
                name=name,
                name_ar=name_ar,
                status="active",
                created_at=now,
                updated_at=now,
            )
        )
        self._audit.record(
            AuditEvent.ORGANISATION_CREATED,
            actor=actor,
            detail={"organisation": row.id, "registration_number": number},
        )
        return _org(row)

    def get(self, org_id: str) -> Org:
        """The organisation with this id; NotFound otherwise."""
        row = self._repository.by_id(org_id) if is_identifier(org_id) else None
        if row is None:
            raise NotFound("no such organisation")
        return _org(row)

    def find(self, ref: str) -> Org | None:
        """The organisation whose id or registration number is ``ref``, or None."""
        ref = ref.strip()
        if not is_identifier(ref):
            return None
        row = self._repository.by_id(ref) or self._repository.by_number(ref.upper())
        return None if row is None else _org(row)

    def list(self) -> list[Org]:
        """Every organisation, by name."""
        return [_org(row) for row in self._repository.list()]

    def suspend(self, org_id: str, *, actor: str) -> Org:
        """Stop everyone acting for the organisation (their roles are kept)."""
        return self._set_status(org_id, "active", "suspended", AuditEvent.ORGANISATION_SUSPENDED, actor)

    def reactivate(self, org_id: str, *, actor: str) -> Org:
        """Let people act for a suspended organisation again."""
        return self._set_status(org_id, "suspended", "active", AuditEvent.ORGANISATION_REACTIVATED, actor)

    def _set_status(self, org_id: str, old: str, new: str, event: AuditEvent, actor: str) -> Org:
        org = self.get(org_id)
        if self._repository.set_status(org.id, old=old, new=new, now=self._now()):
            self._audit.record(event, actor=actor, detail={"organisation": org.id})
        return self.get(org.id)

    # -- roles ----------------------------------------------------------------------------------

    def grant(
        self,
        org_id: str,
        account_id: str,
        role: str,
        *,
        by: str | None,
        operator: str | None = None,
        expires_at: datetime | None = None,
        ip: str | None = None,
    ) -> Member:
        """Give a person a role in the organisation, or change their role or its expiry.

        ``by`` is the granting account (an unexpired owner or signatory of the active
        organisation; only an owner touches the owner role); ``operator`` names an operator (the
        command line), whose grants are not checked. NotAllowed (audited) when refused.
        """
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}", code="bad_role")
        expires_at = self._future(expires_at)
        actor = self._actor(by, operator)
        org = self.get(org_id)
        if not is_identifier(account_id):
            raise NotFound("no such account")
        person = self._accounts.get(account_id)
        outcome = self._repository.grant(
            org.id,
            person.id,
            Grant(role, actor, expires_at),
            granter_id=by,
            now=self._now(),
            check=_rule(role, by=by),
        )
        if isinstance(outcome, str):
            self._refuse(outcome, "grant", org.id, person.id, actor=actor, role=role, ip=ip)
        self._audit.record(
            AuditEvent.MEMBERSHIP_GRANTED,
            actor=actor,
            subject=person.id,
            ip=ip,
            detail={
                "organisation": org.id,
                "role": role,
                "previous_role": outcome.target_role,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
        return self._one_member(org.id, person.id)

    def remove(
        self,
        org_id: str,
        account_id: str,
        *,
        by: str | None,
        operator: str | None = None,
        ip: str | None = None,
    ) -> None:
        """Take a person's role away (never the organisation's last owner). NotAllowed when refused."""
        actor = self._actor(by, operator)
        org = self.get(org_id)
        if not is_identifier(account_id):
            raise NotFound(REFUSALS["not_member"], code="not_member")
        outcome = self._repository.remove(
            org.id, account_id, granter_id=by, now=self._now(), check=_rule(None, by=by)
        )
        if isinstance(outcome, str):
            self._refuse(outcome, "remove", org.id, account_id, actor=actor, role=None, ip=ip)
        self._audit.record(
            AuditEvent.MEMBERSHIP_REMOVED,
            actor=actor,
            subject=account_id,
            ip=ip,
            detail={"organisation": org.id, "role": outcome.target_role},
        )

    def members(self, org_id: str) -> builtins.list[Member]:
        """Everyone holding a role in the organisation (expired roles too): owners first."""
        org = self.get(org_id)
        members = [_member(*row) for row in self._repository.members(org.id)]
        return sorted(
            members, key=lambda m: (ROLES.index(m.role) if m.role in ROLES else len(ROLES), m.username)
        )

    def memberships_of(self, account_id: str) -> builtins.list[Acting]:
        """The organisations the person may act for now (active, role not expired), by name."""
        return [
            Acting(_org(org), membership.role, membership.expires_at)
            for membership, org in self._repository.usable_of(account_id, self._now())
        ]

    def acting(self, account_id: str, ref: str) -> Acting | None:
        """The person's usable role in the organisation named by id or registration number."""
        org = self.find(ref)
        if org is None:
            return None
        return next((a for a in self.memberships_of(account_id) if a.organisation.id == org.id), None)

    # -- invitations ----------------------------------------------------------------------------

    def invite(
        self,
        org_id: str,
        email: str,
        role: str,
        *,
        by: str,
        expires_at: datetime | None = None,
        locale: str = "ar",
        ip: str | None = None,
    ) -> None:
        """Mail ``email`` a link that gives whoever opens it ``role`` (with the same rights as a
        grant, checked again on acceptance). The code is in the mail only, never stored or logged."""
        email = email.strip()
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}", code="bad_role")
        if len(email) > 320 or not _EMAIL.fullmatch(email):
            raise InvalidInput("email is not a valid address", code="bad_email")
        expires_at = self._future(expires_at)
        org = self.get(org_id)
        state = self._repository.state(org.id, None, granter_id=by, now=self._now())
        refusal = MISSING if state is None else _rule(role, by=by)(state)
        if refusal is not None:
            self._refuse(refusal, "invite", org.id, None, actor=by, role=role, ip=ip)
        code = secrets.token_urlsafe(24)
        now = self._now()
        invitation = Invitation(
            id=str(uuid.uuid4()),
            organisation_id=org.id,
            email=email,
            role=role,
            invited_by=by,
            code_hash=code_hash(code),
            membership_expires_at=expires_at,
            created_at=now,
            expires_at=now + INVITATION_TTL,
        )
        self._repository.add_invitation(invitation)
        self._mail.send(self._invitation_mail(org, invitation, code, locale))
        self._audit.record(
            AuditEvent.INVITATION_SENT,
            actor=by,
            ip=ip,
            detail={"organisation": org.id, "invitation": invitation.id, "role": role, "email": email},
        )

    def invitation(self, code: str) -> InvitationView | None:
        """What a still-valid invitation offers, or None (unknown, used or expired)."""
        if not _CODE.fullmatch(code):
            return None
        row = self._repository.invitation(code_hash(code))
        if row is None or row.accepted_at is not None or row.expires_at <= self._now():
            return None
        org = self._repository.by_id(row.organisation_id)
        if org is None:
            return None
        return InvitationView(
            _org(org), row.role, row.email, row.expires_at, row.membership_expires_at, row.claimed_by
        )

    def accept(self, code: str, account_id: str, *, ip: str | None = None) -> Member | AwaitingInviter:
        """Take up an invitation (once, before it expires, while the organisation is active and
        its inviter still may grant the role). NotFound for an unknown, used or expired code.

        An account whose verified email is the invited address gets the role (a Member). Any
        other account only claims the invitation, and its inviter is mailed to confirm or decline
        it: AwaitingInviter. Conflict ``already_claimed`` while another account's claim waits."""
        person = self._accounts.get(account_id)
        if not _CODE.fullmatch(code):
            self._refuse_invitation("unknown", None, person.id, ip=ip)
        found = self._repository.invitation(code_hash(code))
        if found is not None and not addressed_to(person, found.email):
            return self._claim(code, person, ip=ip)
        outcome, invitation = self._repository.accept(
            code_hash(code),
            person.id,
            now=self._now(),
            check=lambda row: _rule(row.role, by=row.invited_by),
        )
        if outcome != "accepted" or invitation is None:
            self._refuse_invitation(outcome, invitation, person.id, ip=ip)
        self._accepted(invitation, person.id, confirmed_by=None, ip=ip)
        return self._one_member(invitation.organisation_id, person.id)

    def claims(self, inviter_id: str) -> builtins.list[Claim]:
        """The invitations ``inviter_id`` sent that an account asks to take up (unused, unexpired),
        oldest first: each waits for the inviter to confirm or decline that account."""
        return [
            Claim(
                invitation.id,
                _org(org),
                invitation.role,
                invitation.email,
                str(invitation.claimed_by),
                username,
                name,
                invitation.claimed_at or invitation.created_at,
                invitation.membership_expires_at,
            )
            for invitation, org, username, name in self._repository.claims_for(inviter_id, self._now())
        ]

    def confirm(self, invitation_id: str, account_id: str, *, by: str, ip: str | None = None) -> Member:
        """The inviter ``by`` lets ``account_id``, which claimed the invitation, take it up: the
        role is granted now, with the same checks as an acceptance (unused, unexpired, the
        organisation active, the inviter still may grant the role). NotFound when ``by`` did not
        send it or that account holds no claim on it; NotAllowed when the rules refuse."""
        if not (is_identifier(invitation_id) and is_identifier(account_id)):
            self._refuse_invitation("not_claimed", None, None, actor=by, ip=ip)
        outcome, invitation = self._repository.confirm(
            invitation_id,
            account_id,
            by=by,
            now=self._now(),
            check=lambda row: _rule(row.role, by=row.invited_by),
        )
        if outcome != "accepted" or invitation is None:
            self._refuse_invitation(outcome, invitation, account_id, actor=by, ip=ip)
        self._accepted(invitation, account_id, confirmed_by=by, ip=ip)
        return self._one_member(invitation.organisation_id, account_id)

    def decline(self, invitation_id: str, account_id: str, *, by: str, ip: str | None = None) -> None:
        """The inviter ``by`` turns down the claim ``account_id`` holds: nothing is granted and
        the link can be taken up again (by the invited address's owner, or claimed anew).
        NotFound when there is no such claim on an invitation ``by`` sent."""
        if not (is_identifier(invitation_id) and is_identifier(account_id)):
            self._refuse_invitation("not_claimed", None, None, actor=by, ip=ip)
        declined = self._repository.decline(invitation_id, account_id, by=by)
        if declined is None:
            self._refuse_invitation("not_claimed", None, account_id, actor=by, ip=ip)
        self._audit.record(
            AuditEvent.INVITATION_DECLINED,
            actor=by,
            subject=account_id,
            ip=ip,
            detail={
                "organisation": declined.organisation_id,
                "invitation": declined.id,
                "role": declined.role,
            },
        )

    def _claim(self, code: str, person: Person, *, ip: str | None) -> AwaitingInviter:
        outcome, invitation = self._repository.claim(
            code_hash(code),
            person.id,
            now=self._now(),
            check=lambda row: _rule(row.role, by=row.invited_by),
        )
        if outcome not in ("claimed", "pending") or invitation is None:
            self._refuse_invitation(outcome, invitation, person.id, ip=ip)
        org = self.get(invitation.organisation_id)
        if outcome == "claimed":
            self._audit.record(
                AuditEvent.INVITATION_CLAIMED,
                actor=person.id,
                subject=person.id,
                ip=ip,
                detail={"organisation": org.id, "invitation": invitation.id, "role": invitation.role},
            )
            self._tell_inviter(org, invitation, person)
        return AwaitingInviter(org, invitation.role)

    def _accepted(
        self, invitation: Invitation, account_id: str, *, confirmed_by: str | None, ip: str | None
    ) -> None:
        org_id = invitation.organisation_id
        detail: dict[str, object] = {
            "organisation": org_id,
            "invitation": invitation.id,
            "role": invitation.role,
        }
        if confirmed_by is not None:
            detail["confirmed_by"] = confirmed_by
        self._audit.record(
            AuditEvent.INVITATION_ACCEPTED,
            actor=invitation.invited_by,
            subject=account_id,
            ip=ip,
            detail=detail,
        )
        self._audit.record(
            AuditEvent.MEMBERSHIP_GRANTED,
            actor=invitation.invited_by,
            subject=account_id,
            ip=ip,
            detail={
                "organisation": org_id,
                "role": invitation.role,
                "invitation": invitation.id,
                "expires_at": (
                    invitation.membership_expires_at.isoformat() if invitation.membership_expires_at else None
                ),
            },
        )

    # -- helpers --------------------------------------------------------------------------------

    def _future(self, expires_at: datetime | None) -> datetime | None:
        if expires_at is None:
            return None
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        if expires_at <= self._now():
            raise InvalidInput("the expiry must be in the future", code="past_expiry")
        return expires_at

    @staticmethod
    def _actor(by: str | None, operator: str | None) -> str:
        if by is not None:
            return by
        if operator:
            return f"operator:{operator}"[:64]
        raise InvalidInput("a change of role needs the account that makes it or an operator")

    def _refuse(
        self,
        reason: str,
        action: str,
        org_id: str,
        account_id: str | None,
        *,
        actor: str,
        role: str | None,
        ip: str | None,
    ) -> NoReturn:
        if reason == MISSING:
            raise NotFound("no such organisation")
        self._audit.record(
            AuditEvent.MEMBERSHIP_REFUSED,
            actor=actor,
            subject=account_id,
            ip=ip,
            detail={"organisation": org_id, "action": action, "role": role, "reason": reason},
        )
        if reason == "not_member":
            raise NotFound(REFUSALS[reason], code=reason)
        raise NotAllowed(_refusal_message(reason), code=reason)

    def _refuse_invitation(
        self,
        outcome: str,
        invitation: Invitation | None,
        account_id: str | None,
        *,
        actor: str | None = None,
        ip: str | None,
    ) -> NoReturn:
        if outcome in ("not_allowed", "owner_only"):
            outcome = "inviter_not_allowed"
        self._audit.record(
            AuditEvent.INVITATION_REFUSED,
            actor=actor,
            subject=account_id,
            ip=ip,
            detail={
                "reason": outcome,
                "organisation": invitation.organisation_id if invitation else None,
                "invitation": invitation.id if invitation else None,
            },
        )
        if outcome in ("not_inviter", "not_claimed") or (
            actor is not None and outcome in ("unknown", "used", "expired", MISSING)
        ):
            # An inviter answering a claim is told alike whatever became of it; and whether an
            # invitation someone else sent exists is none of the caller's business.
            raise NotFound("nobody is waiting for your confirmation of that invitation", code="no_claim")
        if outcome in ("unknown", "used", "expired", MISSING):
            raise NotFound("this invitation is not valid: it may have expired or been used already")
        if outcome == "already_claimed":
            raise Conflict(REFUSALS[outcome], code=outcome)
        raise NotAllowed(_refusal_message(outcome), code=outcome)

    def _one_member(self, org_id: str, account_id: str) -> Member:
        return next(m for m in self.members(org_id) if m.account_id == account_id)

    def _invitation_mail(self, org: Org, invitation: Invitation, code: str, locale: str) -> Mail:
        role_ar, role_en = _ROLE_WORDS[invitation.role]
        rendered = self._renderer.render(
            "invitation",
            locale,
            name_en=org.name,
            name_ar=org.name_ar or org.name,
            role_en=role_en,
            role_ar=role_ar,
            registration_number=org.registration_number,
            until=invitation.expires_at.strftime("%Y-%m-%d"),
            link=f"{self._issuer}/account/invitation?code={code}",
        )
        return Mail(to=invitation.email, subject=rendered.subject, body=rendered.body)

    def _tell_inviter(self, org: Org, invitation: Invitation, claimant: Person) -> None:
        """Mail the inviter that ``claimant`` asks to take up the invitation (when the inviter has
        an address). The claim stands whether or not the mail can be queued: the inviter also
        sees it on the organisations page."""
        inviter = self._accounts.find(invitation.invited_by)
        if inviter is None or not inviter.email:
            return
        role_ar, role_en = _ROLE_WORDS[invitation.role]
        name_en = inviter.name or inviter.username
        try:
            rendered = self._renderer.render(
                "invitation_claimed",
                inviter.locale,
                name_en=name_en,
                name_ar=inviter.name_ar or name_en,
                org_en=org.name,
                org_ar=org.name_ar or org.name,
                role_en=role_en,
                role_ar=role_ar,
                registration_number=org.registration_number,
                invited=invitation.email,
                username=claimant.username,
                claimant_en=claimant.name or claimant.username,
                claimant_ar=claimant.name_ar or claimant.name or claimant.username,
                until=invitation.expires_at.strftime("%Y-%m-%d"),
                link=f"{self._issuer}/account/organisations",
            )
            self._mail.send(Mail(to=inviter.email, subject=rendered.subject, body=rendered.body))
        except (HawiyaError, OSError):
            log.warning("the claim on invitation %s could not be mailed to its inviter", invitation.id)


def _refusal_message(reason: str) -> str:
    return REFUSALS.get(reason, "that change is not allowed")
