"""The software authenticator against py_webauthn itself, with nothing mocked.

Every response here is verified by ``verify_registration_response`` or
``verify_authentication_response`` as a relying party would, so the tests that drive Hawiya with
``SoftAuthenticator`` rest on responses a real verifier accepts (and refuses when forged).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import parse_attestation_object
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidBackupFlags,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AttestationFormat,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
)

from tests.support.authenticator import (
    Attestation,
    CeremonyRefused,
    SoftAuthenticator,
    b64url,
    from_b64url,
)

RP_ID = "localhost"
ORIGIN = "http://localhost"
USER_ID = b"user-handle-0001"
CHALLENGE = b"a challenge of at least sixteen bytes"


def creation_options(**kwargs: Any) -> dict[str, Any]:
    """Creation options as a server sends them (WebAuthn JSON)."""
    options = generate_registration_options(
        rp_id=RP_ID, rp_name="Hawiya", user_name="citizen", user_id=USER_ID, challenge=CHALLENGE, **kwargs
    )
    result: dict[str, Any] = json.loads(options_to_json(options))
    return result


def request_options(allow: list[bytes] | None = None) -> dict[str, Any]:
    """Request options as a server sends them (WebAuthn JSON)."""
    options = generate_authentication_options(
        rp_id=RP_ID,
        challenge=CHALLENGE,
        allow_credentials=[PublicKeyCredentialDescriptor(id=i) for i in allow or []],
    )
    result: dict[str, Any] = json.loads(options_to_json(options))
    return result


def verify_registration(response: dict[str, Any], **kwargs: Any) -> Any:
    return verify_registration_response(
        credential=response,
        expected_challenge=CHALLENGE,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        **kwargs,
    )


def verify_assertion(response: dict[str, Any], public_key: bytes, sign_count: int, **kwargs: Any) -> Any:
    return verify_authentication_response(
        credential=response,
        expected_challenge=CHALLENGE,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        credential_public_key=public_key,
        credential_current_sign_count=sign_count,
        **kwargs,
    )


def test_none_attestation_registers_and_signs_in() -> None:
    authenticator = SoftAuthenticator()
    response = authenticator.register(creation_options())
    registered = verify_registration(response, require_user_verification=True)
    assert registered.fmt == AttestationFormat.NONE
    assert registered.credential_id == authenticator.credentials[0].id
    assert registered.credential_public_key == authenticator.credentials[0].public_key
    assert registered.sign_count == 0
    assert registered.user_verified
    assert registered.credential_device_type == CredentialDeviceType.SINGLE_DEVICE
    assert not registered.credential_backed_up
    assert response["response"]["transports"] == ["usb"]
    assert response["authenticatorAttachment"] == "cross-platform"

    first = authenticator.authenticate(request_options([registered.credential_id]))
    verified = verify_assertion(first, registered.credential_public_key, 0, require_user_verification=True)
    assert verified.new_sign_count == 1
    second = authenticator.authenticate(request_options([registered.credential_id]))
    assert verify_assertion(second, registered.credential_public_key, 1).new_sign_count == 2


def test_packed_attestation_chains_to_its_ca_and_not_to_another() -> None:
    attestation = Attestation.issued_by_new_ca(aaguid=bytes(range(16)))
    authenticator = SoftAuthenticator(aaguid=bytes(range(16)), attestation=attestation)
    options = creation_options(attestation=AttestationConveyancePreference.DIRECT)
    response = authenticator.register(options)

    registered = verify_registration(
        response, pem_root_certs_bytes_by_fmt={AttestationFormat.PACKED: [attestation.ca_pem()]}
    )
    assert registered.fmt == AttestationFormat.PACKED
    assert registered.aaguid == "00010203-0405-0607-0809-0a0b0c0d0e0f"

    other = Attestation.issued_by_new_ca("Another CA")
    with pytest.raises(InvalidRegistrationResponse, match="Certificate chain"):
        verify_registration(
            response, pem_root_certs_bytes_by_fmt={AttestationFormat.PACKED: [other.ca_pem()]}
        )


def test_the_attestation_certificate_must_name_the_authenticators_aaguid() -> None:
    with pytest.raises(ValueError, match="AAGUID"):
        SoftAuthenticator(attestation=Attestation.issued_by_new_ca(aaguid=bytes(range(16))))


def test_self_attestation_carries_no_certificate_for_a_trust_anchor_to_check() -> None:
    authenticator = SoftAuthenticator(self_attestation=True)
    response = authenticator.register(creation_options())
    ca = Attestation.issued_by_new_ca()
    # py_webauthn verifies the self-signature and never consults the trust anchors, so a relying
    # party that requires attestation must refuse a packed statement without x5c itself.
    registered = verify_registration(
        response, pem_root_certs_bytes_by_fmt={AttestationFormat.PACKED: [ca.ca_pem()]}
    )
    statement = parse_attestation_object(registered.attestation_object).att_stmt
    assert registered.fmt == AttestationFormat.PACKED
    assert statement.sig and not statement.x5c


@pytest.mark.parametrize(("backup_state", "backed_up"), [(None, True), (False, False)])
def test_backup_flags_make_a_multi_device_credential(backup_state: bool | None, backed_up: bool) -> None:
    authenticator = SoftAuthenticator(backup_eligible=True, backup_state=backup_state)
    response = authenticator.register(creation_options())
    registered = verify_registration(response)
    assert registered.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    assert registered.credential_backed_up is backed_up
    assert response["response"]["transports"] == ["internal"]
    assert response["authenticatorAttachment"] == "platform"

    verified = verify_assertion(
        authenticator.authenticate(request_options()), registered.credential_public_key, 0
    )
    assert verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    assert verified.credential_backed_up is backed_up


def test_backup_eligibility_can_be_forged_per_assertion() -> None:
    authenticator = SoftAuthenticator(backup_eligible=True)
    key = verify_registration(authenticator.register(creation_options())).credential_public_key
    verified = verify_assertion(authenticator.authenticate(request_options(), backup_eligible=False), key, 0)
    assert verified.credential_device_type == CredentialDeviceType.SINGLE_DEVICE
    assert not verified.credential_backed_up

    inconsistent = SoftAuthenticator(backup_eligible=False, backup_state=True)
    with pytest.raises(InvalidBackupFlags):
        verify_registration(inconsistent.register(creation_options()))


def test_user_verified_reflects_the_uv_flag() -> None:
    authenticator = SoftAuthenticator(user_verification=False)
    response = authenticator.register(creation_options())
    assert not verify_registration(response).user_verified
    with pytest.raises(InvalidRegistrationResponse, match="User verification is required"):
        verify_registration(response, require_user_verification=True)

    key = authenticator.credentials[0].public_key
    assert not verify_assertion(authenticator.authenticate(request_options()), key, 0).user_verified
    verified = verify_assertion(authenticator.authenticate(request_options(), user_verification=True), key, 1)
    assert verified.user_verified


def test_a_stale_counter_is_refused() -> None:
    authenticator = SoftAuthenticator()
    registered = verify_registration(authenticator.register(creation_options()))
    key = registered.credential_public_key
    assert verify_assertion(authenticator.authenticate(request_options()), key, 0).new_sign_count == 1
    assert verify_assertion(authenticator.authenticate(request_options()), key, 1).new_sign_count == 2
    with pytest.raises(InvalidAuthenticationResponse, match="sign count"):
        verify_assertion(authenticator.authenticate(request_options(), sign_count=2), key, 2)
    # The forced value left the counter alone: the next use counts on from it.
    assert verify_assertion(authenticator.authenticate(request_options()), key, 2).new_sign_count == 3


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"origin": "http://evil.example"}, "origin"),
        ({"rp_id": "evil.example"}, "RP ID"),
        ({"challenge": b64url(b"another challenge entirely")}, "challenge"),
    ],
)
def test_forged_registrations_and_assertions_are_refused(override: dict[str, Any], message: str) -> None:
    authenticator = SoftAuthenticator()
    with pytest.raises(InvalidRegistrationResponse, match=message):
        verify_registration(authenticator.register(creation_options(), **override))
    key = authenticator.credentials[0].public_key
    with pytest.raises(InvalidAuthenticationResponse, match=message):
        verify_assertion(authenticator.authenticate(request_options(), **override), key, 0)


def test_a_signature_by_another_key_is_refused() -> None:
    authenticator = SoftAuthenticator()
    authenticator.register(creation_options())
    other = SoftAuthenticator()
    other.register(creation_options())
    with pytest.raises(InvalidAuthenticationResponse, match="signature"):
        verify_assertion(authenticator.authenticate(request_options()), other.credentials[0].public_key, 0)


def test_discoverable_sign_in_returns_the_user_handle() -> None:
    authenticator = SoftAuthenticator()
    registered = verify_registration(authenticator.register(creation_options()))
    options = request_options()
    assert options.get("allowCredentials", []) == []
    response = authenticator.authenticate(options)
    assert from_b64url(response["response"]["userHandle"]) == USER_ID
    assert from_b64url(response["rawId"]) == registered.credential_id
    verify_assertion(response, registered.credential_public_key, 0)


def test_a_non_discoverable_credential_must_be_asked_for() -> None:
    authenticator = SoftAuthenticator()
    registered = verify_registration(authenticator.register(creation_options(), discoverable=False))
    with pytest.raises(CeremonyRefused):
        authenticator.authenticate(request_options())
    with pytest.raises(CeremonyRefused):
        authenticator.authenticate(request_options([b"some other credential"]))
    response = authenticator.authenticate(
        request_options([b"some other credential", registered.credential_id])
    )
    assert response["response"]["userHandle"] is None
    verify_assertion(response, registered.credential_public_key, 0)


def test_an_excluded_credential_is_not_registered_twice() -> None:
    authenticator = SoftAuthenticator()
    registered = verify_registration(authenticator.register(creation_options()))
    excluded = [PublicKeyCredentialDescriptor(id=registered.credential_id)]
    with pytest.raises(CeremonyRefused):
        authenticator.register(creation_options(exclude_credentials=excluded))
    assert len(authenticator.credentials) == 1
