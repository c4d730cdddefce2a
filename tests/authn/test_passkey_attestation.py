"""Attested security keys for staff (``HAWIYA_STAFF_ATTESTATION=direct``): a staff member's key must
prove, with a packed attestation chain, that it was made by a model the operator trusts (the PEM
roots in ``HAWIYA_ATTESTATION_TRUST_ANCHORS``); people are never asked for attestation. The
attestation CAs here are made by the test, the statements signed by ``SoftAuthenticator``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from werkzeug.test import TestResponse

from idp.app import create_app
from idp.clock import FrozenClock
from idp.errors import ConfigurationError
from idp.registry import Registry
from idp.settings import Settings
from tests.conftest import Backend, initialised, make_registry, make_settings
from tests.support.audit import audit_events
from tests.support.authenticator import Attestation, SoftAuthenticator
from tests.support.mfa import (
    MfaPerson,
    Rp,
    add_passkey_in_account,
    open_account,
    passkey_action_on,
    passkey_fields_on,
    passkey_options_on,
    secured_submit,
    submit,
)

NOT_ACCEPTED = "This security key is not one the service accepts for your account."


def _key(registry: Registry, **kwargs: Any) -> SoftAuthenticator:
    settings = registry.settings
    return SoftAuthenticator(rp_id=settings.rp_id, origin=settings.webauthn_origin, **kwargs)


def _details(registry: Registry, event: str) -> list[dict[str, Any]]:
    return [cast(dict[str, Any], row["detail"]) for row in audit_events(registry, event)]


def _text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def _register(person: MfaPerson, page: TestResponse, key: SoftAuthenticator) -> TestResponse:
    """Answer the registration ceremony of ``page`` with ``key`` and post it."""
    html = _text(page)
    fields = {**passkey_fields_on(html), "credential": json.dumps(key.register(passkey_options_on(html)))}
    return person.post(passkey_action_on(html), fields)


@pytest.fixture
def issuer() -> Attestation:
    """The attestation CA of the security keys the agency issues (and its model's certificate)."""
    return Attestation.issued_by_new_ca("Agency Key Maker CA")


@pytest.fixture
def settings(tmp_path: Path, backend: Backend, issuer: Attestation) -> Settings:
    """Staff keys must be attested by ``issuer``'s CA, the only trust anchor."""
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(issuer.ca_pem())
    return make_settings(
        tmp_path, backend, staff_attestation="direct", attestation_trust_anchors=str(anchors)
    )


@pytest.fixture
def staff_account(staff: MfaPerson) -> TestResponse:
    """The staff member's account page (an authenticator app enrolled on the way: staff must)."""
    account = open_account(staff)
    assert staff.secret is not None and "/signin/enrol" in [page.request.path for page in staff.pages]
    return account


def test_staff_register_a_key_their_agency_issued(
    staff: MfaPerson, staff_account: TestResponse, issuer: Attestation, registry: Registry
) -> None:
    start = submit(staff, staff_account, "/account/passkeys/new", label="Agency key")
    assert passkey_options_on(_text(start))["attestation"] == "direct"
    done = _register(staff, start, _key(registry, attestation=issuer))
    assert done.status_code == 303 and done.location == "/account?done=added"
    (added,) = [
        detail for detail in _details(registry, "authenticator.added") if detail["kind"] == "webauthn"
    ]
    assert (added["attested"], added["attestation"]) == (True, "packed")
    assert "Security key or passkey on one device" in _text(staff.get("/account"))


def test_staff_keys_without_a_trusted_chain_are_refused(
    staff: MfaPerson, staff_account: TestResponse, registry: Registry
) -> None:
    start = submit(staff, staff_account, "/account/passkeys/new", label="My own key")
    cases = [
        ("another maker's CA", _key(registry, attestation=Attestation.issued_by_new_ca("Other Maker CA"))),
        ("no attestation", _key(registry)),
        ("self attestation", _key(registry, self_attestation=True)),
    ]
    page = start
    for name, key in cases:
        refused = _register(staff, page, key)
        assert refused.status_code == 400, name
        assert NOT_ACCEPTED in _text(refused), name
        assert _details(registry, "authenticator.rejected")[0] == {
            "kind": "webauthn",
            "reason": "attestation",
        }, name
        page = refused  # a fresh ceremony to try again
    assert len(_details(registry, "authenticator.rejected")) == len(cases)
    assert [detail["kind"] for detail in _details(registry, "authenticator.added")] == ["totp"]


@pytest.mark.parametrize(
    ("synced", "level", "amr"),
    [
        (False, "urn:hawiya:loa:high", ["hwk", "user", "pin", "mfa"]),
        # Attested, but backup-eligible: a synced key is exportable, whoever made it.
        (True, "urn:hawiya:loa:substantial", ["swk", "user", "pin", "mfa"]),
    ],
    ids=["device-bound", "synced"],
)
def test_an_attested_staff_key_is_proven_hardware_only_when_device_bound(
    app: Flask,
    rp: Rp,
    staff: MfaPerson,
    staff_account: TestResponse,
    issuer: Attestation,
    registry: Registry,
    clock: FrozenClock,
    synced: bool,
    level: str,
    amr: list[str],
) -> None:
    key = _key(registry, attestation=issuer, backup_eligible=synced)
    start = submit(staff, staff_account, "/account/passkeys/new", label="Agency key")
    assert _register(staff, start, key).status_code == 303
    (added,) = [d for d in _details(registry, "authenticator.added") if d["kind"] == "webauthn"]
    assert (added["attested"], added["hardware_attested"], added["synced"]) == (True, not synced, synced)
    submit(staff, staff.get("/account"), "/signout")
    clock.advance(120)
    person = MfaPerson(app, "", "", clock=clock, key=key)
    answered = person.use_key(person.open_page(rp.url(), "/signin"))
    assert answered.status_code == 302
    claims = rp.id_token(person.go(answered.location or ""))
    assert (claims["acr"], claims["amr"]) == (level, amr)


def test_people_are_never_asked_for_attestation(citizen: MfaPerson, registry: Registry) -> None:
    start = secured_submit(citizen, "/account/passkeys/new", label="Phone")
    assert passkey_options_on(_text(start))["attestation"] == "none"
    done = add_passkey_in_account(citizen, _key(registry, backup_eligible=True), label="Phone")
    assert done.status_code == 200 and len(citizen.recovery_codes) == 10
    (added,) = _details(registry, "authenticator.added")
    assert (added["attested"], added["attestation"], added["synced"]) == (False, "none", True)


# -- settings ------------------------------------------------------------------------------------------


def test_direct_attestation_needs_a_trust_anchor_file(tmp_path: Path, backend: Backend) -> None:
    with pytest.raises(ConfigurationError, match="ATTESTATION_TRUST_ANCHORS"):
        make_settings(tmp_path, backend, staff_attestation="direct")
    with pytest.raises(ConfigurationError, match="ATTESTATION_TRUST_ANCHORS"):
        make_settings(
            tmp_path,
            backend,
            staff_attestation="direct",
            attestation_trust_anchors=str(tmp_path / "missing.pem"),
        )
    with pytest.raises(ConfigurationError, match="STAFF_ATTESTATION"):
        make_settings(tmp_path, backend, staff_attestation="indirect")


@pytest.mark.parametrize("content", ["empty", "not PEM", "a private key only"])
def test_a_trust_anchor_file_without_a_certificate_is_refused(
    tmp_path: Path, backend: Backend, content: str
) -> None:
    anchors = tmp_path / "anchors.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    anchors.write_bytes(
        {
            "empty": b"",
            "not PEM": b"these are the agency's roots\n",
            "a private key only": key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        }[content]
    )
    settings = make_settings(
        tmp_path, backend, staff_attestation="direct", attestation_trust_anchors=str(anchors)
    )
    registry = make_registry(settings)
    try:
        with pytest.raises(ConfigurationError):
            registry.passkeys  # noqa: B018 - building the service reads the anchors
    finally:
        registry.close()


def test_a_trust_anchor_file_without_a_certificate_stops_the_app_from_starting(
    tmp_path: Path, backend: Backend
) -> None:
    # Like a wrong master key: the operator must learn at start-up, not from every sign-in page
    # answering 500 (and showing the file's path to whoever opens it).
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(b"these are the agency's roots\n")
    settings = make_settings(
        tmp_path, backend, staff_attestation="direct", attestation_trust_anchors=str(anchors)
    )
    registry = initialised(settings)
    try:
        with pytest.raises(ConfigurationError):
            create_app(registry=registry, start_schedule=False)
    finally:
        registry.close()
