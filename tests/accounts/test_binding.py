"""Binding rules in the account area: a stolen password can no longer become a takeover.

- A password-only account binds its first second factor only after a code mailed to its verified
  address is typed back (nothing is bound, no recovery codes are shown, before); an account with
  no verified address is sent to a service centre.
- Binding or removing a factor and new recovery codes need an authentication at the account's
  reachable level, proven within ``reauth_max_age``: re-entering the password is not enough for an
  account that holds a factor.
"""

from __future__ import annotations

import json
import re

import pytest
from flask import Flask

from idp.accounts.first_factor import MAX_TRIES
from idp.authn.binding import REAUTH, STEP_UP, change_needs
from idp.authn.results import AuthResult, Proof
from idp.clock import FrozenClock
from idp.registry import Registry
from idp.settings import LOA_HIGH, LOA_LOW, LOA_SUBSTANTIAL
from tests.conftest import PASSWORD, World
from tests.support.audit import audit_events
from tests.support.authenticator import SoftAuthenticator
from tests.support.mfa import (
    MfaPerson,
    add_app_in_account,
    add_passkey_in_account,
    open_account,
    submit,
    totp_code,
)
from tests.support.outbox import about, body

FATIMA = "fatima@example.org"
#: The subject of the mail with the code that confirms a first second factor.
CODE_MAIL = "Confirm adding a second factor to Hawiya"


def _key(registry: Registry) -> SoftAuthenticator:
    settings = registry.settings
    return SoftAuthenticator(rp_id=settings.rp_id, origin=settings.webauthn_origin)


def _mailed_code(registry: Registry, address: str = FATIMA) -> str:
    found = re.search(r"\b(\d{6})\b", body(about(registry.settings.outbox_path, address, CODE_MAIL)[-1]))
    assert found, "the mail carries no code"
    return found.group(1)


# -- the attack: a password alone binds a factor ------------------------------------------------------


def test_a_password_alone_cannot_bind_a_first_passkey(
    citizen: MfaPerson, registry: Registry, world: World
) -> None:
    """Reproduction: signed in with only the password, an attacker registered a passkey, was shown
    ten recovery codes, and the owner's sign-in then asked for a factor she never set up."""
    start = submit(citizen, open_account(citizen), "/account/passkeys/new", label="Attacker")
    html = start.get_data(as_text=True)
    assert 'id="passkey-options"' not in html  # no ceremony: nothing to bind yet
    assert 'id="first-factor-code"' in html and "recovery-codes" not in html
    assert registry.authenticators.factors(world.citizen_id) == []
    assert registry.recovery_codes.status(world.citizen_id).total == 0
    (mail,) = about(registry.settings.outbox_path, FATIMA, CODE_MAIL)  # the owner is told
    assert "passkey" in body(mail)


def test_a_password_alone_cannot_bind_a_first_app(
    citizen: MfaPerson, registry: Registry, world: World
) -> None:
    account = open_account(citizen)
    start = submit(citizen, account, "/account/totp", label="Attacker")
    assert 'id="secret"' not in start.get_data(as_text=True)
    # Confirming an enrolment begun some other way is refused too.
    enrolment = registry.authenticators.begin_totp(world.citizen_id, account_name="citizen", label="x")
    confirm = citizen.post(
        "/account/totp/confirm",
        {
            "csrf_token": _csrf(account),
            "authenticator": enrolment.authenticator_id,
            "code": totp_code(enrolment.secret, citizen.clock),
        },
    )
    assert confirm.status_code == 403
    assert registry.authenticators.factors(world.citizen_id) == []
    assert registry.recovery_codes.status(world.citizen_id).total == 0


def _csrf(page: object) -> str:
    from tests.support.person import hidden_fields

    return hidden_fields(page.get_data(as_text=True))["csrf_token"]  # type: ignore[attr-defined]


# -- the address of record -------------------------------------------------------------------------


def test_the_mailed_code_lets_the_owner_bind_her_first_factor(
    citizen: MfaPerson, registry: Registry, world: World
) -> None:
    key = _key(registry)
    citizen.key = key
    done = add_passkey_in_account(citizen, key)
    assert len(citizen.recovery_codes) == 10, done.get_data(as_text=True)[:400]
    assert len(registry.authenticators.factors(world.citizen_id)) == 1
    assert [row["event"] for row in audit_events(registry, "first_factor.confirmed")]
    # The confirmation was spent on that factor: a second one needs no code (and gets none), but
    # the session, at low, first gives the new key (the account now reaches substantial).
    add_app_in_account(citizen)
    assert len(audit_events(registry, "session.stepped_up")) == 1
    assert len(registry.authenticators.factors(world.citizen_id)) == 2
    assert len(about(registry.settings.outbox_path, FATIMA, CODE_MAIL)) == 1


def test_wrong_codes_are_limited_and_a_code_works_in_its_own_session_only(
    app: Flask, citizen: MfaPerson, registry: Registry, world: World, clock: FrozenClock
) -> None:
    page = submit(citizen, open_account(citizen), "/account/totp", label="Phone")
    code = _mailed_code(registry)
    # Another browser signed in with the same password cannot use the owner's code.
    other = MfaPerson(app, "citizen", PASSWORD, clock=clock)
    other_page = open_account(other)
    refused = other.post("/account/first-factor", {"csrf_token": _csrf(other_page), "code": code})
    assert refused.status_code == 401
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(MAX_TRIES - 1):
        assert submit(citizen, page, "/account/first-factor", code=wrong).status_code == 401
    # The limit is reached: even the right code no longer works.
    blocked = submit(citizen, page, "/account/first-factor", code=code)
    assert blocked.status_code == 429
    assert registry.authenticators.factors(world.citizen_id) == []


