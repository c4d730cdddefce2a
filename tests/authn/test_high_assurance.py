"""``high`` only for proven hardware: a WebAuthn credential reaches ``urn:hawiya:loa:high`` (and
``amr`` ``hwk``) only when a verified attestation chain proved a device-bound key with user
verification (NIST SP 800-63B-4 AAL3). What an authenticator says of itself (backup-eligible 0,
user verified) proves nothing: any program can set those bits, as ``SoftAuthenticator`` does here.

The proof comes from the account page's second registration, "security key for high-assurance
services": direct attestation, user verification required, the chain checked against the anchors
for the key's model (a FIDO MDS3 BLOB the test signs with its own MDS root, or the operator's PEM
roots) and the AAGUID policy. The attestation CAs and the BLOBs are made by the test
(``Attestation``, ``MetadataService``); ``SoftAuthenticator`` signs the statements.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from alembic import command
from alembic.config import Config
from flask import Flask
from sqlalchemy import insert, text
from werkzeug.test import TestResponse

from idp.authn.assurance import factor_level, lost_high, passkey_amr, passkey_level
from idp.authn.factors import factor_of
from idp.clock import FrozenClock
from idp.registry import Registry
from idp.settings import Settings
from idp.storage.db import MIGRATIONS, Database
from idp.storage.models import Account
from idp.storage.repositories.authenticators import AuthenticatorRepository
from tests.conftest import BOTH_BACKENDS, Backend, World, make_settings
from tests.support.audit import audit_events
from tests.support.authenticator import Attestation, SoftAuthenticator
from tests.support.mds import MetadataService, mds_entry
from tests.support.mfa import (
    MfaPerson,
    Rp,
    add_app_in_account,
    add_passkey_in_account,
    add_security_key_in_account,
    open_account,
    passkey_action_on,
    passkey_fields_on,
    passkey_options_on,
    secured_submit,
    submit,
)
from tests.support.person import hidden_fields

LOW = "urn:hawiya:loa:low"
SUBSTANTIAL = "urn:hawiya:loa:substantial"
HIGH = "urn:hawiya:loa:high"
#: The model of the agency's security keys, and another model.
AAGUID = uuid.UUID("6d44ba9b-f6ec-2e49-b930-0c8fe920cb73").bytes
OTHER_AAGUID = uuid.UUID("2fc0579f-8113-47ea-b116-bb5a8db9202a").bytes
NOT_PROVEN = "The service could not verify who made this security key"
CANNOT_REGISTER = "This service cannot register security keys for high-assurance services here"


def _key(registry: Registry, **kwargs: Any) -> SoftAuthenticator:
    settings = registry.settings
    return SoftAuthenticator(rp_id=settings.rp_id, origin=settings.webauthn_origin, **kwargs)


def _attested(registry: Registry, maker: Attestation, **kwargs: Any) -> SoftAuthenticator:
    """A security key of ``maker``'s model, with packed attestation by ``maker``'s certificate."""
    return _key(registry, aaguid=maker.aaguid or bytes(16), attestation=maker, **kwargs)


def _details(registry: Registry, event: str) -> list[dict[str, Any]]:
    return [cast(dict[str, Any], row["detail"]) for row in audit_events(registry, event)]


def _text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def _paths(person: MfaPerson) -> list[str]:
    return [page.request.path for page in person.pages]


def _sign_out(person: MfaPerson, clock: FrozenClock) -> None:
    submit(person, person.get("/account"), "/signout")
    clock.advance(120)
    person.pages.clear()


def _passwordless(
    app: Flask, rp: Rp, clock: FrozenClock, key: SoftAuthenticator, state: str = "s-1"
) -> dict[str, Any]:
    """Someone at a fresh browser with only ``key`` signs in at the agency; the ID token's claims."""
    person = MfaPerson(app, "", "", clock=clock, key=key)
    answered = person.use_key(person.open_page(rp.url(state), "/signin"))
    assert answered.status_code == 302, answered.get_data(as_text=True)[:400]
    return rp.id_token(person.go(answered.location or ""), state)


