"""Organisations and the roles people hold in them (idp.accounts.organisations): who may grant
what, an organisation always keeps an owner, expired roles and suspended organisations cannot be
acted for, invitations work once and only for seven days and go out by mail, only the verified
owner of the invited address takes one up at once (anyone else holding the link waits for the
inviter to confirm or decline them), and the audit trail holds every grant and every refusal."""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import TypeVar

import pytest

from idp.accounts.organisations import ROLES, AwaitingInviter, Member, Org, Organisations
from idp.clock import FrozenClock
from idp.errors import Conflict, InvalidInput, NotAllowed, NotFound
from idp.registry import Registry
from idp.storage.models import Invitation
from idp.storage.repositories.audit import AuditRepository
from tests.conftest import BOTH_BACKENDS
from tests.support import outbox
from tests.support.audit import audit_events
from tests.support.identity import national_id

T = TypeVar("T")
_LINK = re.compile(r"(https?://\S+/account/invitation\?code=([A-Za-z0-9_-]+))")


#: Where Team.target reads mail (verified): the address ``_invite`` invites by default.
INVITED = "new.hire@example.org"


def _person(
    registry: Registry, username: str, seed: int, email: str | None = None, *, verified: bool = True
) -> str:
    # No password: these people never sign in here, and hashing one costs more than the test.
    return registry.accounts.create(
        account_type="citizen",
        username=username,
        password=None,
        national_id=national_id(100 + seed),
        name=username.title(),
        email=email,
        email_verified=verified and email is not None,
    ).id


class Team:
    """One organisation with an owner, a signatory, an employee, an outsider (no role, no
    address) and a target (no role, the verified owner of INVITED)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.orgs: Organisations = registry.organisations
        self.org: Org = self.orgs.create(
            registration_number="CR-100200", name="Gulf Trading", name_ar="الخليج للتجارة", actor="test"
        )
        self.owner = _person(registry, "owner", 1, "owner@gulf.example")
        self.signatory = _person(registry, "signatory", 2)
        self.employee = _person(registry, "employee", 3)
        self.outsider = _person(registry, "outsider", 4)
        self.target = _person(registry, "target", 5, INVITED)
        for account, role in (
            (self.owner, "owner"),
            (self.signatory, "signatory"),
            (self.employee, "employee"),
        ):
            self.orgs.grant(self.org.id, account, role, by=None, operator="test")

    def role_of(self, account_id: str) -> str | None:
        """The account's role in the organisation (expired or not), or None."""
        return next((m.role for m in self.orgs.members(self.org.id) if m.account_id == account_id), None)


@pytest.fixture
def team(registry: Registry) -> Team:
    return Team(registry)


def _outbox(registry: Registry) -> list[EmailMessage]:
    return outbox.messages(registry.settings.outbox_path)


def _body(message: EmailMessage) -> str:
    return str(message.get_content())


def _invite(team: Team, address: str = INVITED, role: str = "employee", **kwargs: object) -> str:
    """Invite ``address``; the code from the link in the mail it received."""
    before = len(_outbox(team.registry))
    team.orgs.invite(team.org.id, address, role, by=team.owner, **kwargs)  # type: ignore[arg-type]
    messages = _outbox(team.registry)
    assert len(messages) == before + 1
    found = _LINK.search(_body(messages[-1]))
    assert found, "the mail has no invitation link"
    return found.group(2)


def _actors(registry: Registry, event: str) -> list[str | None]:
    """Who did each recorded ``event``, oldest first."""
    return [row.actor for row in reversed(AuditRepository(registry.db).recent(event=event))]


def together(*attempts: Callable[[], T]) -> list[T | Exception]:
    """Run each attempt in its own thread, all released at once; each result or the error raised."""
    barrier = threading.Barrier(len(attempts))

    def run(attempt: Callable[[], T]) -> T | Exception:
        barrier.wait(timeout=10)
        try:
            return attempt()
        except Exception as error:  # the loser's refusal is the point of the race
            return error

    with ThreadPoolExecutor(len(attempts)) as pool:
        return [future.result(timeout=60) for future in [pool.submit(run, a) for a in attempts]]


# -- organisations --------------------------------------------------------------------------------


