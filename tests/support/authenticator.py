"""A software WebAuthn authenticator that answers real ceremonies, for tests.

``SoftAuthenticator`` plays the authenticator and the browser together: given the options a server
sends (in the WebAuthn JSON form, binary values base64url), it returns the JSON a browser's
``PublicKeyCredential.toJSON()`` would post back, with real authenticator data and real ES256
(P-256) signatures that py_webauthn verifies unmodified. ``Attestation`` makes a test attestation
CA and a packed-attestation certificate it issued (and more of the same model, on request).
python-fido2 is used only to encode CBOR and COSE keys; the authenticator data is built here, byte
by byte.

Keyword overrides on ``register`` and ``authenticate`` (origin, RP ID, challenge, counter, flags)
let tests forge responses a server must refuse.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fido2 import cbor
from fido2.cose import ES256

UP, UV, BE, BS, AT, ED = 0x01, 0x04, 0x08, 0x10, 0x40, 0x80
"""The authenticator data flag bits."""

AAGUID_EXTENSION = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")
"""id-fido-gen-ce-aaguid: the AAGUID of the authenticator model an attestation certificate is for."""


class CeremonyRefused(Exception):
    """The authenticator (or browser) would refuse the ceremony (NotAllowedError, InvalidStateError)."""


def b64url(data: bytes) -> str:
    """Base64url without padding, as WebAuthn JSON carries binary values."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    """The bytes of a base64url string, with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """An ES256 signature (DER ECDSA over SHA-256), as WebAuthn carries it."""
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


@dataclass
class Credential:
    """A credential the authenticator holds."""

    id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes | None
    discoverable: bool
    sign_count: int = 0

    @property
    def id_b64(self) -> str:
        """The credential ID as the JSON carries it."""
        return b64url(self.id)

    @property
    def public_key(self) -> bytes:
        """The COSE-encoded public key (what a server stores and verifies assertions with)."""
        return cbor.encode(ES256.from_cryptography_key(self.private_key.public_key()))


@dataclass
class Attestation:
    """Packed attestation with an x5c chain: a leaf certificate signed by ``ca`` (a CA the test makes)."""

    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    leaf_cert: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey

    @classmethod
    def issued_by_new_ca(
        cls, name: str = "Test Attestation CA", *, aaguid: bytes | None = None
    ) -> Attestation:
        """A new CA and an attestation certificate it issued (naming ``aaguid`` in its extension if given).

        The leaf meets the packed attestation certificate requirements (WebAuthn §8.2.1): version 3,
        a subject with C, O, OU="Authenticator Attestation" and CN, and basicConstraints CA=false.
        """
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "SA"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hawiya Tests"),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return cls._issue(ca_cert, ca_key, aaguid)

    def another_of_the_same_model(self) -> Attestation:
        """A second attestation certificate (and key) from the same CA, for the same AAGUID: another
        batch of the same model, as a maker issues them."""
        return self._issue(self.ca_cert, self.ca_key, self.aaguid)

    def for_model(self, aaguid: bytes) -> Attestation:
        """An attestation certificate (and key) from the same CA for another model, ``aaguid``."""
        return self._issue(self.ca_cert, self.ca_key, aaguid)

    @classmethod
    def _issue(
        cls, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, aaguid: bytes | None
    ) -> Attestation:
        now = datetime.datetime.now(datetime.UTC)
        ca_name = ca_cert.subject
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.COUNTRY_NAME, "SA"),
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hawiya Tests"),
                        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Authenticator Attestation"),
                        x509.NameAttribute(NameOID.COMMON_NAME, "Soft Authenticator"),
                    ]
                )
            )
            .issuer_name(ca_name)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        )
        if aaguid is not None:
            # The extension's value is an OCTET STRING holding the 16-byte AAGUID; it must not be critical.
            value = b"\x04\x10" + aaguid
            builder = builder.add_extension(
                x509.UnrecognizedExtension(AAGUID_EXTENSION, value), critical=False
            )
        return cls(ca_cert, ca_key, builder.sign(ca_key, hashes.SHA256()), leaf_key)

    def ca_pem(self) -> bytes:
        """The CA certificate in PEM (a trust anchor for the relying party)."""
        return self.ca_cert.public_bytes(serialization.Encoding.PEM)

    def leaf_der(self) -> bytes:
        """The attestation certificate in DER (as ``x5c`` carries it)."""
        return self.leaf_cert.public_bytes(serialization.Encoding.DER)

    @property
    def aaguid(self) -> bytes | None:
        """The AAGUID the leaf certificate names, if it has the extension."""
        try:
            ext = self.leaf_cert.extensions.get_extension_for_oid(AAGUID_EXTENSION)
        except x509.ExtensionNotFound:
            return None
        assert isinstance(ext.value, x509.UnrecognizedExtension)
        return ext.value.value[2:]


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    """Digital signature for a leaf; certificate and CRL signing for a CA."""
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


