"""The one module that speaks to py_webauthn (the ``webauthn`` package): ceremony options out,
verified credentials and assertions in, as Hawiya's own types.

Everything the browser sends is untrusted JSON. py_webauthn checks the client data (type,
challenge, origin), the RP ID hash, the flags, the attestation statement and the signature; this
module turns its exceptions into one ``PasskeyRejected`` with a short machine ``reason`` (for the
audit trail and the page's message) and never lets a parsing error escape as a server error.

Trust anchors: py_webauthn skips the certificate-chain check when it is given no root
certificates, and accepts packed *self* attestation (no ``x5c``). So when anchors are required the
statement must carry an ``x5c`` chain, its format must be one whose chain is checked only against
the roots given here (packed, fido-u2f, tpm: not formats for which py_webauthn adds vendor roots
of its own), and the anchors list must not be empty. py_webauthn does not compare the AAGUID an
attestation certificate names (its id-fido-gen-ce-aaguid extension) with the one in the
authenticator data; WebAuthn L3 8.2.1 requires it, and Hawiya's per-model anchors and AAGUID policy
rely on it, so it is checked here.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import options_to_json, parse_attestation_object
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AttestationFormat,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    PublicKeyCredentialHint,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from idp.errors import ConfigurationError, InvalidInput
from idp.inbound import InvalidJson, parse_json

#: Signature algorithms Hawiya accepts for credentials: ES256, EdDSA, RS256 (WebAuthn L3 5.8.3's
#: recommended set); the authenticator picks the first it supports.
ALGORITHMS = (
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
)
#: Formats whose certificate chain py_webauthn checks against the given roots alone.
ANCHORED_FORMATS = (AttestationFormat.PACKED, AttestationFormat.FIDO_U2F, AttestationFormat.TPM)
#: The longest credential JSON read from a form (a TPM attestation is a few kilobytes).
MAX_CREDENTIAL_JSON = 32 * 1024
_TRANSPORTS = {t.value for t in AuthenticatorTransport}

#: py_webauthn's message fragments, mapped to Hawiya's reasons (first match wins).
_REASONS = (
    ("challenge", "wrong_challenge"),
    ("origin", "wrong_origin"),
    ("RP ID", "wrong_rp_id"),
    ("sign count", "stale_counter"),
    ("User verification", "user_verification"),
    ("not present", "user_presence"),
    ("certificate", "attestation"),
    ("Certificate", "attestation"),
    ("attestation", "attestation"),
    ("signature", "bad_signature"),
    ("alg", "unsupported_algorithm"),
    ("type", "wrong_type"),
)


class PasskeyRejected(InvalidInput):
    """A WebAuthn response Hawiya refuses; ``reason`` says why in one word (never a secret)."""

    code = "passkey_rejected"

    def __init__(self, reason: str, message: str = "the passkey response was refused") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class NewCredential:
    """A verified registration: what Hawiya stores about the credential."""

    credential_id: bytes
    public_key: bytes
    sign_count: int
    aaguid: str
    #: BE: the credential may be synced to other devices (a "synced passkey").
    backup_eligible: bool
    #: BS: it is backed up now.
    backup_state: bool
    user_verified: bool
    #: ``none``, ``packed``, ``fido-u2f``, ``tpm`` ...
    attestation_format: str
    #: True when an attestation chain was verified against the trust anchors given.
    attested: bool
    transports: tuple[str, ...]
    #: The verified attestation chain (DER, leaf first) when ``attested``; else empty.
    attestation_chain: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class VerifiedAssertion:
    """A verified sign-in with a credential."""

    credential_id: bytes
    sign_count: int
    backup_eligible: bool
    backup_state: bool
    user_verified: bool


def load_trust_anchors(path: str) -> tuple[bytes, ...]:
    """The PEM certificates in the operator's trust-anchor file; ConfigurationError when it
    holds none (an empty list would make py_webauthn skip the chain check)."""
    try:
        certificates = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError):
        raise ConfigurationError(f"cannot read attestation trust anchors from {path}") from None
    if not certificates:
        raise ConfigurationError(f"no certificate in {path}")
    return tuple(cert.public_bytes(serialization.Encoding.PEM) for cert in certificates)


# -- encoding ------------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    """Base64url without padding (how WebAuthn's JSON forms carry bytes)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """The bytes of a base64url string; PasskeyRejected when it is not one."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise PasskeyRejected("malformed") from None


def parse_credential(raw: str) -> dict[str, Any]:
    """The credential JSON a page posted, as a dict; PasskeyRejected when it is not one."""
    if not raw:
        raise PasskeyRejected("malformed")
    try:
        value = parse_json(raw, what="the credential", max_bytes=MAX_CREDENTIAL_JSON)
    except InvalidJson:
        raise PasskeyRejected("malformed") from None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise PasskeyRejected("malformed")
    return value


def credential_id_of(credential: Mapping[str, Any]) -> bytes:
    """The credential id a response names (to find the stored credential before verifying)."""
    return unb64url(str(credential.get("rawId") or credential.get("id") or ""))


def aaguid_of(credential: Mapping[str, Any]) -> str:
    """The AAGUID a registration response *claims* (lower-case, hyphenated; all zeros when none):
    to choose the anchors its chain is checked against. Believe it only once
    ``verify_registration`` has verified the attestation that signs it."""
    response = credential.get("response")
    raw = response.get("attestationObject") if isinstance(response, Mapping) else None
    if not isinstance(raw, str):
        raise PasskeyRejected("malformed")
    try:
        attested = parse_attestation_object(unb64url(raw)).auth_data.attested_credential_data
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError, IndexError):
        raise PasskeyRejected("malformed") from None
    if attested is None:
        raise PasskeyRejected("malformed")
    return str(uuid.UUID(bytes=attested.aaguid))


