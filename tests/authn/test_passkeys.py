"""Passkeys and security keys (WebAuthn) through Hawiya's real pages: registering several per
account, signing in with one and no password, using one as the second factor or for a step-up,
the signature counter and backup-eligible flag, and every kind of bad response refused with a
clear message, audited, and never a server error. The responses are real: ``SoftAuthenticator``
signs them, py_webauthn verifies them unmodified.

Every key here is registered the ordinary way (``attestation: none``), so none reaches ``high``,
whatever flags it reports: test_high_assurance.py has the attested security keys that do."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from typing import Any, cast

import pytest
from fido2 import cbor
from flask import Flask
from werkzeug.test import TestResponse

from idp.clock import FrozenClock
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, PASSWORD, World
from tests.support.audit import audit_events
from tests.support.authenticator import CeremonyRefused, Credential, SoftAuthenticator, b64url, from_b64url
from tests.support.mfa import (
    MfaPerson,
    Rp,
    add_app_in_account,
    add_passkey_in_account,
    passkey_action_on,
    passkey_fields_on,
    passkey_options_on,
    secured_submit,
    submit,
    verify_address,
)

SUBSTANTIAL = "urn:hawiya:loa:substantial"
HIGH = "urn:hawiya:loa:high"
EXPIRED = "The request expired. Try again."
NOT_REGISTERED = "This passkey is not registered with Hawiya."
NOT_USED = "The passkey could not be used. Try again, or choose another way."


def _key(registry: Registry, **kwargs: Any) -> SoftAuthenticator:
    """A security key (or, with ``backup_eligible``, a passkey provider) for Hawiya's RP ID and origin."""
    settings = registry.settings
    return SoftAuthenticator(rp_id=settings.rp_id, origin=settings.webauthn_origin, **kwargs)


def _details(registry: Registry, event: str) -> list[dict[str, Any]]:
    """The details of the audit events named ``event``, newest first."""
    return [cast(dict[str, Any], row["detail"]) for row in audit_events(registry, event)]


def _last(registry: Registry, event: str) -> dict[str, Any]:
    """The detail of the newest ``event``."""
    details = _details(registry, event)
    assert details, f"no {event} was audited"
    return details[0]


def _paths(person: MfaPerson) -> list[str]:
    return [page.request.path for page in person.pages]


def _text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def _factor_ids(html: str) -> list[str]:
    return re.findall(r'action="/account/authenticators/([^/"]+)/rename"', html)


def _post(person: MfaPerson, page: TestResponse, credential: str, **fields: str) -> TestResponse:
    """Post ``credential`` (any text) with the hidden fields of ``page``'s passkey form."""
    html = _text(page)
    return person.post(
        passkey_action_on(html), {**passkey_fields_on(html), "credential": credential, **fields}
    )


def _sign_out(person: MfaPerson, clock: FrozenClock) -> None:
    submit(person, person.get("/account"), "/signout")
    clock.advance(120)
    person.pages.clear()


def _stranger(app: Flask, clock: FrozenClock, key: SoftAuthenticator | None) -> MfaPerson:
    """Someone at a fresh browser who knows no username or password: only a key, if any."""
    return MfaPerson(app, "", "", clock=clock, key=key)


def _signin_page(person: MfaPerson, rp: Rp, state: str = "s-1") -> TestResponse:
    return person.open_page(rp.url(state), "/signin")


def _factor_page(person: MfaPerson, rp: Rp, state: str = "s-1") -> TestResponse:
    """The second-factor page after the person's right password."""
    factor = person.follow(person.sign_in(_signin_page(person, rp, state)))
    assert not isinstance(factor, str) and factor.request.path == "/signin/factor"
    return factor


def _passwordless(person: MfaPerson, rp: Rp, state: str = "s-1", **overrides: Any) -> dict[str, Any]:
    """Sign in at the agency with the person's passkey from the sign-in page; the ID token."""
    answered = person.use_key(_signin_page(person, rp, state), **overrides)
    assert answered.status_code == 302, _text(answered)[:400]
    return rp.id_token(person.go(answered.location or ""), state)


def _creation_options(registry: Registry, user_handle: bytes) -> dict[str, Any]:
    """Creation options as any relying party with Hawiya's RP ID could send them (for credentials
    Hawiya never registered)."""
    return {
        "rp": {"id": registry.settings.rp_id, "name": "Elsewhere"},
        "user": {"id": b64url(user_handle), "name": "someone", "displayName": "Someone"},
        "challenge": b64url(os.urandom(32)),
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
    }