class SoftAuthenticator:
    """An ES256 authenticator and its browser: answers creation and request options with real JSON.

    ``backup_eligible`` makes it a passkey provider (BE set, attachment "platform", transport
    "internal"); otherwise it is a security key ("cross-platform", "usb"). ``backup_state``
    defaults to ``backup_eligible``. ``attestation`` gives packed attestation with an x5c chain,
    ``self_attestation`` packed attestation signed by the credential key; otherwise "none".
    """

    def __init__(
        self,
        *,
        rp_id: str = "localhost",
        origin: str = "http://localhost",
        backup_eligible: bool = False,
        backup_state: bool | None = None,
        user_verification: bool = True,
        aaguid: bytes = bytes(16),
        attestation: Attestation | None = None,
        self_attestation: bool = False,
    ) -> None:
        if len(aaguid) != 16:
            raise ValueError("an AAGUID is 16 bytes")
        if attestation is not None and self_attestation:
            raise ValueError("choose an attestation certificate or self attestation, not both")
        if attestation is not None and attestation.aaguid not in (None, aaguid):
            raise ValueError("the attestation certificate names another AAGUID")
        self.rp_id = rp_id
        self.origin = origin
        self.backup_eligible = backup_eligible
        self.backup_state = backup_state
        self.user_verification = user_verification
        self.aaguid = aaguid
        self.attestation = attestation
        self.self_attestation = self_attestation
        self.credentials: list[Credential] = []

    def register(
        self,
        options: Mapping[str, Any],
        *,
        discoverable: bool = True,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: str | None = None,
    ) -> dict[str, Any]:
        """Answer PublicKeyCredentialCreationOptions JSON with a RegistrationResponseJSON dict.

        Makes a new credential for the options' RP ID (``options["rp"]["id"]``, else this
        authenticator's) and user; ``rp_id`` only changes the RP ID hashed into the authenticator
        data, ``origin`` and ``challenge`` what the client data says. Refuses (``CeremonyRefused``)
        when the options allow no ES256 key or exclude a credential it holds.
        """
        if not any(p.get("alg") == ES256.ALGORITHM for p in options.get("pubKeyCredParams", [])):
            raise CeremonyRefused("the options allow no ES256 key")
        real_rp_id = options.get("rp", {}).get("id") or self.rp_id
        excluded = {from_b64url(c["id"]) for c in options.get("excludeCredentials", [])}
        if any(c.id in excluded and c.rp_id == real_rp_id for c in self.credentials):
            raise CeremonyRefused("this authenticator already holds an excluded credential")
        credential = Credential(
            id=os.urandom(32),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            rp_id=real_rp_id,
            user_handle=from_b64url(options["user"]["id"]),
            discoverable=discoverable,
        )
        self.credentials.append(credential)
        client_data = self._client_data("webauthn.create", challenge or options["challenge"], origin)
        public_key = credential.public_key
        attested = self.aaguid + len(credential.id).to_bytes(2, "big") + credential.id + public_key
        auth_data = self._authenticator_data(
            rp_id or real_rp_id, credential.sign_count, self.user_verification, self.backup_eligible, attested
        )
        fmt, statement = self._attestation_statement(auth_data, client_data, credential)
        attestation_object = cbor.encode({"fmt": fmt, "attStmt": statement, "authData": auth_data})
        return {
            "id": credential.id_b64,
            "rawId": credential.id_b64,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation_object),
                "authenticatorData": b64url(auth_data),
                "publicKey": b64url(
                    credential.private_key.public_key().public_bytes(
                        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                    )
                ),
                "publicKeyAlgorithm": ES256.ALGORITHM,
                "transports": [self._transport],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": self._attachment,
        }

    def authenticate(
        self,
        options: Mapping[str, Any],
        *,
        credential_id: str | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: str | None = None,
        sign_count: int | None = None,
        user_verification: bool | None = None,
        backup_eligible: bool | None = None,
    ) -> dict[str, Any]:
        """Answer PublicKeyCredentialRequestOptions JSON with an AuthenticationResponseJSON dict.

        Uses the credential ``credential_id`` (base64url) if given, else the first credential in
        ``allowCredentials`` it holds for the options' RP ID, else (with no ``allowCredentials``)
        its newest discoverable credential for that RP ID; ``CeremonyRefused`` if there is none.
        ``userHandle`` is the user ID given at registration for a discoverable credential, else
        null. The counter increments on each use; ``sign_count`` reports that value instead and
        leaves the counter alone. ``user_verification`` and ``backup_eligible`` override the flags,
        ``rp_id`` the RP ID hashed into the authenticator data (not the one credentials are found by).
        """
        credential = self._find(options, credential_id)
        if sign_count is None:
            credential.sign_count += 1
            sign_count = credential.sign_count
        client_data = self._client_data("webauthn.get", challenge or options["challenge"], origin)
        auth_data = self._authenticator_data(
            rp_id or credential.rp_id,
            sign_count,
            self.user_verification if user_verification is None else user_verification,
            self.backup_eligible if backup_eligible is None else backup_eligible,
        )
        signature = _sign(credential.private_key, auth_data + hashlib.sha256(client_data).digest())
        user_handle = credential.user_handle if credential.discoverable else None
        return {
            "id": credential.id_b64,
            "rawId": credential.id_b64,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": None if user_handle is None else b64url(user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": self._attachment,
        }

    @property
    def _attachment(self) -> str:
        return "platform" if self.backup_eligible else "cross-platform"

    @property
    def _transport(self) -> str:
        return "internal" if self.backup_eligible else "usb"

    def _find(self, options: Mapping[str, Any], credential_id: str | None) -> Credential:
        """The credential to answer request options with."""
        rp_id = options.get("rpId") or self.rp_id
        held = [c for c in self.credentials if c.rp_id == rp_id]
        if credential_id is not None:
            wanted = [from_b64url(credential_id)]
        elif allowed := options.get("allowCredentials"):
            wanted = [from_b64url(c["id"]) for c in allowed]
        else:
            discoverable = [c for c in held if c.discoverable]
            if not discoverable:
                raise CeremonyRefused(f"no discoverable credential for {rp_id}")
            return discoverable[-1]
        for wanted_id in wanted:
            for credential in held:
                if credential.id == wanted_id:
                    return credential
        raise CeremonyRefused(f"no credential for {rp_id} among those asked for")

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        """CollectedClientData as a browser serialises it."""
        data = {"type": kind, "challenge": challenge, "origin": origin or self.origin, "crossOrigin": False}
        return json.dumps(data, separators=(",", ":")).encode()

    def _authenticator_data(
        self, rp_id: str, sign_count: int, user_verified: bool, backup_eligible: bool, attested: bytes = b""
    ) -> bytes:
        """rpIdHash, flags, signCount and (at registration) the attested credential data."""
        backed_up = backup_eligible if self.backup_state is None else self.backup_state
        flags = (
            UP
            | (UV if user_verified else 0)
            | (BE if backup_eligible else 0)
            | (BS if backed_up else 0)
            | (AT if attested else 0)
        )
        return (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([flags])
            + sign_count.to_bytes(4, "big")
            + attested
        )

    def _attestation_statement(
        self, auth_data: bytes, client_data: bytes, credential: Credential
    ) -> tuple[str, dict[str, Any]]:
        """The attestation format and statement: packed (x5c or self), or none."""
        signed = auth_data + hashlib.sha256(client_data).digest()
        if self.attestation is not None:
            leaf = self.attestation.leaf_cert.public_bytes(serialization.Encoding.DER)
            sig = _sign(self.attestation.leaf_key, signed)
            return "packed", {"alg": ES256.ALGORITHM, "sig": sig, "x5c": [leaf]}
        if self.self_attestation:
            return "packed", {"alg": ES256.ALGORITHM, "sig": _sign(credential.private_key, signed)}
        return "none", {}