def user_handle_of(credential: Mapping[str, Any]) -> bytes | None:
    """The user handle of a discoverable credential's assertion, when it gave one."""
    response = credential.get("response")
    handle = response.get("userHandle") if isinstance(response, Mapping) else None
    return unb64url(handle) if isinstance(handle, str) and handle else None


# -- options -------------------------------------------------------------------------------------


def registration_options(
    *,
    rp_id: str,
    rp_name: str,
    user_handle: bytes,
    user_name: str,
    display_name: str,
    challenge: bytes,
    exclude: Sequence[bytes],
    direct_attestation: bool,
    timeout_ms: int,
    security_key: bool = False,
) -> dict[str, Any]:
    """PublicKeyCredentialCreationOptions as JSON: a discoverable credential preferred (so it
    can sign in without a username), user verification preferred, existing credentials excluded.
    ``security_key`` (the high-assurance registration): user verification required, and the
    browser hinted to offer a security key first (WebAuthn L3 ``hints``)."""
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_name,
        user_id=user_handle,
        user_name=user_name,
        user_display_name=display_name,
        challenge=challenge,
        timeout=timeout_ms,
        attestation=(
            AttestationConveyancePreference.DIRECT
            if direct_attestation
            else AttestationConveyancePreference.NONE
        ),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED
            if security_key
            else UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=ident) for ident in exclude],
        supported_pub_key_algs=list(ALGORITHMS),
        hints=[PublicKeyCredentialHint.SECURITY_KEY] if security_key else None,
    )
    result: dict[str, Any] = json.loads(options_to_json(options))
    return result


def authentication_options(
    *,
    rp_id: str,
    challenge: bytes,
    allow: Sequence[tuple[bytes, Sequence[str]]],
    user_verification: bool,
    timeout_ms: int,
) -> dict[str, Any]:
    """PublicKeyCredentialRequestOptions as JSON. An empty ``allow`` asks for a discoverable
    credential (passwordless, username-less); ``user_verification`` True makes UV required."""
    options = generate_authentication_options(
        rp_id=rp_id,
        challenge=challenge,
        timeout=timeout_ms,
        allow_credentials=[
            PublicKeyCredentialDescriptor(
                id=ident, transports=[AuthenticatorTransport(t) for t in transports if t in _TRANSPORTS]
            )
            for ident, transports in allow
        ],
        user_verification=UserVerificationRequirement.REQUIRED
        if user_verification
        else UserVerificationRequirement.PREFERRED,
    )
    result: dict[str, Any] = json.loads(options_to_json(options))
    return result