def _recreated(key: SoftAuthenticator, credential: Credential, options: dict[str, Any]) -> dict[str, Any]:
    """A registration response to ``options`` that presents ``credential`` (one the key already
    holds) again: what a browser ignoring excludeCredentials, with an authenticator repeating a
    credential id, would post. The "none" attestation signs nothing, so the id is the key's to claim."""
    fresh = key.register({**options, "excludeCredentials": []})
    key.credentials.pop()
    attestation = cbor.decode(from_b64url(fresh["response"]["attestationObject"]))
    assert isinstance(attestation, dict) and attestation["fmt"] == "none"
    head = attestation["authData"][:37] + key.aaguid  # rpIdHash, flags, signCount, AAGUID
    auth_data = head + len(credential.id).to_bytes(2, "big") + credential.id + credential.public_key
    attestation["authData"] = auth_data
    fresh.update(id=credential.id_b64, rawId=credential.id_b64)
    fresh["response"].update(
        attestationObject=b64url(cbor.encode(attestation)), authenticatorData=b64url(auth_data)
    )
    return fresh


def _with_client_data(response: dict[str, Any], client_data: bytes | str) -> str:
    """``response`` with its clientDataJSON replaced (bytes are encoded, text is sent as it is)."""
    value = b64url(client_data) if isinstance(client_data, bytes) else client_data
    return json.dumps({**response, "response": {**response["response"], "clientDataJSON": value}})


@pytest.fixture
def key(registry: Registry) -> SoftAuthenticator:
    """A security key: says it is device-bound (BE=0), verifies its user (a PIN); registered
    without attestation, so nothing proves its hardware."""
    return _key(registry)


@pytest.fixture
def keyholder(citizen: MfaPerson, key: SoftAuthenticator, clock: FrozenClock) -> MfaPerson:
    """The citizen with a security key as her only factor (and its recovery codes), signed out."""
    done = add_passkey_in_account(citizen, key)
    assert done.status_code == 200 and len(citizen.recovery_codes) == 10
    _sign_out(citizen, clock)
    citizen.key = key
    return citizen


# -- registration on the account page --------------------------------------------------------------


def test_a_first_passkey_brings_recovery_codes(
    citizen: MfaPerson, key: SoftAuthenticator, registry: Registry, world: World
) -> None:
    start = secured_submit(citizen, "/account/passkeys/new", label="Blue key")
    html = _text(start)
    options = passkey_options_on(html)
    assert options["rp"] == {"id": registry.settings.rp_id, "name": "Hawiya"}
    assert from_b64url(options["user"]["id"]) == world.citizen_id.encode()  # no personal data
    assert options["attestation"] == "none" and options["excludeCredentials"] == []
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-7, -8, -257]
    assert len(from_b64url(options["challenge"])) == 32
    assert 'value="Blue key"' in html
    fields = {**passkey_fields_on(html), "credential": json.dumps(key.register(options)), "label": "Blue key"}
    done = citizen.post(passkey_action_on(html), fields)
    assert done.status_code == 200 and 'id="recovery-codes"' in _text(done)
    (detail,) = _details(registry, "authenticator.added")
    assert detail["kind"] == "webauthn" and detail["attestation"] == "none"
    assert (detail["synced"], detail["user_verified"], detail["attested"]) == (False, True, False)
    account = _text(citizen.get("/account"))
    assert "<strong>Blue key</strong>" in account
    assert "Security key or passkey on one device" in account
    assert "Recovery codes left: 10 of 10" in account


def test_several_passkeys_each_with_its_own_name(
    citizen: MfaPerson, key: SoftAuthenticator, registry: Registry, world: World, clock: FrozenClock
) -> None:
    add_passkey_in_account(citizen, key, label="Blue key")
    clock.advance(60)  # the account page lists them oldest first
    phone = _key(registry, backup_eligible=True)
    start = secured_submit(citizen, "/account/passkeys/new", label="Phone")
    options = passkey_options_on(_text(start))
    # The key she already registered is excluded: it refuses to make a second credential here.
    assert [c["id"] for c in options["excludeCredentials"]] == [key.credentials[0].id_b64]
    with pytest.raises(CeremonyRefused):
        key.register(options)
    done = _post(citizen, start, json.dumps(phone.register(options)), label="Phone")
    assert done.status_code == 303 and done.location == "/account?done=added"  # no new recovery codes
    account = citizen.get(done.location)
    html = _text(account)
    assert "The authenticator was added." in html
    assert "<strong>Blue key</strong>" in html and "<strong>Phone</strong>" in html
    assert "Security key or passkey on one device" in html
    assert "Passkey that syncs between your devices" in html
    blue, synced = _factor_ids(html)
    renamed = submit(citizen, account, f"/account/authenticators/{synced}/rename", label="Family phone")
    assert renamed.status_code == 303 and renamed.location == "/account?done=renamed"
    removed = submit(citizen, account, f"/account/authenticators/{blue}/remove")
    assert removed.status_code == 303 and removed.location == "/account?done=removed"
    html = _text(citizen.get("/account"))
    assert _factor_ids(html) == [synced]
    assert "<strong>Family phone</strong>" in html and "Blue key" not in html
    (row,) = registry.passkeys.credentials(world.citizen_id)
    assert row.label == "Family phone" and row.backup_eligible is True