def _csrf(page: TestResponse) -> str:
    return hidden_fields(_text(page))["csrf_token"]


def _refused(registry: Registry, response: TestResponse, reason: str, message: str) -> None:
    """The high-assurance page refused the key: 400, the page says why, the audit says ``reason``."""
    assert response.status_code == 400, _text(response)[:400]
    assert message in _text(response)
    assert 'id="passkey-form"' in _text(response)  # and offers a fresh ceremony
    assert _details(registry, "authenticator.rejected")[0] == {"kind": "webauthn", "reason": reason}
    assert [d for d in _details(registry, "authenticator.added") if d["kind"] == "webauthn"] == []


# -- the trust anchors each test runs with ---------------------------------------------------------


@pytest.fixture
def maker() -> Attestation:
    """The attestation CA of the agency's security key model (and one key's certificate)."""
    return Attestation.issued_by_new_ca("Hawiya Test Key Maker CA", aaguid=AAGUID)


@pytest.fixture
def mds() -> MetadataService:
    """The test's FIDO Metadata Service: its root and BLOB-signing certificate."""
    return MetadataService.new()


@pytest.fixture(params=["certified"])
def entries(request: pytest.FixtureRequest, maker: Attestation) -> list[dict[str, Any]]:
    """The BLOB's entries: the maker's model, certified (parametrize indirectly for others)."""
    kind = request.param
    if kind == "certified":
        return [mds_entry(AAGUID, [maker.ca_cert])]
    if kind == "revoked":
        return [mds_entry(AAGUID, [maker.ca_cert], statuses=("FIDO_CERTIFIED_L2", "REVOKED"))]
    if kind == "uv bypass":
        return [mds_entry(AAGUID, [maker.ca_cert], statuses=("FIDO_CERTIFIED", "USER_VERIFICATION_BYPASS"))]
    if kind == "compromised":
        return [mds_entry(AAGUID, [maker.ca_cert], compromised=[maker.leaf_cert])]
    if kind == "software":
        return [mds_entry(AAGUID, [maker.ca_cert], key_protection=("software",))]
    if kind == "another model's root":
        # The maker's root is listed, but for another AAGUID: not an anchor for the key's model.
        return [mds_entry(OTHER_AAGUID, [maker.ca_cert])]
    raise AssertionError(kind)


@pytest.fixture(params=["mds"])
def anchors(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    maker: Attestation,
    mds: MetadataService,
    entries: list[dict[str, Any]],
) -> dict[str, str]:
    """Where the trust anchors come from: the FIDO metadata BLOB (default), the operator's PEM
    roots (``pem``), or nowhere (``none``)."""
    if request.param == "none":
        return {}
    if request.param == "pem":
        roots = tmp_path / "anchors.pem"
        roots.write_bytes(maker.ca_pem())
        return {"attestation_trust_anchors": str(roots)}
    blob, root = mds.write(tmp_path, entries)
    return {"fido_mds_blob": str(blob), "fido_mds_root": str(root)}


@pytest.fixture(params=[{}])
def policy(request: pytest.FixtureRequest) -> dict[str, str]:
    """The AAGUID policy settings (none by default)."""
    return cast(dict[str, str], request.param)


@pytest.fixture
def settings(tmp_path: Path, backend: Backend, anchors: dict[str, str], policy: dict[str, str]) -> Settings:
    """Settings with the test's trust anchors and AAGUID policy."""
    return make_settings(tmp_path, backend, **anchors, **policy)


# -- the attack ------------------------------------------------------------------------------------


