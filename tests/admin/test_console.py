"""The staff console (/admin) through its real pages: who gets in, what each role sees and may do,
and that every change is audited under the staff member's username."""

from __future__ import annotations

from flask import Flask

from idp.authn.results import AuthResult
from idp.clock import FrozenClock
from idp.http.context import SSO_COOKIE
from idp.registry import Registry
from idp.settings import LOA_LOW
from tests.admin.conftest import MakeStaff, csrf_token_of, open_console, press
from tests.conftest import PASSWORD, World
from tests.support.audit import audit_events
from tests.support.identity import national_id
from tests.support.mfa import MfaPerson
from tests.support.outbox import body, to


def _actors(registry: Registry, event: str) -> list[str | None]:
    return [row.actor for row in registry.audit.recent(event=event)]


def _refusals(registry: Registry) -> list[tuple[str | None, str]]:
    return [(row.actor, row.detail["operation"]) for row in registry.audit.recent(event="operation.refused")]


# -- who gets in ----------------------------------------------------------------------------------------


def test_staff_sign_in_with_their_code_and_land_on_the_console(make_staff: MakeStaff) -> None:
    admin = make_staff("amal", "admin")
    page = open_console(admin)
    assert [p.request.path for p in admin.pages] == ["/signin", "/signin/factor", "/admin"]
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Ministry of Interior" in html and "Digital Services" in html and "Administrator" in html
    for link in ("/admin/clients", "/admin/keys", "/admin/audit", "/admin/people"):
        assert f'href="{link}"' in html, link
    assert 'id="staff-console"' in admin.get("/account").get_data(as_text=True)


def test_nobody_signed_in_is_sent_to_sign_in(app: Flask, world: World) -> None:
    response = app.test_client().get("/admin/clients")
    assert response.status_code == 303 and response.location.endswith("/signin")


def test_a_citizen_is_refused(app: Flask, world: World, registry: Registry, clock: FrozenClock) -> None:
    citizen = MfaPerson(app, "citizen", PASSWORD, clock=clock)
    for path in ("/admin", "/admin/people", "/admin/audit"):
        page = open_console(citizen, path)
        assert page.status_code == 403, path
        assert "This part of Hawiya is for staff" in page.get_data(as_text=True)
    assert _refusals(registry)[0] == ("citizen", "console")
    assert 'id="staff-console"' not in citizen.get("/account").get_data(as_text=True)


def test_staff_without_a_role_are_refused(make_staff: MakeStaff) -> None:
    assert open_console(make_staff("norole")).status_code == 403


def test_a_session_below_substantial_steps_up_first(
    app: Flask, registry: Registry, make_staff: MakeStaff, clock: FrozenClock
) -> None:
    admin = make_staff("amal", "admin")
    account = registry.accounts.by_username("amal")
    assert account is not None
    handle, _session = registry.sessions.start(AuthResult(account.id, int(clock.now()), ("pwd",), LOA_LOW))
    admin.browser.set_cookie(SSO_COOKIE, handle, domain="localhost")
    response = admin.get("/admin/keys")
    assert response.status_code == 303 and response.location.endswith("/signin/factor")
    # The code raises the session; the console page it asked for follows.
    page = admin.answer_factor(admin.get("/signin/factor"))
    reached = admin.follow(page)
    assert not isinstance(reached, str)
    assert reached.request.path == "/admin/keys" and reached.status_code == 200


def test_the_console_speaks_arabic_right_to_left(make_staff: MakeStaff) -> None:
    admin = make_staff("amal", "admin")
    open_console(admin)
    admin.headers = {"Accept-Language": "ar"}
    html = admin.get("/admin/clients").get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in html


# -- what each role sees and may do ------------------------------------------------------------------


def test_the_menu_shows_only_what_the_roles_open(make_staff: MakeStaff) -> None:
    expected = {
        "helpdesk": {"/admin/people"},
        "key-officer": {"/admin/keys"},
        "auditor": {"/admin/clients", "/admin/keys", "/admin/audit"},
    }
    for role, links in expected.items():
        html = open_console(make_staff(f"s-{role}", role)).get_data(as_text=True)
        pages = ("/admin/clients", "/admin/keys", "/admin/audit", "/admin/people")
        assert {link for link in pages if f'href="{link}"' in html} == links, role


def test_helpdesk_cannot_rotate_keys(make_staff: MakeStaff, registry: Registry) -> None:
    helpdesk = make_staff("hana", "helpdesk")
    before = registry.keystore.describe()
    assert open_console(helpdesk, "/admin/keys").status_code == 403
    refused = helpdesk.post("/admin/keys/rotate", {"csrf_token": csrf_token_of(helpdesk), "alg": "ES256"})
    assert refused.status_code == 403
    assert registry.keystore.describe() == before
    assert _refusals(registry)[:2] == [("hana", "keys.manage"), ("hana", "keys.read")]


