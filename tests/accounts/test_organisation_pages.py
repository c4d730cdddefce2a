"""The account area's organisation pages (/account/organisations, /account/invitation?code=...):
a person sees the businesses they may act for; owners and signatories give and take away roles and
invite people by email, each change behind a recent sign-in and a CSRF token; an invitation link
survives signing in first; opened by an account without the invited verified address, it waits for
the inviter, who confirms or declines that account on the organisations page; every refusal is a
page that says why, with a 4xx status."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from idp.accounts.organisations import Org
from idp.clock import FrozenClock
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, PASSWORD, World
from tests.support.audit import audit_events
from tests.support.mfa import MfaPerson, open_account, submit, verify_address
from tests.support.outbox import messages
from tests.support.person import hidden_fields

PAGE = "/account/organisations"


def _org(registry: Registry) -> Org:
    """Gulf Trading, owned by the citizen of the test world."""
    citizen = registry.accounts.by_username("citizen")
    assert citizen is not None
    org = registry.organisations.create(
        registration_number="CR-100200", name="Gulf Trading", name_ar="الخليج للتجارة", actor="test"
    )
    registry.organisations.grant(org.id, citizen.id, "owner", by=None, operator="test")
    return org


@pytest.fixture
def org(registry: Registry, world: World) -> Org:
    return _org(registry)


@pytest.fixture
def resident(app: Flask, world: World, clock: FrozenClock) -> MfaPerson:
    """The resident of the test world at a browser of their own."""
    return MfaPerson(app, "resident", PASSWORD, clock=clock)


def _account_id(registry: Registry, username: str) -> str:
    person = registry.accounts.by_username(username)
    assert person is not None
    return person.id


def _role(registry: Registry, org: Org, username: str) -> str | None:
    return next((m.role for m in registry.organisations.members(org.id) if m.username == username), None)


def _open(person: MfaPerson) -> TestResponse:
    open_account(person)
    page = person.get(PAGE)
    assert page.status_code == 200, page.get_data(as_text=True)[:400]
    return page


def _walk_to(person: MfaPerson, response: TestResponse) -> TestResponse:
    """Follow redirects, signing in when asked, to the page that is not a sign-in page."""
    for _ in range(10):
        reached = person.follow(response)
        assert not isinstance(reached, str), reached
        if reached.request.path == "/signin" and reached.request.method == "GET":
            response = person.sign_in(reached)
            continue
        return reached
    raise AssertionError("too many pages")


#: Where an invitation is accepted (the code travels in the form).
ACCEPT = "/account/invitation"


def _code_of(link: str) -> str:
    return link.split("code=", 1)[1]


def _invitation_link(registry: Registry) -> str:
    (message,) = [m for m in messages(registry.settings.outbox_path) if "Invitation" in str(m["Subject"])]
    body = str(message.get_content())
    found = re.search(r"https?://[^/\s]+(/account/invitation\?code=[A-Za-z0-9_-]+)", body)
    assert found, body
    return found.group(1)


def _alert(html: str) -> str:
    found = re.search(r'<div class="alert" role="alert" id="[a-z-]+-error">(.*?)</div>', html, re.S)
    assert found, "the page shows no error"
    return " ".join(unescape(found.group(1)).split())


# -- seeing -----------------------------------------------------------------------------------------


def test_the_page_needs_a_sign_in_and_comes_back_after_it(citizen: MfaPerson, org: Org) -> None:
    first = citizen.get(PAGE)
    assert first.status_code == 303 and first.location == "/signin"
    reached = _walk_to(citizen, first)
    assert reached.request.path == PAGE and reached.status_code == 200
    html = reached.get_data(as_text=True)
    assert "Gulf Trading" in html and "CR-100200" in html and "Owner" in html
    # The way back is used once: the account page is the account page again.
    assert citizen.get("/account").status_code == 200


def test_the_account_page_links_to_it(citizen: MfaPerson) -> None:
    html = open_account(citizen).get_data(as_text=True)
    assert f'href="{PAGE}"' in html and "Organisations you act for" in html


def test_someone_without_a_role_sees_none_and_no_forms(resident: MfaPerson, org: Org) -> None:
    html = _open(resident).get_data(as_text=True)
    assert 'id="no-organisations"' in html and "Gulf Trading" not in html
    assert "<form" not in html.split('id="main"')[1].split("Back to your account")[0]


def test_an_employee_sees_the_organisation_but_not_its_people(
    resident: MfaPerson, org: Org, registry: Registry
) -> None:
    registry.organisations.grant(org.id, _account_id(registry, "resident"), "employee", by=None, operator="t")
    html = _open(resident).get_data(as_text=True)
    assert "Gulf Trading" in html and "Employee" in html
    assert "citizen" not in html and f"/account/organisations/{org.id}/grant" not in html


def test_the_page_speaks_arabic(app: Flask, world: World, clock: FrozenClock, org: Org) -> None:
    person = MfaPerson(app, "citizen", PASSWORD, clock=clock)
    person.headers = {"Accept-Language": "ar"}
    html = _open(person).get_data(as_text=True)
    assert "الخليج للتجارة" in html and 'dir="rtl"' in html


# -- changing ---------------------------------------------------------------------------------------


def test_an_owner_gives_a_role_with_an_end_date_and_takes_it_away(
    citizen: MfaPerson, org: Org, registry: Registry, clock: FrozenClock
) -> None:
    page = _open(citizen)
    day = (datetime.fromtimestamp(clock.now(), UTC) + timedelta(days=10)).strftime("%Y-%m-%d")
    action = f"/account/organisations/{org.id}/grant"
    done = submit(citizen, page, action, username="RESIDENT", role="signatory", expires=day)
    assert done.status_code == 303 and done.location == f"{PAGE}?done=granted"
    html = citizen.get(done.location).get_data(as_text=True)
    assert "The role was given." in html and "Authorised signatory" in html and f"until {day}" in html
    assert _role(registry, org, "resident") == "signatory"
    granted = audit_events(registry, "membership.granted")[0]
    assert granted["subject"] == _account_id(registry, "resident")
    assert granted["detail"]["expires_at"].startswith(day)

    resident_id = _account_id(registry, "resident")
    page = citizen.get(PAGE)
    gone = submit(citizen, page, f"/account/organisations/{org.id}/members/{resident_id}/remove")
    assert gone.status_code == 303 and gone.location == f"{PAGE}?done=removed"
    assert _role(registry, org, "resident") is None
    assert "The role was taken away." in citizen.get(gone.location).get_data(as_text=True)


@pytest.mark.parametrize(
    ("fields", "status", "says"),
    [
        ({"username": "nobody-here", "role": "employee"}, 404, "No account has that username."),
        (
            {"username": "resident", "role": "employee", "expires": "2031-02-30"},
            400,
            "The date is not valid.",
        ),
        ({"username": "resident", "role": "employee", "expires": "2001-01-01"}, 400, "must be in the future"),
        ({"username": "resident", "role": "director"}, 400, "Choose a role from the list."),
        ({"username": "citizen", "role": "employee"}, 403, "must keep an owner"),
    ],
)
def test_a_refused_grant_says_why(
    citizen: MfaPerson, org: Org, registry: Registry, fields: dict[str, str], status: int, says: str
) -> None:
    refused = submit(citizen, _open(citizen), f"/account/organisations/{org.id}/grant", **fields)
    assert refused.status_code == status
    assert says in _alert(refused.get_data(as_text=True))
    assert _role(registry, org, "resident") is None and _role(registry, org, "citizen") == "owner"


def test_a_signatory_cannot_make_owners_or_remove_them(
    resident: MfaPerson, org: Org, registry: Registry
) -> None:
    registry.organisations.grant(
        org.id, _account_id(registry, "resident"), "signatory", by=None, operator="t"
    )
    page = _open(resident)
    html = page.get_data(as_text=True)
    assert '<option value="owner"' not in html  # the form offers only what they may grant
    citizen_id = _account_id(registry, "citizen")
    assert f"/members/{citizen_id}/remove" not in html
    refused = submit(
        resident, page, f"/account/organisations/{org.id}/grant", username="visitor", role="owner"
    )
    assert refused.status_code == 403
    assert "Only an owner can give" in _alert(refused.get_data(as_text=True))
    token = hidden_fields(html)["csrf_token"]
    removal = resident.post(
        f"/account/organisations/{org.id}/members/{citizen_id}/remove", {"csrf_token": token}
    )
    assert removal.status_code == 403
    assert _role(registry, org, "citizen") == "owner" and _role(registry, org, "visitor") is None
    assert [e["detail"]["reason"] for e in audit_events(registry, "membership.refused")] == [
        "owner_only",
        "owner_only",
    ]


def test_changes_need_a_recent_sign_in_and_a_csrf_token(
    citizen: MfaPerson, org: Org, registry: Registry, clock: FrozenClock
) -> None:
    resident_id = _account_id(registry, "resident")
    registry.organisations.grant(org.id, resident_id, "employee", by=None, operator="t")
    page = _open(citizen)
    forms = {
        f"/account/organisations/{org.id}/grant": {"username": "visitor", "role": "employee"},
        f"/account/organisations/{org.id}/invite": {"email": "x@example.org", "role": "employee"},
        f"/account/organisations/{org.id}/members/{resident_id}/remove": {},
    }
    for action, fields in forms.items():
        forged = citizen.post(action, fields)
        assert forged.status_code == 400, action
        assert "This form has expired" in forged.get_data(as_text=True)
    clock.advance(registry.settings.reauth_max_age + 1)
    for action, fields in forms.items():
        asked = submit(citizen, page, action, **fields)
        assert asked.status_code == 303 and asked.location == "/account/reauth", action
    assert _role(registry, org, "visitor") is None and _role(registry, org, "resident") == "employee"
    assert not registry.settings.outbox_path.exists() or not any(registry.settings.outbox_path.iterdir())


@BOTH_BACKENDS
def test_nothing_a_browser_sends_makes_a_500(citizen: MfaPerson, org: Org) -> None:
    page = _open(citizen)
    token = hidden_fields(page.get_data(as_text=True))["csrf_token"]
    long = "x" * 5000
    attempts = [
        (f"/account/organisations/{long}/grant", {"username": "resident", "role": "employee"}),
        ("/account/organisations/no-such-org/grant", {"username": "resident", "role": "employee"}),
        (f"/account/organisations/{org.id}/grant", {"username": long, "role": long, "expires": long}),
        (f"/account/organisations/{org.id}/grant", {}),
        (f"/account/organisations/{org.id}/members/{long}/remove", {}),
        ("/account/organisations/no-such-org/members/nobody/remove", {}),
        (f"/account/organisations/{org.id}/invite", {"email": long, "role": "employee"}),
        (
            f"/account/organisations/{org.id}/invite",
            {"email": "a@example.org", "role": "employee", "expires": "x"},
        ),
        ("/account/organisations/no-such-org/invite", {"email": "a@example.org", "role": "employee"}),
        ("/account/invitation", {"code": long}),
        ("/account/invitation", {"code": "\x00\xff"}),
        # PostgreSQL refuses NUL characters: they must never reach it.
        ("/account/organisations/%00/grant", {"username": "resident", "role": "employee"}),
        (f"/account/organisations/{org.id}/grant", {"username": "resi\x00dent", "role": "employee"}),
        (
            f"/account/organisations/{org.id}/grant",
            {"username": "resident", "role": "employee", "expires": "\x00"},
        ),
        (f"/account/organisations/{org.id}/members/%00/remove", {}),
        (f"/account/organisations/{org.id}/invite", {"email": "a\x00@example.org", "role": "employee"}),
        ("/account/invitation", {"code": "\x00"}),
        (f"/account/organisations/invitations/{long}/claims/{long}/confirm", {}),
        ("/account/organisations/invitations/%00/claims/%00/confirm", {}),
        ("/account/organisations/invitations/no-such/claims/nobody/decline", {}),
        (f"/account/organisations/invitations/{long}/claims/x\x00/decline", {}),
    ]
    for action, fields in attempts:
        answer = citizen.post(action, {"csrf_token": token, **fields})
        assert 400 <= answer.status_code < 500, (action[:80], answer.status_code)
        assert "unexpected error" not in answer.get_data(as_text=True)
    for url in (
        "/account/invitation?code=" + long,
        "/account/invitation?code=abc",
        "/account/invitation?code=%00",
    ):
        answer = citizen.get(url)
        assert answer.status_code == 404, url[:80]
        assert "This invitation is not valid" in _alert(answer.get_data(as_text=True))


# -- invitations ------------------------------------------------------------------------------------


def test_an_invitation_from_the_page_to_acceptance(
    citizen: MfaPerson, resident: MfaPerson, org: Org, registry: Registry
) -> None:
    sent = submit(
        citizen,
        _open(citizen),
        f"/account/organisations/{org.id}/invite",
        email="ravi@example.org",
        role="employee",
    )
    assert sent.status_code == 303 and sent.location == f"{PAGE}?done=invited"
    assert "The invitation was sent by email." in citizen.get(sent.location).get_data(as_text=True)
    link = _invitation_link(registry)
    verify_address(registry, "resident", "Ravi@example.org")

    # The invited person is not signed in: they sign in first and come back to the invitation.
    first = resident.get(link)
    assert first.status_code == 303 and first.location == "/signin"
    offer = _walk_to(resident, first)
    assert offer.request.full_path == link and offer.status_code == 200
    html = offer.get_data(as_text=True)
    assert "You are invited to act for Gulf Trading as: Employee." in " ".join(unescape(html).split())
    accepted = submit(resident, offer, ACCEPT, code=_code_of(link))
    assert accepted.status_code == 303 and accepted.location == f"{PAGE}?done=accepted"
    mine = resident.get(accepted.location).get_data(as_text=True)
    assert "You accepted the invitation." in mine and "Gulf Trading" in mine
    assert _role(registry, org, "resident") == "employee"
    assert audit_events(registry, "invitation.accepted")[0]["subject"] == _account_id(registry, "resident")

    # The link works once.
    again = resident.get(link)
    assert again.status_code == 404 and "This invitation is not valid" in _alert(again.get_data(as_text=True))
    token = hidden_fields(offer.get_data(as_text=True))["csrf_token"]
    replay = resident.post(ACCEPT, {"csrf_token": token, "code": _code_of(link)})
    assert replay.status_code == 404


def test_an_invitation_to_a_suspended_organisation_is_refused_on_the_page(
    citizen: MfaPerson, resident: MfaPerson, org: Org, registry: Registry
) -> None:
    submit(
        citizen,
        _open(citizen),
        f"/account/organisations/{org.id}/invite",
        email="r@example.org",
        role="employee",
    )
    link = _invitation_link(registry)
    offer = _walk_to(resident, resident.get(link))
    registry.organisations.suspend(org.id, actor="test")
    refused = submit(resident, offer, ACCEPT, code=_code_of(link))
    assert refused.status_code == 403
    assert "The organisation is suspended" in _alert(refused.get_data(as_text=True))
    assert "Gulf Trading" not in _open(citizen).get_data(as_text=True)  # nobody acts for it now


def test_a_refused_invitation_says_why(citizen: MfaPerson, org: Org, registry: Registry) -> None:
    page = _open(citizen)
    refused = submit(
        citizen, page, f"/account/organisations/{org.id}/invite", email="not-an-address", role="employee"
    )
    assert refused.status_code == 400
    assert "That email address is not valid." in _alert(refused.get_data(as_text=True))
    assert audit_events(registry, "invitation.sent") == []


def test_an_invitation_link_survives_re_entering_the_password(
    resident: MfaPerson, org: Org, registry: Registry, clock: FrozenClock
) -> None:
    registry.organisations.invite(org.id, "r@example.org", "signatory", by=_account_id(registry, "citizen"))
    link = _invitation_link(registry)
    verify_address(registry, "resident", "r@example.org")
    open_account(resident)
    clock.advance(registry.settings.reauth_max_age + 1)
    asked = resident.get(link)
    assert asked.status_code == 303 and asked.location == "/account/reauth"
    confirmed = submit(resident, resident.get("/account/reauth"), "/account/reauth", password=PASSWORD)
    offer = resident.follow(confirmed)
    assert not isinstance(offer, str) and offer.request.full_path == link and offer.status_code == 200
    assert submit(resident, offer, ACCEPT, code=_code_of(link)).status_code == 303
    assert _role(registry, org, "resident") == "signatory"


def _claim_from_the_page(resident: MfaPerson, registry: Registry, org: Org) -> tuple[str, str]:
    """The citizen invites an address the resident has not verified; the resident opens the link
    and asks to take it up. The link, and the claim's confirm action."""
    registry.organisations.invite(org.id, "ravi@example.org", "employee", by=_account_id(registry, "citizen"))
    link = _invitation_link(registry)
    offer = _walk_to(resident, resident.get(link))
    asked = submit(resident, offer, ACCEPT, code=_code_of(link))
    assert asked.status_code == 200
    html = " ".join(unescape(asked.get_data(as_text=True)).split())
    assert 'id="invitation-awaiting"' in html and 'id="accept"' not in html
    assert "Your request was sent to the person who invited you for confirmation." in html
    assert _role(registry, org, "resident") is None
    # Coming back to the link shows the same: waiting, no button.
    again = resident.get(link).get_data(as_text=True)
    assert 'id="invitation-awaiting"' in again and 'id="accept"' not in again
    invitation_id = registry.organisations.claims(_account_id(registry, "citizen"))[0].invitation_id
    base = f"/account/organisations/invitations/{invitation_id}/claims/{_account_id(registry, 'resident')}"
    return link, base