@BOTH_BACKENDS
@pytest.mark.parametrize("anchors", ["none", "mds"], indirect=True)
def test_a_key_made_in_software_that_claims_to_be_hardware_stops_at_substantial(
    app: Flask, rp: Rp, citizen: MfaPerson, registry: Registry, clock: FrozenClock
) -> None:
    # A credential made in Python: attestation "none", flags UP and UV, not backup-eligible: it
    # *says* it is a device-bound key that verified its user. Nothing proves it.
    forged = _key(registry, backup_eligible=False, user_verification=True)
    add_passkey_in_account(citizen, forged, label="Made in Python")
    (added,) = [d for d in _details(registry, "authenticator.added") if d["kind"] == "webauthn"]
    assert (added["attestation"], added["synced"], added["user_verified"]) == ("none", False, True)
    _sign_out(citizen, clock)

    claims = _passwordless(app, rp, clock, forged)
    assert claims["acr"] == SUBSTANTIAL
    assert claims["amr"] == ["swk", "user", "pin", "mfa"]
    assert "hwk" not in claims["amr"]
    signed_in = _details(registry, "signin.succeeded")[0]
    assert (signed_in["method"], signed_in["acr"]) == ("webauthn", SUBSTANTIAL)
    assert "hwk" not in signed_in["amr"]
    # Nor can the agency get high by asking: the person holds nothing that reaches it.
    person = MfaPerson(app, "", "", clock=clock, key=forged)
    person.use_key(person.open_page(rp.url("s-2"), "/signin"))
    asked = person.get(rp.url("s-3", acr_values=HIGH, prompt="none"))
    assert rp.back(asked.location or "", "s-3")["error"] == "unmet_authentication_requirements"


# -- the rule ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backup_eligible", "user_verified", "hardware_attested", "level", "key"),
    [
        (False, True, True, HIGH, "hwk"),  # attested, device-bound, user verified: AAL3
        (False, False, True, SUBSTANTIAL, "hwk"),  # proven hardware, but no user verification
        (True, True, True, SUBSTANTIAL, "swk"),  # synced: exportable, attested or not
        (False, True, False, SUBSTANTIAL, "swk"),  # the flags alone: nothing proven
        (True, True, False, SUBSTANTIAL, "swk"),
        (False, False, False, SUBSTANTIAL, "swk"),
    ],
)
def test_what_a_webauthn_credential_is_worth(
    backup_eligible: bool, user_verified: bool, hardware_attested: bool, level: str, key: str
) -> None:
    flags = {
        "backup_eligible": backup_eligible,
        "user_verified": user_verified,
        "hardware_attested": hardware_attested,
    }
    assert passkey_level(**flags) == level
    assert passkey_amr(**flags)[0] == key


# -- the high-assurance registration -----------------------------------------------------------------


@BOTH_BACKENDS
@pytest.mark.parametrize("anchors", ["mds", "pem"], indirect=True)
def test_an_attested_security_key_signs_in_passwordless_at_high(
    app: Flask,
    rp: Rp,
    citizen: MfaPerson,
    maker: Attestation,
    registry: Registry,
    clock: FrozenClock,
    world: Any,
) -> None:
    start = secured_submit(citizen, "/account/security-keys/new", label="Agency key")
    options = passkey_options_on(_text(start))
    assert options["attestation"] == "direct"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["hints"] == ["security-key"]
    assert passkey_action_on(_text(start)) == "/account/security-keys"
    key = _attested(registry, maker)
    fields = {**passkey_fields_on(_text(start)), "credential": json.dumps(key.register(options))}
    done = citizen.post("/account/security-keys", {**fields, "label": "Agency key"})
    assert done.status_code == 200 and 'id="recovery-codes"' in _text(done)  # her first factor
    (added,) = _details(registry, "authenticator.added")
    assert (added["attestation"], added["attested"], added["hardware_attested"]) == ("packed", True, True)
    assert (added["high_assurance"], added["aaguid"]) == (True, str(uuid.UUID(bytes=AAGUID)))
    (row,) = registry.passkeys.credentials(world.citizen_id)
    assert row.hardware_attested is True and row.label == "Agency key"
    account = _text(citizen.get("/account"))
    assert "verified for high-assurance services" in account
    assert 'id="high-assurance-prompt"' not in account
    _sign_out(citizen, clock)

    claims = _passwordless(app, rp, clock, key)
    assert (claims["acr"], claims["amr"]) == (HIGH, ["hwk", "user", "pin", "mfa"])
    signed_in = _details(registry, "signin.succeeded")[0]
    assert (signed_in["acr"], signed_in["amr"]) == (HIGH, ["hwk", "user", "pin", "mfa"])