def test_an_account_without_a_verified_address_is_sent_to_a_service_centre(
    app: Flask, world: World, registry: Registry, clock: FrozenClock
) -> None:
    resident = MfaPerson(app, "resident", PASSWORD, clock=clock)
    refused = submit(resident, open_account(resident), "/account/passkeys/new", label="Key")
    assert refused.status_code == 403
    html = refused.get_data(as_text=True)
    assert "service centre" in html and 'id="passkey-options"' not in html
    assert audit_events(registry, "first_factor.refused")[0]["detail"] == {"reason": "no_address"}


# -- the level rule ---------------------------------------------------------------------------------


def test_a_password_re_entry_does_not_let_a_factor_holder_bind_another(
    citizen: MfaPerson, registry: Registry, world: World, clock: FrozenClock
) -> None:
    """Reproduction: the account area checked only that the password was re-entered recently, so a
    session whose code had gone stale bound a passkey on the password alone."""
    add_app_in_account(citizen)
    clock.advance(registry.settings.reauth_max_age + 1)
    reauth = citizen.get("/account/reauth")
    again = submit(citizen, reauth, "/account/reauth", password=PASSWORD)
    assert again.status_code == 303 and again.location == "/account"
    start = submit(citizen, citizen.get("/account"), "/account/passkeys/new", label="Attacker")
    assert start.status_code == 303 and start.location == "/signin/factor?renew=1"
    assert len(registry.authenticators.factors(world.citizen_id)) == 1
    # Giving the code on the factor page lets the owner go on.
    factor = citizen.get(start.location)
    assert factor.status_code == 200
    back = citizen.answer_factor(factor)
    assert back.status_code == 302 and back.location == "/account"
    allowed = submit(citizen, citizen.get("/account"), "/account/passkeys/new", label="Mine")
    assert allowed.status_code == 200 and 'id="passkey-options"' in allowed.get_data(as_text=True)


def test_a_stale_session_re_enters_the_password_then_gives_its_factor(
    citizen: MfaPerson, registry: Registry, clock: FrozenClock
) -> None:
    add_app_in_account(citizen)
    clock.advance(registry.settings.reauth_max_age + 1)
    asked = submit(citizen, citizen.get("/account"), "/account/recovery-codes")
    assert asked.status_code == 303 and asked.location == "/account/reauth?next=factor"
    # The factor page never builds on a stale password.
    assert citizen.get("/signin/factor?renew=1").location == "/account/reauth?next=factor"
    reauth = citizen.get(asked.location)
    after = submit(citizen, reauth, "/account/reauth?next=factor", password=PASSWORD)
    assert after.status_code == 303 and after.location == "/signin/factor?renew=1"


def test_removing_a_factor_needs_the_level_too(
    citizen: MfaPerson, registry: Registry, world: World, clock: FrozenClock
) -> None:
    add_passkey_in_account(citizen, _key(registry))
    account = citizen.get("/account")
    (ident,) = re.findall(r'action="/account/authenticators/([^/"]+)/remove"', account.get_data(as_text=True))
    clock.advance(registry.settings.reauth_max_age + 1)
    submit(citizen, citizen.get("/account/reauth"), "/account/reauth", password=PASSWORD)
    refused = submit(citizen, citizen.get("/account"), f"/account/authenticators/{ident}/remove")
    assert refused.status_code == 303 and refused.location == "/signin/factor?renew=1"
    assert len(registry.authenticators.factors(world.citizen_id)) == 1


def _result(*proofs: Proof) -> AuthResult:
    return AuthResult("a", min(p.at for p in proofs), acr=max(p.level for p in proofs), proofs=proofs)


@pytest.mark.parametrize(
    ("fresh", "reachable", "needs"),
    [
        (None, LOA_LOW, REAUTH),
        (None, LOA_SUBSTANTIAL, REAUTH),
        (AuthResult("a", 1), LOA_LOW, None),
        (AuthResult("a", 1), LOA_SUBSTANTIAL, STEP_UP),
        (AuthResult("a", 1, acr=LOA_SUBSTANTIAL), LOA_SUBSTANTIAL, None),
        (AuthResult("a", 1, acr=LOA_SUBSTANTIAL), LOA_HIGH, STEP_UP),
        (AuthResult("a", 1, acr=LOA_HIGH), LOA_SUBSTANTIAL, None),
    ],
)
def test_change_needs(fresh: AuthResult | None, reachable: str, needs: str | None) -> None:
    assert change_needs(fresh, reachable) == needs


def test_passkey_finish_without_confirmation_is_refused(
    citizen: MfaPerson, registry: Registry, world: World
) -> None:
    """Even a ceremony obtained some other way binds nothing before the address is confirmed."""
    account = open_account(citizen)
    ceremony = registry.passkeys.begin_registration(world.citizen_id)
    credential = _key(registry).register(ceremony.options)
    refused = citizen.post(
        "/account/passkeys",
        {"csrf_token": _csrf(account), "ceremony": ceremony.id, "credential": json.dumps(credential)},
    )
    assert refused.status_code == 403
    assert registry.authenticators.factors(world.citizen_id) == []