def test_the_same_credential_cannot_be_registered_twice(
    app: Flask, citizen: MfaPerson, key: SoftAuthenticator, registry: Registry, clock: FrozenClock
) -> None:
    add_passkey_in_account(citizen, key)
    held = key.credentials[0]
    again = secured_submit(citizen, "/account/passkeys/new", label="Again")
    refused = _post(citizen, again, json.dumps(_recreated(key, held, passkey_options_on(_text(again)))))
    assert refused.status_code == 400
    assert "This passkey is already registered to your account." in _text(refused)
    # Nor can another account claim it (its id is all a "none" registration proves).
    verify_address(registry, "resident", "ravi@example.org")
    resident = MfaPerson(app, "resident", PASSWORD, clock=clock)
    start = secured_submit(resident, "/account/passkeys/new", label="Mine")
    claimed = _post(resident, start, json.dumps(_recreated(key, held, passkey_options_on(_text(start)))))
    assert claimed.status_code == 400
    rejected = audit_events(registry, "authenticator.rejected")
    assert [event["detail"] for event in rejected] == [
        {"kind": "webauthn", "reason": "already_registered"}
    ] * 2
    assert len(audit_events(registry, "authenticator.added")) == 1
    assert 'id="factors"' not in _text(resident.get("/account"))


def test_bad_registration_responses_are_refused(
    citizen: MfaPerson, key: SoftAuthenticator, registry: Registry
) -> None:
    start = secured_submit(citizen, "/account/passkeys/new", label="Blue key")
    first_options = passkey_options_on(_text(start))
    cases: list[tuple[str, Callable[[dict[str, Any]], str], str]] = [
        ("not JSON", lambda options: "{'id':", "malformed"),
        (
            "wrong origin",
            lambda o: json.dumps(key.register(o, origin="https://hawiya.example.net")),
            "wrong_origin",
        ),
        ("wrong RP ID", lambda o: json.dumps(key.register(o, rp_id="example.net")), "wrong_rp_id"),
        (
            "old challenge",
            lambda o: json.dumps(key.register(o, challenge=first_options["challenge"])),
            "wrong_challenge",
        ),
    ]
    page = start
    for name, forge, reason in cases:
        refused = _post(citizen, page, forge(passkey_options_on(_text(page))))
        assert refused.status_code == 400, name
        assert NOT_USED in _text(refused), name
        assert _last(registry, "authenticator.rejected") == {
            "kind": "webauthn",
            "reason": reason,
        }, name
        page = refused  # the page offers a fresh ceremony
    # A ceremony answers once: the first form again finds it spent (the first case used it).
    replayed = _post(citizen, start, json.dumps(key.register(first_options)))
    assert replayed.status_code == 400 and EXPIRED in _text(replayed)
    assert _last(registry, "authenticator.rejected")["reason"] == "expired_ceremony"
    valid = json.dumps(key.register(passkey_options_on(_text(page))))
    assert _post(citizen, page, valid).status_code == 200
    assert len(audit_events(registry, "authenticator.added")) == 1


# -- passwordless sign-in ----------------------------------------------------------------------------


@BOTH_BACKENDS
def test_passwordless_with_an_unattested_security_key_reaches_substantial(
    app: Flask,
    rp: Rp,
    keyholder: MfaPerson,
    key: SoftAuthenticator,
    clock: FrozenClock,
    registry: Registry,
    world: World,
) -> None:
    person = _stranger(app, clock, key)
    page = _signin_page(person, rp)
    options = passkey_options_on(_text(page))
    # Any discoverable credential, and user verification required.
    assert options["allowCredentials"] == [] and options["userVerification"] == "required"
    assert options["rpId"] == registry.settings.rp_id
    assert passkey_fields_on(_text(page))["ix"]  # the parked agency request travels with the form
    answered = person.use_key(page)
    assert (
        answered.status_code == 302
        and answered.location
        and answered.location.startswith("/authorize/resume")
    )
    claims = rp.id_token(person.go(answered.location))
    assert (claims["acr"], claims["amr"]) == (SUBSTANTIAL, ["swk", "user", "pin", "mfa"])
    assert person.pages == []  # no password, no second page: straight back to the agency
    assert audit_events(registry, "signin.succeeded")[0]["subject"] == world.citizen_id
    detail = _last(registry, "signin.succeeded")
    assert (detail["method"], detail["acr"], detail["amr"]) == (
        "webauthn",
        SUBSTANTIAL,
        ["swk", "user", "pin", "mfa"],
    )