@BOTH_BACKENDS
def test_password_and_an_attested_security_key_reach_high(
    citizen: MfaPerson, maker: Attestation, rp: Rp, registry: Registry, clock: FrozenClock
) -> None:
    key = _attested(registry, maker)
    assert add_security_key_in_account(citizen, key).status_code == 200
    _sign_out(citizen, clock)
    citizen.key = key
    claims = rp.id_token(citizen.go(rp.url()))
    assert _paths(citizen)[:2] == ["/signin", "/signin/factor"]
    assert (claims["acr"], claims["amr"]) == (HIGH, ["pwd", "hwk", "user", "pin", "mfa"])
    detail = _details(registry, "factor.succeeded")[0]
    assert (detail["method"], detail["acr"]) == ("webauthn", HIGH)


def test_an_attested_key_that_skips_user_verification_stops_at_substantial(
    citizen: MfaPerson, maker: Attestation, rp: Rp, registry: Registry, clock: FrozenClock
) -> None:
    key = _attested(registry, maker)
    add_security_key_in_account(citizen, key)
    _sign_out(citizen, clock)
    citizen.key = key
    key.user_verification = False  # a second factor only *prefers* user verification
    claims = rp.id_token(citizen.go(rp.url()))
    # Proven hardware (hwk), but nobody verified the user: not AAL3.
    assert (claims["acr"], claims["amr"]) == (SUBSTANTIAL, ["pwd", "hwk", "user", "mfa"])


@BOTH_BACKENDS
def test_step_up_to_high_asks_only_for_the_attested_key(
    citizen: MfaPerson, maker: Attestation, rp: Rp, registry: Registry, clock: FrozenClock
) -> None:
    add_app_in_account(citizen)
    key = _attested(registry, maker)
    assert add_security_key_in_account(citizen, key).status_code == 303  # a second factor: no new codes
    _sign_out(citizen, clock)
    citizen.key = key
    first = rp.id_token(citizen.go(rp.url("first")), "first")
    assert (first["acr"], first["amr"]) == (SUBSTANTIAL, ["pwd", "otp", "mfa"])  # she typed a code
    citizen.pages.clear()
    claims = rp.id_token(citizen.go(rp.url("up", acr_values=HIGH)), "up")
    assert _paths(citizen) == ["/signin/factor"]
    html = _text(citizen.pages[0])
    assert 'id="passkey-form"' in html and 'name="code"' not in html and 'name="password"' not in html
    assert (claims["acr"], claims["amr"]) == (HIGH, ["pwd", "otp", "mfa", "hwk", "user", "pin"])
    assert (claims["sid"], claims["auth_time"]) == (first["sid"], first["auth_time"])
    stepped = _details(registry, "session.stepped_up")[0]
    assert (stepped["from"], stepped["to"]) == (SUBSTANTIAL, HIGH)


def test_step_up_to_high_lists_only_the_keys_that_can_reach_it(
    citizen: MfaPerson, maker: Attestation, rp: Rp, registry: Registry, clock: FrozenClock
) -> None:
    ordinary = _key(registry)
    assert add_passkey_in_account(citizen, ordinary).status_code == 200  # her first factor: codes
    attested = _attested(registry, maker)
    assert add_security_key_in_account(citizen, attested).status_code == 303
    _sign_out(citizen, clock)
    citizen.key = ordinary
    first = rp.id_token(citizen.go(rp.url("first")), "first")
    assert first["acr"] == SUBSTANTIAL
    citizen.pages.clear()
    page = citizen.follow(citizen.get(rp.url("up", acr_values=HIGH)))
    assert page.request.path == "/signin/factor"
    offered = [credential["id"] for credential in passkey_options_on(_text(page))["allowCredentials"]]
    # The browser is offered the attested key alone: the ordinary one would stop at substantial.
    assert offered == [attested.credentials[0].id_b64]