def test_a_key_officer_rotates_a_key(make_staff: MakeStaff, registry: Registry, clock: FrozenClock) -> None:
    clock.advance(registry.settings.jwks_max_age + 1)  # the next keys have been published long enough
    officer = make_staff("khalid", "key-officer")
    page = open_console(officer, "/admin/keys")
    assert page.status_code == 200
    current = registry.keystore.current_kid("ES256")
    assert current is not None and current in page.get_data(as_text=True)
    done = officer.follow(press(officer, page, "/admin/keys/rotate", alg="ES256"))
    assert not isinstance(done, str) and done.request.path == "/admin/keys"
    assert 'id="notice"' in done.get_data(as_text=True)
    assert registry.keystore.current_kid("ES256") != current
    (rotated,) = [row for row in registry.audit.recent(event="signing_key.rotated")]
    assert rotated.actor == "khalid" and rotated.detail["retired"] == current

    # Straight away again: the new next key is too new to sign; the page says so.
    again = press(officer, done, "/admin/keys/rotate", alg="ES256")
    assert again.status_code == 409 and 'id="keys-error"' in again.get_data(as_text=True)


def test_an_admin_disables_a_client_and_makes_one_first_party(
    make_staff: MakeStaff, registry: Registry, world: World
) -> None:
    admin = make_staff("amal", "admin")
    page = open_console(admin, "/admin/clients")
    assert world.confidential_id in page.get_data(as_text=True)

    action = f"/admin/clients/{world.public_id}/first-party"
    after = admin.follow(press(admin, page, action, state="on"))
    assert not isinstance(after, str) and after.request.path == "/admin/clients"
    assert registry.clients.show(world.public_id).first_party
    updated = registry.audit.recent(event="client.updated")[0]
    assert (updated.actor, updated.client_id) == ("amal", world.public_id)
    assert updated.detail == {"first_party": True}

    press(admin, after, f"/admin/clients/{world.confidential_id}/disable")
    assert registry.clients.show(world.confidential_id).status == "disabled"
    assert _actors(registry, "client.disabled") == ["amal"]


def test_an_auditor_reads_but_changes_nothing(
    make_staff: MakeStaff, registry: Registry, world: World
) -> None:
    auditor = make_staff("aisha", "auditor")
    page = open_console(auditor, "/admin/clients")
    assert page.status_code == 200 and "/disable" not in page.get_data(as_text=True)
    token = csrf_token_of(auditor)
    refused = auditor.post(f"/admin/clients/{world.confidential_id}/disable", {"csrf_token": token})
    assert refused.status_code == 403
    assert registry.clients.show(world.confidential_id).status == "active"
    assert _refusals(registry)[0] == ("aisha", "clients.manage")


def test_the_audit_page_filters_by_event_and_subject(
    make_staff: MakeStaff, registry: Registry, world: World, app: Flask, clock: FrozenClock
) -> None:
    mistaken = MfaPerson(app, "citizen", "wrong password", clock=clock)
    assert mistaken.sign_in(mistaken.get("/signin")).status_code == 401
    auditor = make_staff("aisha", "auditor")
    open_console(auditor, "/admin/audit")

    by_name = auditor.get("/admin/audit?event=signin.failed&subject=citizen")
    html = by_name.get_data(as_text=True)
    assert by_name.status_code == 200 and world.citizen_id in html
    assert html.count("<code>signin.failed</code>") == 1 and "<code>session.started</code>" not in html

    mine = auditor.get("/admin/audit?subject=aisha").get_data(as_text=True)
    assert "<code>session.started</code>" in mine and "<code>signin.failed</code>" not in mine

    nothing = auditor.get("/admin/audit?event=no.such.event").get_data(as_text=True)
    assert 'id="no-events"' in nothing
    bad = auditor.get("/admin/audit?event=%3Cscript%3E")
    assert bad.status_code == 400 and 'id="audit-error"' in bad.get_data(as_text=True)


# -- people -----------------------------------------------------------------------------------------------