@BOTH_BACKENDS
def test_a_synced_passkey_reaches_substantial(
    app: Flask, rp: Rp, citizen: MfaPerson, registry: Registry, clock: FrozenClock
) -> None:
    phone = _key(registry, backup_eligible=True)
    add_passkey_in_account(citizen, phone, label="Phone")
    _sign_out(citizen, clock)
    claims = _passwordless(_stranger(app, clock, phone), rp)
    assert (claims["acr"], claims["amr"]) == (SUBSTANTIAL, ["swk", "user", "pin", "mfa"])


def test_passwordless_needs_user_verification(
    app: Flask, rp: Rp, keyholder: MfaPerson, key: SoftAuthenticator, clock: FrozenClock, registry: Registry
) -> None:
    person = _stranger(app, clock, key)
    refused = person.use_key(_signin_page(person, rp), user_verification=False)
    assert refused.status_code == 401
    assert NOT_USED in _text(refused) and 'id="passkey-form"' in _text(refused)  # and try again
    assert _details(registry, "signin.failed") == [{"method": "webauthn", "reason": "user_verification"}]
    silent = person.get(rp.url("s-2", prompt="none"))
    assert rp.back(silent.location or "", "s-2")["error"] == "login_required"  # nobody signed in


def test_a_removed_passkey_no_longer_signs_in(
    app: Flask, rp: Rp, citizen: MfaPerson, key: SoftAuthenticator, clock: FrozenClock, registry: Registry
) -> None:
    add_passkey_in_account(citizen, key)
    account = citizen.get("/account")
    (ident,) = _factor_ids(_text(account))
    secured_submit(citizen, f"/account/authenticators/{ident}/remove")
    person = _stranger(app, clock, key)
    refused = person.use_key(_signin_page(person, rp))
    assert refused.status_code == 401 and NOT_REGISTERED in _text(refused)
    assert _last(registry, "signin.failed") == {
        "method": "webauthn",
        "reason": "unknown_credential",
    }


# -- second factor and step-up ---------------------------------------------------------------------


@BOTH_BACKENDS
def test_password_and_an_unattested_security_key_reach_substantial(
    keyholder: MfaPerson, key: SoftAuthenticator, rp: Rp, registry: Registry
) -> None:
    factor = _factor_page(keyholder, rp)
    html = _text(factor)
    options = passkey_options_on(html)
    assert [c["id"] for c in options["allowCredentials"]] == [key.credentials[0].id_b64]
    assert options["allowCredentials"][0]["transports"] == ["usb"]
    assert options["userVerification"] == "preferred"
    answered = keyholder.use_key(factor)
    assert answered.status_code == 302
    claims = rp.id_token(keyholder.go(answered.location or ""))
    assert (claims["acr"], claims["amr"]) == (SUBSTANTIAL, ["pwd", "swk", "user", "pin", "mfa"])
    detail = _last(registry, "factor.succeeded")
    assert (detail["method"], detail["acr"]) == ("webauthn", SUBSTANTIAL)


def test_a_key_that_does_not_verify_the_user_reaches_substantial(
    citizen: MfaPerson, rp: Rp, registry: Registry, clock: FrozenClock
) -> None:
    plain = _key(registry, user_verification=False)
    add_passkey_in_account(citizen, plain)
    _sign_out(citizen, clock)
    citizen.key = plain
    claims = rp.id_token(citizen.go(rp.url()))
    assert _paths(citizen)[:2] == ["/signin", "/signin/factor"]
    assert (claims["acr"], claims["amr"]) == (SUBSTANTIAL, ["pwd", "swk", "user", "mfa"])