# -- the factor page offers only what can reach the level asked ------------------------------------


@pytest.fixture
def key_and_codes(
    citizen: MfaPerson, rp: Rp, clock: FrozenClock, registry: Registry, maker: Attestation
) -> SoftAuthenticator:
    """The citizen signed in with her password alone (low), then added a security key for
    high-assurance services (her first factor: she got recovery codes). Her session stays at low."""
    key = _attested(registry, maker)
    rp.id_token(citizen.go(rp.url("first")), "first")
    add_security_key_in_account(citizen, key)
    assert len(citizen.recovery_codes) == 10
    clock.advance(120)
    citizen.pages.clear()
    return key


@BOTH_BACKENDS
def test_a_step_up_to_high_never_spends_a_recovery_code(
    citizen: MfaPerson, rp: Rp, key_and_codes: SoftAuthenticator, registry: Registry, world: World
) -> None:
    """The attack: asked for high, the page invited a recovery code, spent it (it reaches only
    substantial), issued nothing, and still wanted the key."""
    page = citizen.open_page(rp.url("up", acr_values=HIGH), "/signin/factor")
    html = page.get_data(as_text=True)
    assert 'id="passkey-form"' in html
    assert 'name="code"' not in html and "recovery codes instead" not in html  # no invitation to spend one
    assert "needs a security key for high-assurance services" in html  # what is needed instead
    # A recovery code posted anyway (an old form, a crafted post) is refused unread.
    fields = {**hidden_fields(html), "code": citizen.recovery_codes[0]}
    for name in ("ceremony", "credential"):
        fields.pop(name, None)
    refused = citizen.post("/signin/factor", fields)
    assert refused.status_code == 400
    assert "Recovery codes left" not in refused.get_data(as_text=True)
    assert registry.recovery_codes.status(world.citizen_id).unused == 10
    assert audit_events(registry, "recovery_code.used") == []
    # The key does what was asked.
    citizen.key = key_and_codes
    claims = rp.id_token(citizen.go(citizen.use_key(page).location or ""), "up")
    assert claims["acr"] == HIGH


def test_a_step_up_to_substantial_still_offers_the_codes(
    citizen: MfaPerson, rp: Rp, key_and_codes: SoftAuthenticator
) -> None:
    html = citizen.open_page(rp.url("up", acr_values=SUBSTANTIAL), "/signin/factor").get_data(as_text=True)
    assert 'id="passkey-form"' in html and 'name="code"' in html
    assert "recovery codes instead" in html


def test_sign_in_for_high_offers_only_the_key(
    citizen: MfaPerson, rp: Rp, key_and_codes: SoftAuthenticator, clock: FrozenClock
) -> None:
    """At sign-in too, when the agency asks for high, the page after the password offers the key
    alone; a recovery code would only have reached substantial."""
    submit(citizen, citizen.get("/account"), "/signout")
    clock.advance(60)
    page = citizen.follow(citizen.sign_in(citizen.open_page(rp.url("hi", acr_values=HIGH), "/signin")))
    assert not isinstance(page, str) and page.request.path == "/signin/factor"
    html = page.get_data(as_text=True)
    assert 'id="passkey-form"' in html and 'name="code"' not in html