def test_create_find_and_list(registry: Registry) -> None:
    orgs = registry.organisations
    made = orgs.create(registration_number=" cr-7701 ", name=" Dar Co ", actor="test")
    assert (made.registration_number, made.name, made.name_ar, made.status) == (
        "CR-7701",
        "Dar Co",
        None,
        "active",
    )
    assert made.active
    assert orgs.find(made.id) == made == orgs.find("cr-7701") == orgs.get(made.id)
    assert orgs.find("CR-0000") is None
    with pytest.raises(NotFound):
        orgs.get("no-such-id")
    orgs.create(registration_number="AB-1", name="Alpha", name_ar="ألفا", actor="test")
    assert [o.name for o in orgs.list()] == ["Alpha", "Dar Co"]
    event = audit_events(registry, "organisation.created")[-1]
    assert event["detail"] == {"organisation": made.id, "registration_number": "CR-7701"}


def test_create_refuses_bad_fields(registry: Registry) -> None:
    for number, name, says in (
        ("ab", "X", "registration number"),
        ("a" * 33, "X", "registration number"),
        ("CR 1", "X", "registration number"),
        ("CR_1", "X", "registration number"),
        ("CR-1", "  ", "name"),
        ("CR-1", "x" * 301, "name"),
    ):
        with pytest.raises(InvalidInput, match=says):
            registry.organisations.create(registration_number=number, name=name, actor="test")
    with pytest.raises(InvalidInput, match="Arabic name"):
        registry.organisations.create(registration_number="CR-1", name="X", name_ar="x" * 301, actor="test")
    assert registry.organisations.list() == []


def test_a_registration_number_is_unique_whatever_its_case(registry: Registry) -> None:
    registry.organisations.create(registration_number="CR-1", name="First", actor="test")
    with pytest.raises(Conflict):
        registry.organisations.create(registration_number="cr-1", name="Second", actor="test")
    assert [o.name for o in registry.organisations.list()] == ["First"]


# -- who may grant what ---------------------------------------------------------------------------

#: granter -> role granted -> None (allowed) or the refusal's code.
MATRIX = {
    "owner": {"owner": None, "signatory": None, "employee": None},
    "signatory": {"owner": "owner_only", "signatory": None, "employee": None},
    "employee": {"owner": "not_allowed", "signatory": "not_allowed", "employee": "not_allowed"},
    "outsider": {"owner": "not_allowed", "signatory": "not_allowed", "employee": "not_allowed"},
}


@pytest.mark.parametrize("granter", sorted(MATRIX))
def test_the_rights_matrix(team: Team, registry: Registry, granter: str) -> None:
    by = getattr(team, granter)
    for role in ROLES:
        expected = MATRIX[granter][role]
        before = team.role_of(team.target)
        if expected is None:
            member = team.orgs.grant(team.org.id, team.target, role, by=by, ip="192.0.2.1")
            assert (member.role, member.granted_by, member.username) == (role, by, "target")
            assert team.role_of(team.target) == role
            event = audit_events(registry, "membership.granted")[0]
            assert event["subject"] == team.target
            assert event["detail"]["role"] == role and event["detail"]["organisation"] == team.org.id
        else:
            with pytest.raises(NotAllowed) as refused:
                team.orgs.grant(team.org.id, team.target, role, by=by)
            assert refused.value.code == expected
            assert team.role_of(team.target) == before
            event = audit_events(registry, "membership.refused")[0]
            assert event["subject"] == team.target
            assert event["detail"] == {
                "organisation": team.org.id,
                "action": "grant",
                "role": role,
                "reason": expected,
            }
        if team.role_of(team.target) == "owner":  # start the next role from no role again
            team.orgs.remove(team.org.id, team.target, by=team.owner)


def test_a_signatory_cannot_touch_an_owner(team: Team) -> None:
    second_owner = _person(team.registry, "second", 6)
    team.orgs.grant(team.org.id, second_owner, "owner", by=team.owner)
    for attempt in (
        lambda: team.orgs.grant(team.org.id, second_owner, "employee", by=team.signatory),
        lambda: team.orgs.remove(team.org.id, second_owner, by=team.signatory),
    ):
        with pytest.raises(NotAllowed) as refused:
            attempt()
        assert refused.value.code == "owner_only"
    assert team.role_of(second_owner) == "owner"
    # ...but may remove an employee, and a signatory may step down to employee.
    team.orgs.remove(team.org.id, team.employee, by=team.signatory)
    team.orgs.grant(team.org.id, team.signatory, "employee", by=team.signatory)
    assert team.role_of(team.employee) is None and team.role_of(team.signatory) == "employee"