@BOTH_BACKENDS
def test_an_unattested_security_key_cannot_step_up_to_high(
    citizen: MfaPerson, key: SoftAuthenticator, rp: Rp, registry: Registry, clock: FrozenClock
) -> None:
    add_app_in_account(citizen)
    assert add_passkey_in_account(citizen, key).status_code == 303  # a second factor: no new codes
    _sign_out(citizen, clock)
    citizen.key = key
    first = rp.id_token(citizen.go(rp.url("first")), "first")
    assert (first["acr"], first["amr"]) == (SUBSTANTIAL, ["pwd", "otp", "mfa"])  # she typed a code
    citizen.pages.clear()
    # (Adding the key in the account area stepped that session up with her app.)
    stepped = len(audit_events(registry, "session.stepped_up"))
    # The key says BE=0 and UV, as a hardware key would; nothing proves it, so nothing she holds
    # reaches high and the agency is told at once (test_high_assurance.py: the attested step-up).
    location = citizen.go(rp.url("up", acr_values=HIGH))
    assert rp.back(location, "up")["error"] == "unmet_authentication_requirements"
    assert _paths(citizen) == []
    assert len(audit_events(registry, "session.stepped_up")) == stepped


def test_an_app_alone_cannot_reach_high(citizen: MfaPerson, rp: Rp, clock: FrozenClock) -> None:
    add_app_in_account(citizen)
    _sign_out(citizen, clock)
    location = citizen.go(rp.url(acr_values=HIGH))
    assert rp.back(location)["error"] == "unmet_authentication_requirements"


def test_a_synced_passkey_alone_cannot_reach_high(
    app: Flask, citizen: MfaPerson, rp: Rp, registry: Registry, clock: FrozenClock
) -> None:
    phone = _key(registry, backup_eligible=True)
    add_passkey_in_account(citizen, phone)
    _sign_out(citizen, clock)
    person = _stranger(app, clock, phone)
    assert _passwordless(person, rp)["acr"] == SUBSTANTIAL
    response = person.get(rp.url("up", acr_values=HIGH))
    assert rp.back(response.location or "", "up")["error"] == "unmet_authentication_requirements"


# -- the signature counter and the backup flags ------------------------------------------------------


@pytest.mark.parametrize("reported", [0, 1])
def test_a_counter_that_does_not_move_forward_is_refused(
    app: Flask,
    rp: Rp,
    keyholder: MfaPerson,
    key: SoftAuthenticator,
    clock: FrozenClock,
    registry: Registry,
    world: World,
    reported: int,
) -> None:
    assert _passwordless(_stranger(app, clock, key), rp)["acr"] == SUBSTANTIAL  # the counter is now 1
    (row,) = registry.passkeys.credentials(world.citizen_id)
    assert row.sign_count == 1 and row.last_used_at is not None
    # A clone of the key, whose counter lags behind (or repeats), is refused.
    clone = _stranger(app, clock, key)
    refused = clone.use_key(_signin_page(clone, rp, "s-2"), sign_count=reported)
    assert refused.status_code == 401 and NOT_USED in _text(refused)
    assert _last(registry, "signin.failed") == {
        "method": "webauthn",
        "reason": "stale_counter",
    }
    (row,) = registry.passkeys.credentials(world.citizen_id)
    assert row.sign_count == 1
    # As a second factor too.
    factor = _factor_page(keyholder, rp, "s-3")
    assert keyholder.use_key(factor, sign_count=1).status_code == 401
    assert _last(registry, "factor.failed") == {
        "method": "webauthn",
        "reason": "stale_counter",
    }


@pytest.mark.parametrize("synced", [False, True])
def test_a_credential_whose_backup_eligibility_changed_is_refused(
    app: Flask, rp: Rp, citizen: MfaPerson, registry: Registry, clock: FrozenClock, world: World, synced: bool
) -> None:
    key = _key(registry, backup_eligible=synced)
    add_passkey_in_account(citizen, key)
    _sign_out(citizen, clock)
    person = _stranger(app, clock, key)
    refused = person.use_key(_signin_page(person, rp), backup_eligible=not synced)
    assert refused.status_code == 401
    assert _last(registry, "signin.failed") == {
        "method": "webauthn",
        "reason": "backup_eligibility_changed",
    }
    (row,) = registry.passkeys.credentials(world.citizen_id)
    assert row.backup_eligible is synced and row.last_used_at is None and row.sign_count == 0


def test_the_backup_state_is_kept_up_to_date(
    app: Flask, rp: Rp, citizen: MfaPerson, registry: Registry, clock: FrozenClock, world: World
) -> None:
    phone = _key(registry, backup_eligible=True, backup_state=False)  # not backed up yet
    add_passkey_in_account(citizen, phone)
    (row,) = registry.passkeys.credentials(world.citizen_id)
    assert (row.backup_eligible, row.backup_state) == (True, False)
    _sign_out(citizen, clock)
    phone.backup_state = True  # the provider has since synced it
    assert _passwordless(_stranger(app, clock, phone), rp)["acr"] == SUBSTANTIAL
    (row,) = registry.passkeys.credentials(world.citizen_id)
    assert (row.backup_eligible, row.backup_state) == (True, True)