def test_a_link_opened_by_another_account_waits_for_the_inviter(
    citizen: MfaPerson, resident: MfaPerson, org: Org, registry: Registry
) -> None:
    _link, base = _claim_from_the_page(resident, registry, org)
    (mail,) = [m for m in messages(registry.settings.outbox_path) if m["To"] == "fatima@example.org"]
    assert "resident" in str(mail.get_content())

    page = _open(citizen)
    html = " ".join(unescape(page.get_data(as_text=True)).split())
    assert 'id="claims"' in html and "Waiting for your confirmation" in html
    assert "asks to act for Gulf Trading as: Employee." in html and "ravi@example.org" in html
    # The resident sees no such buttons: only the inviter is asked.
    assert f'action="{base}/confirm"' not in _open(resident).get_data(as_text=True)
    confirmed = submit(citizen, page, f"{base}/confirm")
    assert confirmed.status_code == 303 and confirmed.location == f"{PAGE}?done=confirmed"
    after = citizen.get(confirmed.location).get_data(as_text=True)
    assert "You confirmed the person" in after and 'id="claims"' not in after
    assert _role(registry, org, "resident") == "employee"
    assert "Gulf Trading" in _open(resident).get_data(as_text=True)
    accepted = audit_events(registry, "invitation.accepted")[0]
    assert accepted["detail"]["confirmed_by"] == _account_id(registry, "citizen")
    # Confirming again finds nothing to confirm.
    token = hidden_fields(after)["csrf_token"]
    again = citizen.post(f"{base}/confirm", {"csrf_token": token})
    assert again.status_code == 404 and "Nobody is waiting" in _alert(again.get_data(as_text=True))