def test_regranting_changes_the_role_and_expiry_in_place(team: Team, clock: FrozenClock) -> None:
    until = datetime.fromtimestamp(clock.now(), UTC) + timedelta(days=30)
    team.orgs.grant(team.org.id, team.target, "employee", by=team.owner)
    member = team.orgs.grant(team.org.id, team.target, "signatory", by=team.owner, expires_at=until)
    assert (member.role, member.expires_at) == ("signatory", until)
    assert [m.username for m in team.orgs.members(team.org.id)].count("target") == 1
    assert team.orgs.grant(team.org.id, team.target, "signatory", by=team.owner).expires_at is None


def test_bad_grants_are_refused_before_anything_changes(team: Team, clock: FrozenClock) -> None:
    past = datetime.fromtimestamp(clock.now(), UTC) - timedelta(seconds=1)
    with pytest.raises(InvalidInput, match="future"):
        team.orgs.grant(team.org.id, team.target, "employee", by=team.owner, expires_at=past)
    with pytest.raises(InvalidInput, match="role"):
        team.orgs.grant(team.org.id, team.target, "director", by=team.owner)
    with pytest.raises(NotFound):
        team.orgs.grant(team.org.id, "no-such-account", "employee", by=team.owner)
    with pytest.raises(NotFound):
        team.orgs.grant("no-such-org", team.target, "employee", by=team.owner)
    with pytest.raises(NotFound):
        team.orgs.remove(team.org.id, team.target, by=team.owner)  # holds no role
    assert team.role_of(team.target) is None


def test_members_lists_owners_first_with_who_granted(team: Team) -> None:
    members = team.orgs.members(team.org.id)
    assert [(m.username, m.role) for m in members] == [
        ("owner", "owner"),
        ("signatory", "signatory"),
        ("employee", "employee"),
    ]
    assert {m.granted_by for m in members} == {"operator:test"}


# -- the last owner -------------------------------------------------------------------------------


@BOTH_BACKENDS
def test_nobody_removes_or_demotes_the_last_owner(team: Team, registry: Registry, clock: FrozenClock) -> None:
    for attempt in (
        lambda: team.orgs.remove(team.org.id, team.owner, by=team.owner),
        lambda: team.orgs.remove(team.org.id, team.owner, by=None, operator="cli"),
        lambda: team.orgs.grant(team.org.id, team.owner, "signatory", by=team.owner),
        lambda: team.orgs.grant(team.org.id, team.owner, "employee", by=None, operator="cli"),
    ):
        with pytest.raises(NotAllowed) as refused:
            attempt()
        assert refused.value.code == "last_owner"
    assert team.role_of(team.owner) == "owner"
    assert [e["detail"]["reason"] for e in audit_events(registry, "membership.refused")] == ["last_owner"] * 4
    # An owner whose role has lapsed does not count as the one that stays.
    soon = datetime.fromtimestamp(clock.now(), UTC) + timedelta(hours=1)
    team.orgs.grant(team.org.id, team.target, "owner", by=team.owner, expires_at=soon)
    clock.advance(3601)
    with pytest.raises(NotAllowed):
        team.orgs.remove(team.org.id, team.owner, by=team.owner)
    # With a second, live owner the first may go.
    team.orgs.grant(team.org.id, team.target, "owner", by=team.owner)
    team.orgs.remove(team.org.id, team.owner, by=team.target, ip="192.0.2.7")
    assert team.role_of(team.owner) is None
    removed = audit_events(registry, "membership.removed")[0]
    assert removed["subject"] == team.owner
    assert removed["detail"] == {"organisation": team.org.id, "role": "owner"}


@BOTH_BACKENDS
def test_two_owners_removing_each_other_at_once_leave_one(team: Team) -> None:
    for round_ in range(5):
        other = _person(team.registry, f"partner{round_}", 10 + round_)
        team.orgs.grant(team.org.id, other, "owner", by=team.owner)
        owner = team.owner
        results = together(
            functools.partial(team.orgs.remove, team.org.id, other, by=owner),
            functools.partial(team.orgs.remove, team.org.id, owner, by=other),
        )
        refused = [r for r in results if isinstance(r, NotAllowed)]
        assert len(refused) == 1, results
        owners = [m.account_id for m in team.orgs.members(team.org.id) if m.role == "owner"]
        assert len(owners) == 1, f"round {round_}"
        team.owner = owners[0]


# -- acting on behalf: expiry and suspension ---------------------------------------------------------