def test_keys_without_a_trusted_chain_are_refused_as_high_assurance_keys(
    citizen: MfaPerson, registry: Registry
) -> None:
    page = secured_submit(citizen, "/account/security-keys/new", label="Mine")
    cases = [
        ("no attestation", _key(registry, aaguid=AAGUID)),
        ("self attestation", _key(registry, aaguid=AAGUID, self_attestation=True)),
        (
            "a chain to a root nobody listed",
            _key(
                registry, aaguid=AAGUID, attestation=Attestation.issued_by_new_ca("Forger CA", aaguid=AAGUID)
            ),
        ),
    ]
    for name, key in cases:
        html = _text(page)
        fields = {**passkey_fields_on(html), "credential": json.dumps(key.register(passkey_options_on(html)))}
        refused = citizen.post("/account/security-keys", fields)
        assert refused.status_code == 400, name
        assert NOT_PROVEN in _text(refused), name
        assert _details(registry, "authenticator.rejected")[0] == {
            "kind": "webauthn",
            "reason": "attestation",
        }
        page = refused
    assert _details(registry, "authenticator.added") == []


@pytest.mark.parametrize("entries", ["another model's root"], indirect=True)
def test_a_models_roots_anchor_only_that_model(
    citizen: MfaPerson, maker: Attestation, registry: Registry
) -> None:
    # The BLOB lists the maker's root for another AAGUID: a key of this model cannot lean on it.
    refused = add_security_key_in_account(citizen, _attested(registry, maker))
    _refused(registry, refused, "attestation", NOT_PROVEN)


def test_an_attestation_certificate_for_another_model_is_refused(
    citizen: MfaPerson, maker: Attestation, registry: Registry
) -> None:
    # The maker's CA (an anchor for AAGUID) certified this key as another model; the authenticator
    # data claims AAGUID. The chain verifies, but WebAuthn 8.2.1 requires the two AAGUIDs to match:
    # else a model the policy refuses could pass as one it admits.
    key = _key(registry, aaguid=OTHER_AAGUID, attestation=maker.for_model(OTHER_AAGUID))
    key.aaguid = AAGUID
    refused = add_security_key_in_account(citizen, key)
    _refused(registry, refused, "attestation", NOT_PROVEN)


def test_a_synced_passkey_cannot_be_a_high_assurance_key(
    citizen: MfaPerson, maker: Attestation, registry: Registry
) -> None:
    refused = add_security_key_in_account(citizen, _attested(registry, maker, backup_eligible=True))
    _refused(registry, refused, "synced", "This passkey syncs between your devices")


def test_a_high_assurance_key_must_verify_its_user(
    citizen: MfaPerson, maker: Attestation, registry: Registry
) -> None:
    refused = add_security_key_in_account(citizen, _attested(registry, maker, user_verification=False))
    _refused(registry, refused, "no_user_verification", "Your security key must check your PIN")


# -- the AAGUID policy and the metadata's word --------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "reason", "message"),
    [
        (
            {"attestation_aaguid_deny": f"{uuid.UUID(bytes=OTHER_AAGUID)}, {uuid.UUID(bytes=AAGUID)}"},
            "aaguid_denied",
            "The service does not accept this model of security key.",
        ),
        (
            {"attestation_aaguid_allow": str(uuid.UUID(bytes=OTHER_AAGUID))},
            "aaguid_not_allowed",
            "This model of security key is not on the list the service accepts.",
        ),
    ],
    indirect=["policy"],
    ids=["denied", "not allowed"],
)
def test_the_aaguid_policy_refuses_a_model_with_a_clear_reason(
    citizen: MfaPerson, maker: Attestation, registry: Registry, reason: str, message: str
) -> None:
    refused = add_security_key_in_account(citizen, _attested(registry, maker))
    _refused(registry, refused, reason, message)