def test_helpdesk_finds_a_person_and_issues_an_activation_code(
    make_staff: MakeStaff, registry: Registry, world: World
) -> None:
    helpdesk = make_staff("hana", "helpdesk")
    page = open_console(helpdesk, "/admin/people")
    found = press(helpdesk, page, "/admin/people", q=national_id(1))
    html = found.get_data(as_text=True)
    assert found.status_code == 200
    assert 'id="person-type">Citizen<' in html and 'id="person-status">Active<' in html
    assert 'id="person-factors">0<' in html and "f•••@example.org" in html
    assert "fatima@example.org" not in html and "$argon2" not in html
    looked_up = registry.audit.recent(event="account.looked_up")[0]
    assert (looked_up.actor, looked_up.subject) == ("hana", world.citizen_id)
    assert national_id(1) not in str(looked_up.detail)

    shown = press(helpdesk, found, f"/admin/people/{world.citizen_id}/activation-code", send="yes")
    assert shown.status_code == 200
    code = shown.get_data(as_text=True).split('id="activation-code" dir="ltr">', 1)[1].split("<", 1)[0]
    assert len(code) == 14  # XXXX-XXXX-XXXX
    (mail,) = to(registry.settings.outbox_path, "fatima@example.org")  # mailed too, as asked
    assert code in body(mail)
    issued = registry.audit.recent(event="activation_code.issued")[0]
    assert (issued.actor, issued.subject) == ("hana", world.citizen_id)
    assert code not in str(issued.detail)
    person = registry.activation_codes.use(code, new_password="a brand new passphrase 77")
    assert person.id == world.citizen_id


def test_an_unknown_person_is_not_found_and_the_search_is_still_recorded(
    make_staff: MakeStaff, registry: Registry
) -> None:
    helpdesk = make_staff("hana", "helpdesk")
    page = press(helpdesk, open_console(helpdesk, "/admin/people"), "/admin/people", q="nobody-here")
    assert 'id="not-found"' in page.get_data(as_text=True)
    assert audit_events(registry, "account.looked_up")[0]["detail"] == {"by": "username", "found": False}


def test_helpdesk_cannot_issue_a_code_for_a_staff_account(make_staff: MakeStaff, registry: Registry) -> None:
    admin_account = make_staff("amal", "admin")
    helpdesk = make_staff("hana", "helpdesk")
    page = press(helpdesk, open_console(helpdesk, "/admin/people"), "/admin/people", q="amal")
    assert 'id="issue-code"' not in page.get_data(as_text=True)  # not offered ...
    target = registry.accounts.by_username(admin_account.username)
    assert target is not None
    refused = helpdesk.post(
        f"/admin/people/{target.id}/activation-code", {"csrf_token": csrf_token_of(helpdesk)}
    )
    assert refused.status_code == 403  # ... nor allowed
    assert audit_events(registry, "activation_code.issued") == []
    assert _refusals(registry)[0] == ("hana", "staff.manage")


# -- forms: CSRF and a recent sign-in -----------------------------------------------------------------


def test_a_change_without_the_csrf_token_is_refused(
    make_staff: MakeStaff, registry: Registry, world: World
) -> None:
    admin = make_staff("amal", "admin")
    open_console(admin, "/admin/clients")
    refused = admin.post(f"/admin/clients/{world.confidential_id}/disable", {})
    assert refused.status_code == 400 and "csrf_failed" in refused.get_data(as_text=True)
    forged = admin.post(f"/admin/clients/{world.confidential_id}/disable", {"csrf_token": "forged"})
    assert forged.status_code == 400
    assert registry.clients.show(world.confidential_id).status == "active"
    assert audit_events(registry, "client.disabled") == []


def test_a_change_long_after_sign_in_asks_for_the_password_again(
    make_staff: MakeStaff, registry: Registry, world: World, clock: FrozenClock
) -> None:
    admin = make_staff("amal", "admin")
    page = open_console(admin, "/admin/clients")
    clock.advance(registry.settings.reauth_max_age + 1)
    response = press(admin, page, f"/admin/clients/{world.confidential_id}/disable")
    assert response.status_code == 303 and response.location.endswith("/account/reauth")
    assert registry.clients.show(world.confidential_id).status == "active"
    # After the password, back to the clients page, and the change goes through.
    reauth = admin.follow(response)
    assert not isinstance(reauth, str)
    back = admin.follow(press(admin, reauth, "/account/reauth", password=PASSWORD))
    assert not isinstance(back, str) and back.request.path == "/admin/clients"
    press(admin, back, f"/admin/clients/{world.confidential_id}/disable")
    assert registry.clients.show(world.confidential_id).status == "disabled"


def test_the_console_says_why_it_withholds_the_code(
    make_staff: MakeStaff, registry: Registry, world: World
) -> None:
    registry.authenticators.provision_totp(world.citizen_id, label="Phone", actor="test")
    helpdesk = make_staff("hana", "helpdesk")
    found = press(helpdesk, open_console(helpdesk, "/admin/people"), "/admin/people", q=national_id(1))
    html = found.get_data(as_text=True)
    assert 'id="issue-code"' not in html and 'id="needs-approval"' in html  # not offered ...
    refused = helpdesk.post(
        f"/admin/people/{world.citizen_id}/activation-code", {"csrf_token": csrf_token_of(helpdesk)}
    )
    text = refused.get_data(as_text=True)
    assert refused.status_code == 403 and 'id="needs-approval"' in text  # ... nor issued, with why
    assert "second factors" in text and 'id="activation-code"' not in text
    assert audit_events(registry, "activation_code.issued") == []