@BOTH_BACKENDS
def test_expired_roles_and_suspended_organisations_are_not_usable(
    team: Team, registry: Registry, clock: FrozenClock
) -> None:
    other = team.orgs.create(registration_number="AA-1", name="Aardvark Ltd", actor="test")
    team.orgs.grant(other.id, team.signatory, "owner", by=None, operator="test")
    an_hour = datetime.fromtimestamp(clock.now(), UTC) + timedelta(hours=1)
    team.orgs.grant(team.org.id, team.target, "employee", by=team.signatory, expires_at=an_hour)

    usable = team.orgs.memberships_of(team.signatory)
    assert [(a.organisation.name, a.role) for a in usable] == [
        ("Aardvark Ltd", "owner"),
        ("Gulf Trading", "signatory"),
    ]
    acting = team.orgs.acting(team.target, "cr-100200")
    assert acting is not None and (acting.role, acting.expires_at) == ("employee", an_hour)
    assert team.orgs.acting(team.target, team.org.id) == acting
    assert team.orgs.acting(team.target, "AA-1") is None
    assert team.orgs.acting(team.target, "no-such-org") is None

    clock.advance(3600)
    assert team.orgs.memberships_of(team.target) == []
    assert team.orgs.acting(team.target, "CR-100200") is None
    assert team.role_of(team.target) == "employee"  # still listed, as expired
    (expired,) = [m for m in team.orgs.members(team.org.id) if m.account_id == team.target]
    assert expired.expired(datetime.fromtimestamp(clock.now(), UTC))

    # An expired signatory grants nothing.
    team.orgs.grant(
        team.org.id, team.target, "signatory", by=team.owner, expires_at=an_hour + timedelta(hours=1)
    )
    clock.advance(3600)
    with pytest.raises(NotAllowed) as refused:
        team.orgs.grant(team.org.id, team.outsider, "employee", by=team.target)
    assert refused.value.code == "not_allowed"

    suspended = team.orgs.suspend(team.org.id, actor="cli")
    assert suspended.status == "suspended" and not suspended.active
    assert team.orgs.suspend(team.org.id, actor="cli") == suspended  # again: no change, no event
    assert [a.organisation.name for a in team.orgs.memberships_of(team.signatory)] == ["Aardvark Ltd"]
    assert team.orgs.acting(team.owner, "CR-100200") is None
    with pytest.raises(NotAllowed) as refused:
        team.orgs.grant(team.org.id, team.outsider, "employee", by=team.owner)
    assert refused.value.code == "organisation_suspended"
    team.orgs.grant(team.org.id, team.outsider, "employee", by=None, operator="cli")  # operators may

    assert team.orgs.reactivate(team.org.id, actor="cli").active
    assert team.orgs.acting(team.owner, "CR-100200") is not None
    assert len(audit_events(registry, "organisation.suspended")) == 1
    assert len(audit_events(registry, "organisation.reactivated")) == 1


# -- invitations ----------------------------------------------------------------------------------