@BOTH_BACKENDS
def test_the_inviter_declines_and_the_link_works_again(
    app: Flask, citizen: MfaPerson, resident: MfaPerson, org: Org, registry: Registry, clock: FrozenClock
) -> None:
    link, base = _claim_from_the_page(resident, registry, org)
    declined = submit(citizen, _open(citizen), f"{base}/decline")
    assert declined.status_code == 303 and declined.location == f"{PAGE}?done=declined"
    assert "You declined the request." in citizen.get(declined.location).get_data(as_text=True)
    assert _role(registry, org, "resident") is None
    assert audit_events(registry, "invitation.declined")[0]["subject"] == _account_id(registry, "resident")
    # The invited person (the visitor, whose verified address it is) takes it up at once.
    verify_address(registry, "visitor", "ravi@example.org")
    visitor = MfaPerson(app, "visitor", PASSWORD, clock=clock)
    offer = _walk_to(visitor, visitor.get(link))
    assert offer.status_code == 200 and 'id="accept"' in offer.get_data(as_text=True)
    accepted = submit(visitor, offer, ACCEPT, code=_code_of(link))
    assert accepted.status_code == 303 and accepted.location == f"{PAGE}?done=accepted"
    assert _role(registry, org, "visitor") == "employee"


def test_a_second_account_with_the_link_is_told_to_wait(
    app: Flask, resident: MfaPerson, org: Org, registry: Registry, clock: FrozenClock
) -> None:
    link, _base = _claim_from_the_page(resident, registry, org)
    visitor = MfaPerson(app, "visitor", PASSWORD, clock=clock)
    offer = _walk_to(visitor, visitor.get(link))
    refused = submit(visitor, offer, ACCEPT, code=_code_of(link))
    assert refused.status_code == 409
    assert "Another account has already asked" in _alert(refused.get_data(as_text=True))
    assert _role(registry, org, "visitor") is None


def test_confirming_needs_a_recent_sign_in_a_csrf_token_and_the_inviter(
    citizen: MfaPerson, resident: MfaPerson, org: Org, registry: Registry, clock: FrozenClock
) -> None:
    _link, base = _claim_from_the_page(resident, registry, org)
    page = _open(citizen)
    for action in (f"{base}/confirm", f"{base}/decline"):
        forged = citizen.post(action, {})
        assert forged.status_code == 400 and "This form has expired" in forged.get_data(as_text=True)
    # The claimant cannot confirm themself (nor can anyone but the inviter).
    token = hidden_fields(open_account(resident).get_data(as_text=True))["csrf_token"]
    for action in (f"{base}/confirm", f"{base}/decline"):
        assert resident.post(action, {"csrf_token": token}).status_code == 404
    clock.advance(registry.settings.reauth_max_age + 1)
    for action in (f"{base}/confirm", f"{base}/decline"):
        asked = submit(citizen, page, action)
        assert asked.status_code == 303 and asked.location == "/account/reauth", action
    assert _role(registry, org, "resident") is None
    assert len(registry.organisations.claims(_account_id(registry, "citizen"))) == 1