# -- bad input ---------------------------------------------------------------------------------------


def test_bad_passwordless_responses_are_refused_and_audited(
    app: Flask,
    rp: Rp,
    keyholder: MfaPerson,
    key: SoftAuthenticator,
    clock: FrozenClock,
    registry: Registry,
    world: World,
) -> None:
    stranger_key = _key(registry)
    stranger_key.register(_creation_options(registry, world.citizen_id.encode()))
    person = _stranger(app, clock, key)
    page = _signin_page(person, rp)
    registration = _recreated(key, key.credentials[0], _creation_options(registry, world.citizen_id.encode()))
    unsigned = {
        "id": key.credentials[0].id_b64,
        "response": {"userHandle": b64url(world.citizen_id.encode())},
    }

    def signed(**overrides: Any) -> Callable[[dict[str, Any]], str]:
        return lambda options: json.dumps(key.authenticate(options, **overrides))

    cases: list[tuple[str, Callable[[dict[str, Any]], str], str, str]] = [
        ("not JSON", lambda o: "{not json", "malformed", NOT_USED),
        ("empty", lambda o: "", "malformed", NOT_USED),
        ("a JSON list", lambda o: "[1, 2, 3]", "malformed", NOT_USED),
        ("no signature", lambda o: json.dumps(unsigned), "malformed", NOT_USED),
        (
            "clientDataJSON not base64",
            lambda o: _with_client_data(key.authenticate(o), "@@ not base64 €"),
            "malformed",  # py_webauthn cannot even decode the response
            NOT_USED,
        ),
        (
            "clientDataJSON not JSON",
            lambda o: _with_client_data(key.authenticate(o), b"<html>"),
            "malformed",
            NOT_USED,
        ),
        ("wrong origin", signed(origin="https://hawiya.example.net"), "wrong_origin", NOT_USED),
        ("wrong RP ID", signed(rp_id="example.net"), "wrong_rp_id", NOT_USED),
        ("another challenge", signed(challenge=b64url(os.urandom(32))), "wrong_challenge", NOT_USED),
        (
            "unknown credential",
            lambda o: json.dumps(stranger_key.authenticate(o)),
            "unknown_credential",
            NOT_REGISTERED,
        ),
        ("a registration response", lambda o: json.dumps(registration), "user_handle", NOT_USED),
        (
            "a registration's client data",
            lambda o: _with_client_data(
                key.authenticate(o), from_b64url(registration["response"]["clientDataJSON"])
            ),
            "wrong_type",
            NOT_USED,
        ),
    ]
    for name, forge, reason, message in cases:
        refused = _post(person, page, forge(passkey_options_on(_text(page))))
        assert refused.status_code == 401, name
        assert message in _text(refused), name
        assert _last(registry, "signin.failed") == {
            "method": "webauthn",
            "reason": reason,
        }, name
        page = refused  # a fresh ceremony to try again
    # A second-factor ceremony (made for her account, user verification only preferred), answered
    # and posted here: it is not a passwordless one.
    factor = _factor_page(keyholder, rp, "s-2")
    answer = json.dumps(key.authenticate(passkey_options_on(_text(factor))))
    refused = _post(person, page, answer, ceremony=passkey_fields_on(_text(factor))["ceremony"])
    assert refused.status_code == 401 and EXPIRED in _text(refused)
    assert _last(registry, "signin.failed") == {"method": "webauthn", "reason": "expired_ceremony"}
    page = refused
    # The form posted twice: the second finds its ceremony spent.
    fields = {
        **passkey_fields_on(_text(page)),
        "credential": json.dumps(key.authenticate(passkey_options_on(_text(page)))),
    }
    assert person.post("/signin/passkey", fields).status_code == 302
    # Signing in renewed the form session: the replay carries a CSRF token of the new one.
    fields["csrf_token"] = passkey_fields_on(_text(person.get("/signin")))["csrf_token"]
    replayed = person.post("/signin/passkey", fields)
    assert replayed.status_code == 401 and EXPIRED in _text(replayed)
    assert _last(registry, "signin.failed") == {
        "method": "webauthn",
        "reason": "expired_ceremony",
    }
    methods = [detail.get("method") for detail in _details(registry, "signin.succeeded")]
    assert methods.count("webauthn") == 1