@pytest.mark.parametrize("anchors", ["mds", "pem"], indirect=True)
@pytest.mark.parametrize(
    "policy",
    [{"attestation_aaguid_allow": f"{uuid.UUID(bytes=OTHER_AAGUID)},{uuid.UUID(bytes=AAGUID).hex.upper()}"}],
    indirect=True,
)
def test_a_model_on_the_allow_list_is_accepted(
    citizen: MfaPerson, maker: Attestation, registry: Registry
) -> None:
    assert registry.settings.aaguid_allow_list == {
        str(uuid.UUID(bytes=AAGUID)),
        str(uuid.UUID(bytes=OTHER_AAGUID)),
    }
    assert add_security_key_in_account(citizen, _attested(registry, maker)).status_code == 200


@pytest.mark.parametrize(
    ("entries", "reason", "message"),
    [
        ("revoked", "authenticator_revoked", "This model of security key has a known security problem"),
        ("uv bypass", "authenticator_revoked", "This model of security key has a known security problem"),
        ("software", "not_hardware", "This authenticator does not keep its key in hardware"),
    ],
    indirect=["entries"],
)
def test_a_model_the_metadata_withdrew_or_calls_software_is_refused(
    citizen: MfaPerson, maker: Attestation, registry: Registry, reason: str, message: str
) -> None:
    refused = add_security_key_in_account(citizen, _attested(registry, maker))
    _refused(registry, refused, reason, message)


@pytest.mark.parametrize("entries", ["compromised"], indirect=True)
def test_a_compromised_attestation_certificate_is_refused_but_not_its_whole_model(
    app: Flask, citizen: MfaPerson, maker: Attestation, registry: Registry, clock: FrozenClock
) -> None:
    # ATTESTATION_KEY_COMPROMISE names one certificate: keys attested by it are refused ...
    refused = add_security_key_in_account(citizen, _attested(registry, maker))
    _refused(
        registry, refused, "authenticator_revoked", "This model of security key has a known security problem"
    )
    # ... another batch of the same model is not.
    batch = maker.another_of_the_same_model()
    assert add_security_key_in_account(citizen, _attested(registry, batch)).status_code == 200


# -- no trust anchor: nothing reaches high -----------------------------------------------------------


@pytest.mark.parametrize("anchors", ["none"], indirect=True)
def test_without_trust_anchors_no_high_assurance_key_can_be_registered(
    citizen: MfaPerson, maker: Attestation, registry: Registry, clock: FrozenClock
) -> None:
    add_passkey_in_account(citizen, _key(registry))  # says BE=0 and UV: high until this change
    account = open_account(citizen)
    assert 'id="high-assurance-prompt"' not in _text(account)  # nothing to invite her to
    page = secured_submit(citizen, "/account/security-keys/new", label="Agency key")
    assert page.status_code == 200 and CANNOT_REGISTER in _text(page)
    assert 'id="passkey-form"' not in _text(page)
    # A response posted anyway (a ceremony from elsewhere) finds nothing to register it with.
    posted = citizen.post(
        "/account/security-keys",
        {
            "csrf_token": _csrf(citizen.get("/account")),
            "ceremony": "x",
            "credential": json.dumps({"id": "x"}),
        },
    )
    assert posted.status_code == 409 and CANNOT_REGISTER in _text(posted)
    assert len([d for d in _details(registry, "authenticator.added") if d["kind"] == "webauthn"]) == 1


# -- the account page -----------------------------------------------------------------------------------


def test_the_account_page_invites_people_whose_keys_no_longer_reach_high(
    citizen: MfaPerson, maker: Attestation, registry: Registry, clock: FrozenClock
) -> None:
    add_passkey_in_account(citizen, _key(registry))  # BE=0, UV, no attestation: high before
    account = _text(citizen.get("/account"))
    assert 'id="high-assurance-prompt"' in account
    assert "Your security key no longer reaches the highest level of assurance." in account
    assert 'action="/account/security-keys/new"' in account
    assert add_security_key_in_account(citizen, _attested(registry, maker)).status_code == 303
    assert 'id="high-assurance-prompt"' not in _text(citizen.get("/account"))