@BOTH_BACKENDS
def test_an_invitation_is_mailed_and_works_once(
    team: Team, registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code = _invite(team, " New.Hire@Example.org ", "signatory", locale="en", ip="192.0.2.9")
    message = _outbox(registry)[-1]
    assert message["To"] == "New.Hire@Example.org"
    assert "Gulf Trading" in message["Subject"] and "الخليج للتجارة" in message["Subject"]
    body = _body(message)
    assert f"{registry.settings.issuer}/account/invitation?code={code}" in body
    assert "authorised signatory" in body and "مفوّض بالتوقيع" in body
    assert body.index("You are invited") < body.index("تمت دعوتك")  # English first, as asked
    # Only the code's hash is stored; the code is in the mail and nowhere else.
    with registry.db.transaction() as s:
        stored = s.query(Invitation).one()
        assert stored.code_hash == hashlib.sha256(code.encode()).hexdigest()
        assert code not in (stored.id, stored.code_hash)
    sent = audit_events(registry, "invitation.sent")[0]
    assert sent["detail"]["role"] == "signatory" and code not in str(sent)

    view = team.orgs.invitation(code)
    assert view is not None and (view.organisation.id, view.role) == (team.org.id, "signatory")
    member = team.orgs.accept(code, team.target, ip="192.0.2.10")  # the address matches, whatever its case
    assert isinstance(member, Member) and (member.role, member.granted_by) == ("signatory", team.owner)
    assert team.orgs.acting(team.target, "CR-100200") is not None
    assert team.orgs.invitation(code) is None
    with pytest.raises(NotFound):
        team.orgs.accept(code, team.outsider)
    assert team.role_of(team.outsider) is None
    reasons = [e["detail"]["reason"] for e in audit_events(registry, "invitation.refused")]
    assert reasons == ["used"]
    accepted = audit_events(registry, "invitation.accepted")[0]
    assert accepted["subject"] == team.target
    granted = audit_events(registry, "membership.granted")[0]
    assert granted["subject"] == team.target and granted["detail"]["role"] == "signatory"
    assert code not in caplog.text
    for event in ("invitation.sent", "invitation.accepted", "invitation.refused", "membership.granted"):
        assert all(code not in str(e) for e in audit_events(registry, event))


@BOTH_BACKENDS
def test_concurrent_acceptances_of_one_invitation_have_one_winner(team: Team) -> None:
    for round_ in range(5):
        address = f"race{round_}@example.org"
        code = _invite(team, address)
        # Two accounts with the same verified address (nothing makes addresses unique).
        first, second = (
            _person(team.registry, f"racer{round_}{n}", 20 + 2 * round_ + n, address) for n in (0, 1)
        )
        results = together(
            functools.partial(team.orgs.accept, code, first),
            functools.partial(team.orgs.accept, code, second),
        )
        assert sum(isinstance(r, NotFound) for r in results) == 1, results
        assert [team.role_of(first), team.role_of(second)].count("employee") == 1


def test_an_invitation_lapses_after_seven_days(team: Team, registry: Registry, clock: FrozenClock) -> None:
    code = _invite(team)
    clock.advance(7 * 24 * 3600)
    assert team.orgs.invitation(code) is None
    with pytest.raises(NotFound):
        team.orgs.accept(code, team.target)
    assert team.role_of(team.target) is None
    assert audit_events(registry, "invitation.refused")[0]["detail"]["reason"] == "expired"


def test_unknown_codes_are_refused_and_audited(team: Team, registry: Registry) -> None:
    for code in ("x" * 32, "short", "../../etc/passwd", "é" * 32):
        assert team.orgs.invitation(code) is None
        with pytest.raises(NotFound):
            team.orgs.accept(code, team.target)
    assert [e["detail"]["reason"] for e in audit_events(registry, "invitation.refused")] == ["unknown"] * 4


def test_acceptance_needs_an_active_organisation_and_an_inviter_who_still_may(
    team: Team, registry: Registry
) -> None:
    code = _invite(team, role="employee")
    team.orgs.suspend(team.org.id, actor="cli")
    with pytest.raises(NotAllowed) as refused:
        team.orgs.accept(code, team.target)
    assert refused.value.code == "organisation_suspended"
    team.orgs.reactivate(team.org.id, actor="cli")

    team.orgs.invite(team.org.id, INVITED, "employee", by=team.signatory)
    found = _LINK.search(_body(_outbox(registry)[-1]))
    assert found
    team.orgs.remove(team.org.id, team.signatory, by=team.owner)
    with pytest.raises(NotAllowed) as refused:
        team.orgs.accept(found.group(2), team.target)
    assert refused.value.code == "inviter_not_allowed"
    assert team.role_of(team.target) is None
    # The first invitation was not spent by the refusal: it still works.
    accepted = team.orgs.accept(code, team.target)
    assert isinstance(accepted, Member) and accepted.role == "employee"
    reasons = [e["detail"]["reason"] for e in audit_events(registry, "invitation.refused")]
    assert reasons == ["inviter_not_allowed", "organisation_suspended"]


def test_inviting_needs_the_same_rights_as_granting(
    team: Team, registry: Registry, clock: FrozenClock
) -> None:
    for by, role, code in (
        (team.employee, "employee", "not_allowed"),
        (team.signatory, "owner", "owner_only"),
    ):
        with pytest.raises(NotAllowed) as refused:
            team.orgs.invite(team.org.id, "someone@example.org", role, by=by)
        assert refused.value.code == code
    with pytest.raises(InvalidInput, match="email"):
        team.orgs.invite(team.org.id, "not-an-address", "employee", by=team.owner)
    past = datetime.fromtimestamp(clock.now(), UTC)
    with pytest.raises(InvalidInput, match="future"):
        team.orgs.invite(team.org.id, "a@example.org", "employee", by=team.owner, expires_at=past)
    assert _outbox(registry) == []
    assert [e["detail"]["action"] for e in audit_events(registry, "membership.refused")] == [
        "invite",
        "invite",
    ]


def test_an_invited_role_can_carry_an_expiry(team: Team, clock: FrozenClock) -> None:
    until = datetime.fromtimestamp(clock.now(), UTC) + timedelta(days=30)
    code = _invite(team, expires_at=until)
    accepted = team.orgs.accept(code, team.target)
    assert isinstance(accepted, Member) and accepted.expires_at == until
    clock.advance(30 * 24 * 3600)
    assert team.orgs.acting(team.target, team.org.id) is None


def test_every_grant_is_in_the_audit_trail(team: Team, registry: Registry) -> None:
    granted = audit_events(registry, "membership.granted")
    assert [(e["subject"], e["detail"]["role"]) for e in reversed(granted)] == [
        (team.owner, "owner"),
        (team.signatory, "signatory"),
        (team.employee, "employee"),
    ]
    team.orgs.grant(team.org.id, team.employee, "signatory", by=team.owner)
    code = _invite(team)
    team.orgs.accept(code, team.target)
    assert _actors(registry, "membership.granted") == ["operator:test"] * 3 + [team.owner] * 2
    assert _actors(registry, "invitation.accepted") == [team.owner]
    latest = audit_events(registry, "membership.granted")[1]
    assert latest["detail"] == {
        "organisation": team.org.id,
        "role": "signatory",
        "previous_role": "employee",
        "expires_at": None,
    }


# -- a link held by someone other than the invited address --------------------------------------------


def _claimed(team: Team, code: str, account_id: str) -> AwaitingInviter:
    """``account_id`` takes up the invitation and is told to wait for the inviter."""
    taken = team.orgs.accept(code, account_id, ip="192.0.2.20")
    assert isinstance(taken, AwaitingInviter), taken
    assert (taken.organisation.id, taken.role) == (team.org.id, "employee")
    return taken


def _only_invitation_id(registry: Registry) -> str:
    with registry.db.transaction() as s:
        return s.query(Invitation).one().id


@BOTH_BACKENDS
def test_holding_the_code_is_not_enough(team: Team, registry: Registry) -> None:
    code = _invite(team)
    mails = len(_outbox(registry))
    _claimed(team, code, team.outsider)
    assert team.role_of(team.outsider) is None
    assert team.orgs.acting(team.outsider, team.org.id) is None
    assert audit_events(registry, "invitation.accepted") == []
    claimed = audit_events(registry, "invitation.claimed")[0]
    assert claimed["subject"] == team.outsider and _actors(registry, "invitation.claimed") == [team.outsider]
    assert claimed["detail"]["organisation"] == team.org.id and code not in str(claimed)
    # The inviter is told who asks, by username and name, and where to answer; never the code.
    assert len(_outbox(registry)) == mails + 1
    message = _outbox(registry)[-1]
    body = _body(message)
    assert message["To"] == "owner@gulf.example"
    assert "outsider" in body and "Outsider" in body and INVITED in body
    assert f"{registry.settings.issuer}/account/organisations" in body
    assert code not in body and code not in str(message["Subject"])
    assert "Gulf Trading" in body and "الخليج للتجارة" in body
    # Taking it up again changes nothing and mails nobody twice.
    _claimed(team, code, team.outsider)
    assert len(_outbox(registry)) == mails + 1
    assert len(audit_events(registry, "invitation.claimed")) == 1
    (claim,) = team.orgs.claims(team.owner)
    assert (claim.account_id, claim.username, claim.name, claim.email, claim.role) == (
        team.outsider,
        "outsider",
        "Outsider",
        INVITED,
        "employee",
    )
    assert team.orgs.claims(team.signatory) == []  # only the inviter is asked


@pytest.mark.parametrize(
    ("address", "verified"),
    [(INVITED, False), ("someone.else@example.org", True)],
    ids=["the-address-unverified", "another-verified-address"],
)
def test_an_address_that_is_not_verified_or_not_the_invited_one_only_claims(
    team: Team, address: str, verified: bool
) -> None:
    holder = _person(team.registry, "holder", 40, address, verified=verified)
    code = _invite(team)
    _claimed(team, code, holder)
    assert team.role_of(holder) is None


@BOTH_BACKENDS
def test_the_inviter_confirms_the_named_account(team: Team, registry: Registry) -> None:
    until = datetime.fromtimestamp(team.registry.clock.now(), UTC) + timedelta(days=30)
    code = _invite(team, expires_at=until)
    _claimed(team, code, team.outsider)
    (claim,) = team.orgs.claims(team.owner)
    # Nobody but the inviter confirms: not another owner or signatory, not the claimant.
    second_owner = _person(registry, "second", 41)
    team.orgs.grant(team.org.id, second_owner, "owner", by=team.owner)
    for by in (team.signatory, second_owner, team.outsider):
        with pytest.raises(NotFound) as refused:
            team.orgs.confirm(claim.invitation_id, team.outsider, by=by)
        assert refused.value.code == "no_claim"
    assert team.role_of(team.outsider) is None
    # Confirming someone who holds no claim grants nothing either.
    with pytest.raises(NotFound):
        team.orgs.confirm(claim.invitation_id, team.target, by=team.owner)
    assert team.role_of(team.target) is None

    member = team.orgs.confirm(claim.invitation_id, team.outsider, by=team.owner, ip="192.0.2.30")
    assert (member.account_id, member.role, member.granted_by, member.expires_at) == (
        team.outsider,
        "employee",
        team.owner,
        until,
    )
    assert team.orgs.acting(team.outsider, team.org.id) is not None
    accepted = audit_events(registry, "invitation.accepted")[0]
    assert accepted["subject"] == team.outsider and _actors(registry, "invitation.accepted") == [team.owner]
    assert accepted["detail"]["confirmed_by"] == team.owner
    granted = audit_events(registry, "membership.granted")[0]
    assert granted["subject"] == team.outsider and granted["detail"]["invitation"] == claim.invitation_id
    reasons = [e["detail"]["reason"] for e in audit_events(registry, "invitation.refused")]
    assert reasons == ["not_claimed"] + ["not_inviter"] * 3
    # The invitation is spent: the claim is gone, the link is dead, even for the invited address.
    assert team.orgs.claims(team.owner) == []
    assert team.orgs.invitation(code) is None
    with pytest.raises(NotFound):
        team.orgs.accept(code, team.target)
    with pytest.raises(NotFound):
        team.orgs.confirm(claim.invitation_id, team.outsider, by=team.owner)


@BOTH_BACKENDS
def test_a_declined_claim_grants_nothing_and_frees_the_link(team: Team, registry: Registry) -> None:
    code = _invite(team)
    _claimed(team, code, team.outsider)
    # One claim at a time: a second account holding the link is told to wait.
    other = _person(registry, "other", 42)
    with pytest.raises(Conflict) as refused:
        team.orgs.accept(code, other)
    assert refused.value.code == "already_claimed"
    (claim,) = team.orgs.claims(team.owner)
    with pytest.raises(NotFound):
        team.orgs.decline(claim.invitation_id, team.outsider, by=team.signatory)
    team.orgs.decline(claim.invitation_id, team.outsider, by=team.owner, ip="192.0.2.31")
    assert team.role_of(team.outsider) is None and team.orgs.claims(team.owner) == []
    declined = audit_events(registry, "invitation.declined")[0]
    assert declined["subject"] == team.outsider and _actors(registry, "invitation.declined") == [team.owner]
    assert declined["detail"] == {
        "organisation": team.org.id,
        "invitation": claim.invitation_id,
        "role": "employee",
    }
    with pytest.raises(NotFound):  # a declined claim cannot be confirmed after all
        team.orgs.confirm(claim.invitation_id, team.outsider, by=team.owner)
    with pytest.raises(NotFound):  # nor declined twice
        team.orgs.decline(claim.invitation_id, team.outsider, by=team.owner)
    # The link works again, for the person it was sent to.
    assert team.orgs.invitation(code) is not None
    accepted = team.orgs.accept(code, team.target)
    assert isinstance(accepted, Member) and team.role_of(team.target) == "employee"


def test_the_invited_address_is_never_blocked_by_a_claim(team: Team, registry: Registry) -> None:
    code = _invite(team)
    _claimed(team, code, team.outsider)
    accepted = team.orgs.accept(code, team.target)
    assert isinstance(accepted, Member) and accepted.role == "employee"
    assert team.role_of(team.outsider) is None and team.orgs.claims(team.owner) == []
    with pytest.raises(NotFound):  # the claim died with the invitation
        team.orgs.confirm(_only_invitation_id(registry), team.outsider, by=team.owner)
    assert team.role_of(team.outsider) is None


def test_a_confirmation_keeps_the_rules_of_an_acceptance(
    team: Team, registry: Registry, clock: FrozenClock
) -> None:
    code = _invite(team)
    _claimed(team, code, team.outsider)
    (claim,) = team.orgs.claims(team.owner)
    team.orgs.suspend(team.org.id, actor="cli")
    with pytest.raises(NotAllowed) as refused:
        team.orgs.confirm(claim.invitation_id, team.outsider, by=team.owner)
    assert refused.value.code == "organisation_suspended"
    team.orgs.reactivate(team.org.id, actor="cli")
    # An inviter who has lost the right to grant the role cannot confirm it either.
    team.orgs.invite(team.org.id, INVITED, "employee", by=team.signatory)
    found = _LINK.search(_body(_outbox(registry)[-1]))
    assert found
    _claimed(team, found.group(2), team.employee)
    (late,) = team.orgs.claims(team.signatory)
    team.orgs.remove(team.org.id, team.signatory, by=team.owner)
    with pytest.raises(NotAllowed) as refused:
        team.orgs.confirm(late.invitation_id, team.employee, by=team.signatory)
    assert refused.value.code == "inviter_not_allowed"
    assert team.role_of(team.employee) == "employee"
    # A lapsed invitation cannot be confirmed, and is no longer listed.
    clock.advance(7 * 24 * 3600)
    assert team.orgs.claims(team.owner) == []
    with pytest.raises(NotFound):
        team.orgs.confirm(claim.invitation_id, team.outsider, by=team.owner)
    assert team.role_of(team.outsider) is None
    reasons = [e["detail"]["reason"] for e in audit_events(registry, "invitation.refused")]
    assert reasons == ["expired", "inviter_not_allowed", "organisation_suspended"]


def test_a_claim_is_refused_as_an_acceptance_would_be(
    team: Team, registry: Registry, clock: FrozenClock
) -> None:
    code = _invite(team)
    team.orgs.suspend(team.org.id, actor="cli")
    with pytest.raises(NotAllowed) as refused:
        team.orgs.accept(code, team.outsider)
    assert refused.value.code == "organisation_suspended"
    team.orgs.reactivate(team.org.id, actor="cli")
    clock.advance(7 * 24 * 3600)
    with pytest.raises(NotFound):
        team.orgs.accept(code, team.outsider)
    assert team.orgs.claims(team.owner) == [] and audit_events(registry, "invitation.claimed") == []
    assert len(_outbox(registry)) == 1  # the invitation only: the inviter was asked nothing


def test_an_inviter_without_an_address_still_sees_the_claim(team: Team, registry: Registry) -> None:
    team.orgs.invite(team.org.id, INVITED, "employee", by=team.signatory)
    found = _LINK.search(_body(_outbox(registry)[-1]))
    assert found
    _claimed(team, found.group(2), team.outsider)
    assert len(_outbox(registry)) == 1  # the signatory has no address: no mail
    assert [c.username for c in team.orgs.claims(team.signatory)] == ["outsider"]


@BOTH_BACKENDS
def test_two_accounts_claiming_at_once_make_one_claim(team: Team, registry: Registry) -> None:
    for round_ in range(5):
        code = _invite(team, f"claim{round_}@example.org")
        mails = len(_outbox(registry))
        first, second = (_person(registry, f"claimer{round_}{n}", 60 + 2 * round_ + n) for n in (0, 1))
        results = together(
            functools.partial(team.orgs.accept, code, first),
            functools.partial(team.orgs.accept, code, second),
        )
        assert sum(isinstance(r, AwaitingInviter) for r in results) == 1, results
        assert sum(isinstance(r, Conflict) for r in results) == 1, results
        claimant = first if isinstance(results[0], AwaitingInviter) else second
        assert [
            c.account_id for c in team.orgs.claims(team.owner) if c.email == f"claim{round_}@example.org"
        ] == [claimant]
        assert len(_outbox(registry)) == mails + 1  # the inviter is asked once


@BOTH_BACKENDS
def test_a_confirmation_racing_the_invited_address_spends_the_invitation_once(team: Team) -> None:
    for round_ in range(5):
        address = f"both{round_}@example.org"
        code = _invite(team, address)
        invited = _person(team.registry, f"invited{round_}", 80 + 2 * round_, address)
        holder = _person(team.registry, f"holder{round_}", 81 + 2 * round_)
        _claimed(team, code, holder)
        (claim,) = [c for c in team.orgs.claims(team.owner) if c.email == address]
        results = together(
            functools.partial(team.orgs.accept, code, invited),
            functools.partial(team.orgs.confirm, claim.invitation_id, holder, by=team.owner),
        )
        assert sum(isinstance(r, Member) for r in results) == 1, results
        assert sum(isinstance(r, NotFound) for r in results) == 1, results
        assert [team.role_of(invited), team.role_of(holder)].count("employee") == 1