# -- verification --------------------------------------------------------------------------------


def verify_registration(
    credential: Mapping[str, Any],
    *,
    challenge: bytes,
    rp_id: str,
    origin: str,
    trust_anchors: Sequence[bytes] | None = None,
) -> NewCredential:
    """Verify a registration response; PasskeyRejected otherwise. With ``trust_anchors`` (PEM
    certificates), only an attestation chained to one of them is accepted."""
    anchored = trust_anchors is not None
    if anchored and not trust_anchors:
        raise PasskeyRejected("attestation", "no attestation trust anchors are configured")
    try:
        verified = verify_registration_response(
            credential=dict(credential),
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            supported_pub_key_algs=list(ALGORITHMS),
            pem_root_certs_bytes_by_fmt=(
                {fmt: list(trust_anchors or ()) for fmt in ANCHORED_FORMATS} if anchored else None
            ),
        )
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise PasskeyRejected(_reason(exc)) from None
    chain = _chain(verified.attestation_object) if anchored else ()
    if anchored and (verified.fmt not in ANCHORED_FORMATS or not chain):
        raise PasskeyRejected("attestation", "this security key is not one the service accepts")
    if anchored and not _certificate_names(chain[0], verified.aaguid):
        raise PasskeyRejected("attestation", "the attestation certificate is for another model")
    response = credential.get("response")
    transports = response.get("transports") if isinstance(response, Mapping) else None
    return NewCredential(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backup_state=verified.credential_backed_up,
        user_verified=verified.user_verified,
        attestation_format=str(verified.fmt.value if hasattr(verified.fmt, "value") else verified.fmt),
        attested=anchored,
        transports=tuple(t for t in transports or () if isinstance(t, str) and t in _TRANSPORTS),
        attestation_chain=chain,
    )


def verify_authentication(
    credential: Mapping[str, Any],
    *,
    challenge: bytes,
    rp_id: str,
    origin: str,
    public_key: bytes,
    sign_count: int,
    require_user_verification: bool,
) -> VerifiedAssertion:
    """Verify an assertion by the stored credential; PasskeyRejected otherwise (a signature
    counter that did not move forward, when the authenticator keeps one, is a cloned key)."""
    try:
        verified = verify_authentication_response(
            credential=dict(credential),
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
            require_user_verification=require_user_verification,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise PasskeyRejected(_reason(exc)) from None
    return VerifiedAssertion(
        credential_id=verified.credential_id,
        sign_count=verified.new_sign_count,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backup_state=verified.credential_backed_up,
        user_verified=verified.user_verified,
    )


def _chain(attestation_object: bytes) -> tuple[bytes, ...]:
    """The statement's x5c chain (DER, leaf first); empty when it has none (self attestation)."""
    try:
        statement = parse_attestation_object(attestation_object).att_stmt
    except (WebAuthnException, ValueError):
        return ()
    return tuple(statement.x5c or ()) if statement is not None else ()


#: id-fido-gen-ce-aaguid: the AAGUID of the model an attestation certificate was issued for.
_AAGUID_EXTENSION = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")


def _certificate_names(leaf: bytes, aaguid: str) -> bool:
    """False when the attestation certificate names a model other than ``aaguid`` (its extension
    is an OCTET STRING of the 16 bytes); True when it names it, or names none (it need not)."""
    try:
        extension = x509.load_der_x509_certificate(leaf).extensions.get_extension_for_oid(_AAGUID_EXTENSION)
    except x509.ExtensionNotFound:
        return True
    except ValueError:
        return False
    value = extension.value
    named = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    return named[:2] == b"\x04\x10" and named[2:] == uuid.UUID(aaguid).bytes


def _reason(exc: Exception) -> str:
    if not isinstance(exc, WebAuthnException):
        return "malformed"
    message = str(exc)
    if type(exc).__name__.endswith("Structure") or any(
        word in message.lower() for word in ("malformed", "could not parse", "unable to decode")
    ):
        return "malformed"
    for fragment, reason in _REASONS:
        if fragment in message:
            return reason
    return "invalid"