def test_no_invitation_for_keys_that_never_reached_high(citizen: MfaPerson, registry: Registry) -> None:
    add_passkey_in_account(citizen, _key(registry, backup_eligible=True))  # synced: substantial always
    add_passkey_in_account(citizen, _key(registry, user_verification=False), label="Old key")
    assert 'id="high-assurance-prompt"' not in _text(citizen.get("/account"))


def test_the_high_assurance_forms_need_their_csrf_token(
    citizen: MfaPerson, maker: Attestation, registry: Registry
) -> None:
    open_account(citizen)
    assert citizen.post("/account/security-keys/new", {"label": "x"}).status_code == 400
    start = secured_submit(citizen, "/account/security-keys/new", label="Agency key")
    html = _text(start)
    fields = {
        **passkey_fields_on(html),
        "credential": json.dumps(_attested(registry, maker).register(passkey_options_on(html))),
    }
    del fields["csrf_token"]
    refused = citizen.post("/account/security-keys", fields)
    assert refused.status_code == 400 and "This form has expired" in _text(refused)
    assert _details(registry, "authenticator.added") == []


def test_an_ordinary_ceremony_cannot_register_a_high_assurance_key(
    citizen: MfaPerson, maker: Attestation, registry: Registry
) -> None:
    # A response to the ordinary page's ceremony (no attestation asked), posted to the
    # high-assurance endpoint: the ceremony was made for something else.
    start = secured_submit(citizen, "/account/passkeys/new", label="Phone")
    html = _text(start)
    fields = {
        **passkey_fields_on(html),
        "credential": json.dumps(_attested(registry, maker).register(passkey_options_on(html))),
    }
    refused = citizen.post("/account/security-keys", fields)
    assert refused.status_code == 400 and "The request expired. Try again." in _text(refused)
    assert _details(registry, "authenticator.rejected")[0]["reason"] == "expired_ceremony"
    # And the attested key, registered the ordinary way, proves nothing: attestation was not asked.
    ordinary = add_passkey_in_account(citizen, _attested(registry, maker), label="Same model")
    assert ordinary.status_code == 200
    (added,) = _details(registry, "authenticator.added")[:1]
    assert (added["attested"], added["hardware_attested"]) == (False, False)


# -- the transition ------------------------------------------------------------------------------------


def _migrate(database: Database, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@BOTH_BACKENDS
def test_keys_registered_before_the_change_are_not_proven(empty_database_url: str) -> None:
    """Migration 0004 leaves every existing credential unproven: it stays usable, at substantial."""
    database = Database(empty_database_url)
    try:
        _migrate(database, "0003")
        now = datetime.now(UTC)
        account_id, authenticator_id = str(uuid.uuid4()), str(uuid.uuid4())
        with database.engine.begin() as conn:
            conn.execute(
                insert(Account.__table__).values(
                    id=account_id, username="fatima", account_type="citizen", created_at=now, updated_at=now
                )
            )
            # What the old code stored for a key that said BE=0 and UV (high until this change).
            conn.execute(
                text(
                    "INSERT INTO authenticators (id, account_id, kind, label, credential_id, public_key,"
                    " sign_count, backup_eligible, backup_state, user_verified, aaguid, created_at,"
                    " confirmed_at) VALUES (:id, :account, 'webauthn', 'Blue key', :cred, :key, 0,"
                    " :false, :false, :true, :aaguid, :now, :now)"
                ),
                {
                    "id": authenticator_id,
                    "account": account_id,
                    "cred": b"credential",
                    "key": b"cose key",
                    "false": False,
                    "true": True,
                    "aaguid": str(uuid.UUID(int=0)),
                    "now": now,
                },
            )
        database.upgrade()
        (row,) = AuthenticatorRepository(database).for_account(account_id)
        assert row.hardware_attested is False
        factors = [factor_of(row)]
        assert factor_level(factors) == SUBSTANTIAL
        assert lost_high(factors)  # the person the account page invites to add a security key
    finally:
        database.dispose()
