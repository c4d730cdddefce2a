"""A FIDO Metadata Service (MDS3) of the test's own: a root CA, a BLOB-signing certificate it issued,
and BLOBs (JWS compact serialisation) it signs, whose entries describe the test's authenticator
models (FIDO Metadata Service 3.0, 3.1: the header's ``x5c`` carries the signing certificate, the
payload ``legalHeader``, ``no``, ``nextUpdate`` and ``entries``).

Like FIDO's, the BLOB is signed RS256 by default; ``alg="ES256"`` signs with a P-256 key, its
signature as JWS carries it (r || s, RFC 7518 3.4). ``mds_entry`` builds one entry, with the
metadata statement fields MDS3 requires.
"""

from __future__ import annotations

import base64
import datetime
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.support.authenticator import b64url

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "SA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hawiya Tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(
    subject: str,
    key: SigningKey,
    issuer: x509.Certificate | None,
    issuer_key: SigningKey,
    *,
    ca: bool,
    not_after: datetime.datetime | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer is not None else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=10))
        .not_valid_after(not_after or now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def _new_key(alg: str) -> SigningKey:
    return (
        ec.generate_private_key(ec.SECP256R1()) if alg == "ES256" else rsa.generate_private_key(65537, 2048)
    )


@dataclass
class MetadataService:
    """A test MDS: its root (what the operator pins) and the certificate that signs its BLOBs."""

    root_cert: x509.Certificate
    root_key: SigningKey
    signing_cert: x509.Certificate
    signing_key: SigningKey
    alg: str

    @classmethod
    def new(
        cls, name: str = "Test FIDO MDS Root", *, alg: str = "RS256", signer_expired: bool = False
    ) -> MetadataService:
        """A new root and a BLOB-signing certificate it issued (``signer_expired``: one whose
        validity ended yesterday)."""
        root_key = _new_key(alg)
        root = _certificate(name, root_key, None, root_key, ca=True)
        signing_key = _new_key(alg)
        not_after = (
            datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1) if signer_expired else None
        )
        signing = _certificate(
            f"{name} BLOB signer", signing_key, root, root_key, ca=False, not_after=not_after
        )
        return cls(root, root_key, signing, signing_key, alg)

    def root_pem(self) -> bytes:
        """The root certificate in PEM (HAWIYA_FIDO_MDS_ROOT)."""
        return self.root_cert.public_bytes(serialization.Encoding.PEM)

    def root_der(self) -> bytes:
        """The root certificate in DER (FIDO publishes its root this way)."""
        return self.root_cert.public_bytes(serialization.Encoding.DER)

    def blob(
        self, entries: Iterable[dict[str, Any]], *, number: int = 1, next_update: datetime.date | None = None
    ) -> bytes:
        """A BLOB listing ``entries``, signed by this service's signing certificate."""
        header = {
            "alg": self.alg,
            "typ": "JWT",
            "x5c": [base64.b64encode(self.signing_cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        payload = {
            "legalHeader": "Test metadata: not for production.",
            "no": number,
            "nextUpdate": (next_update or datetime.date.today() + datetime.timedelta(days=30)).isoformat(),
            "entries": list(entries),
        }
        message = f"{_part(header)}.{_part(payload)}".encode()
        return message + b"." + b64url(self._sign(message)).encode()

    def write(self, folder: Path, entries: Iterable[dict[str, Any]], **kwargs: Any) -> tuple[Path, Path]:
        """Write a BLOB and the root (PEM) into ``folder``; their paths (HAWIYA_FIDO_MDS_BLOB, _ROOT)."""
        blob, root = folder / "mds.jwt", folder / "mds-root.pem"
        blob.write_bytes(self.blob(entries, **kwargs))
        root.write_bytes(self.root_pem())
        return blob, root

    def _sign(self, message: bytes) -> bytes:
        key = self.signing_key
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _part(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def mds_entry(
    aaguid: bytes,
    roots: Sequence[x509.Certificate],
    *,
    statuses: Sequence[str] = ("FIDO_CERTIFIED_L2",),
    key_protection: Sequence[str] = ("hardware", "secure_element"),
    compromised: Sequence[x509.Certificate] = (),
    description: str = "Hawiya Test Security Key",
) -> dict[str, Any]:
    """An MDS3 entry for the model ``aaguid`` whose attestation certificates chain to ``roots``: one
    status report per ``statuses``, and an ATTESTATION_KEY_COMPROMISE report per ``compromised``
    attestation certificate."""
    today = datetime.date.today().isoformat()
    reports: list[dict[str, Any]] = [{"status": status, "effectiveDate": today} for status in statuses]
    reports += [
        {
            "status": "ATTESTATION_KEY_COMPROMISE",
            "effectiveDate": today,
            "certificate": base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode(),
        }
        for cert in compromised
    ]
    return {
        "aaguid": str(uuid.UUID(bytes=aaguid)),
        "statusReports": reports,
        "timeOfLastStatusChange": today,
        "metadataStatement": {
            "legalHeader": "Test metadata: not for production.",
            "aaguid": str(uuid.UUID(bytes=aaguid)),
            "description": description,
            "authenticatorVersion": 1,
            "protocolFamily": "fido2",
            "schema": 3,
            "upv": [{"major": 1, "minor": 1}],
            "authenticationAlgorithms": ["secp256r1_ecdsa_sha256_raw"],
            "publicKeyAlgAndEncodings": ["cose"],
            "attestationTypes": ["basic_full"],
            "userVerificationDetails": [[{"userVerificationMethod": "passcode_external"}]],
            "keyProtection": list(key_protection),
            "matcherProtection": ["on_chip"],
            "attachmentHint": ["external", "wired"],
            "tcDisplay": [],
            "attestationRootCertificates": [
                base64.b64encode(root.public_bytes(serialization.Encoding.DER)).decode() for root in roots
            ],
        },
    }