def test_bad_second_factor_responses_are_refused_and_audited(
    app: Flask,
    rp: Rp,
    keyholder: MfaPerson,
    key: SoftAuthenticator,
    clock: FrozenClock,
    registry: Registry,
    world: World,
) -> None:
    resident_key = _key(registry)
    verify_address(registry, "resident", "ravi@example.org")
    resident = MfaPerson(app, "resident", PASSWORD, clock=clock)
    add_passkey_in_account(resident, resident_key)
    _sign_out(resident, clock)
    stranger_key = _key(registry)
    stranger_key.register(_creation_options(registry, b"nobody"))
    factor = _factor_page(keyholder, rp)
    theirs = _factor_page(resident, rp, "s-2")  # the resident's own ceremony

    def by(other: SoftAuthenticator) -> Callable[[dict[str, Any]], str]:
        return lambda options: json.dumps(
            other.authenticate(options, credential_id=other.credentials[0].id_b64)
        )

    cases: list[tuple[str, Callable[[dict[str, Any]], str], str, str]] = [
        ("not JSON", lambda o: "{not json", "malformed", NOT_USED),
        (
            "clientDataJSON not JSON",
            lambda o: _with_client_data(key.authenticate(o), b"\xff\xfe"),
            "malformed",
            NOT_USED,
        ),
        (
            "wrong origin",
            lambda o: json.dumps(key.authenticate(o, origin="http://localhost:8001")),
            "wrong_origin",
            NOT_USED,
        ),
        ("unknown credential", by(stranger_key), "unknown_credential", NOT_REGISTERED),
        ("another account's key", by(resident_key), "unknown_credential", NOT_REGISTERED),
    ]
    page = factor
    for name, forge, reason, message in cases:
        refused = _post(keyholder, page, forge(passkey_options_on(_text(page))))
        assert refused.status_code == 401, name
        assert message in _text(refused), name
        failed = audit_events(registry, "factor.failed")[0]
        assert failed["subject"] == world.citizen_id, name
        assert failed["detail"] == {"method": "webauthn", "reason": reason}, name
        page = refused
    # The resident's ceremony, answered by the citizen's key in the citizen's sign-in.
    ceremony = passkey_fields_on(_text(theirs))["ceremony"]
    answer = json.dumps(key.authenticate(passkey_options_on(_text(page))))
    refused = _post(keyholder, page, answer, ceremony=ceremony)
    assert refused.status_code == 401 and EXPIRED in _text(refused)
    assert _last(registry, "factor.failed") == {
        "method": "webauthn",
        "reason": "expired_ceremony",
    }
    # After all that, her own key still works (six failures are below the limit).
    answered = keyholder.use_key(refused)
    assert rp.id_token(keyholder.go(answered.location or ""))["acr"] == SUBSTANTIAL


def test_forms_without_a_csrf_token_are_refused(
    app: Flask, rp: Rp, keyholder: MfaPerson, key: SoftAuthenticator, clock: FrozenClock, registry: Registry
) -> None:
    def without_token(person: MfaPerson, page: TestResponse, credential: dict[str, Any]) -> TestResponse:
        html = _text(page)
        fields = {**passkey_fields_on(html), "credential": json.dumps(credential)}
        del fields["csrf_token"]
        return person.post(passkey_action_on(html), fields)

    person = _stranger(app, clock, key)
    page = _signin_page(person, rp)
    refused = without_token(person, page, key.authenticate(passkey_options_on(_text(page))))
    assert refused.status_code == 400 and "This form has expired" in _text(refused)
    factor = _factor_page(keyholder, rp, "s-2")
    refused = without_token(keyholder, factor, key.authenticate(passkey_options_on(_text(factor))))
    assert refused.status_code == 400 and "This form has expired" in _text(refused)
    start = secured_submit(keyholder, "/account/passkeys/new", label="Spare")
    refused = without_token(keyholder, start, _key(registry).register(passkey_options_on(_text(start))))
    assert refused.status_code == 400 and "This form has expired" in _text(refused)
    # Only open_account's sign-in (password and key) went through; nothing else was kept.
    assert "webauthn" not in [detail.get("method") for detail in _details(registry, "signin.succeeded")]
    assert len(_details(registry, "factor.succeeded")) == 1
    assert len(_details(registry, "authenticator.added")) == 1


def test_an_oversized_credential_is_refused_without_a_server_error(
    app: Flask,
    rp: Rp,
    keyholder: MfaPerson,
    key: SoftAuthenticator,
    clock: FrozenClock,
    registry: Registry,
    world: World,
) -> None:
    person = _stranger(app, clock, key)
    page = _signin_page(person, rp)
    # Over the 64 KiB a form may carry: refused before any view reads it.
    huge = _post(person, page, json.dumps({"id": "A" * (65 * 1024)}))
    assert huge.status_code == 413 and "The request could not be handled" in _text(huge)
    assert _details(registry, "signin.failed") == []
    # Just under it: read, refused as malformed, audited.
    handle = b64url(world.citizen_id.encode())
    big = {"id": key.credentials[0].id_b64, "response": {"userHandle": handle}, "pad": "A" * (60 * 1024)}
    refused = _post(person, page, json.dumps(big))
    assert refused.status_code == 401 and NOT_USED in _text(refused)
    assert _last(registry, "signin.failed")["reason"] == "malformed"


@pytest.mark.parametrize("where", ["signin", "factor", "account"])
def test_deeply_nested_json_is_refused_without_a_server_error(
    app: Flask,
    rp: Rp,
    keyholder: MfaPerson,
    key: SoftAuthenticator,
    clock: FrozenClock,
    registry: Registry,
    where: str,
) -> None:
    nested = "[" * 5000 + "]" * 5000
    if where == "signin":
        person = _stranger(app, clock, key)
        refused = _post(person, _signin_page(person, rp), nested)
        expected, event = 401, "signin.failed"
    elif where == "factor":
        refused = _post(keyholder, _factor_page(keyholder, rp), nested)
        expected, event = 401, "factor.failed"
    else:
        start = secured_submit(keyholder, "/account/passkeys/new", label="x")
        refused = _post(keyholder, start, nested)
        expected, event = 400, "authenticator.rejected"
    assert refused.status_code == expected, _text(refused)[:300]
    assert _last(registry, event)["reason"] == "malformed"


# -- throttling and logs -----------------------------------------------------------------------------


def test_failed_passkey_factors_are_throttled(keyholder: MfaPerson, rp: Rp, registry: Registry) -> None:
    page = _factor_page(keyholder, rp)
    limit = registry.settings.factor_max_failures
    for _ in range(limit):
        page = keyholder.use_key(page, origin="https://hawiya.example.net")
        assert page.status_code == 401
    throttled = keyholder.use_key(page)  # now even the right key waits
    assert throttled.status_code == 429 and "Too many" in _text(throttled)
    assert len(audit_events(registry, "factor.failed")) == limit
    assert len(audit_events(registry, "factor.throttled")) == 1
    assert audit_events(registry, "factor.succeeded") == []


def test_failed_passwordless_sign_ins_are_throttled(
    app: Flask, rp: Rp, keyholder: MfaPerson, key: SoftAuthenticator, clock: FrozenClock, registry: Registry
) -> None:
    person = _stranger(app, clock, key)
    page = _signin_page(person, rp)
    limit = registry.settings.signin_max_failures
    for _ in range(limit):
        page = person.use_key(page, user_verification=False)
        assert page.status_code == 401
    throttled = person.use_key(page)
    assert throttled.status_code == 429 and "Too many failed attempts" in _text(throttled)
    assert len(audit_events(registry, "signin.throttled")) == 1
    clock.advance(registry.settings.signin_throttle_window + 1)
    assert _passwordless(_stranger(app, clock, key), rp, "s-2")["acr"] == SUBSTANTIAL


def test_no_challenge_or_credential_reaches_the_logs(
    app: Flask,
    rp: Rp,
    citizen: MfaPerson,
    key: SoftAuthenticator,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="idp")
    start = secured_submit(citizen, "/account/passkeys/new", label="Blue key")
    creation = passkey_options_on(_text(start))
    registration = key.register(creation)
    assert _post(citizen, start, json.dumps(registration)).status_code == 200
    _sign_out(citizen, clock)
    person = _stranger(app, clock, key)
    page = _signin_page(person, rp)
    refused = person.use_key(page, origin="https://hawiya.example.net")
    request = passkey_options_on(_text(refused))
    assertion = key.authenticate(request)
    assert _post(person, refused, json.dumps(assertion)).status_code == 302
    leaks = [
        creation["challenge"],
        request["challenge"],
        passkey_fields_on(_text(start))["ceremony"],
        passkey_fields_on(_text(refused))["ceremony"],
        json.dumps(registration),
        registration["response"]["attestationObject"],
        registration["response"]["clientDataJSON"],
        json.dumps(assertion),
        assertion["response"]["signature"],
        assertion["response"]["clientDataJSON"],
    ]
    assert caplog.records  # the audit trail did log
    for leak in leaks:
        assert leak not in caplog.text
