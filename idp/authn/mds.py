"""The FIDO Metadata Service (MDS3) BLOB, read from a file: the one module that speaks to
python-fido2 (``fido2.mds3``).

The BLOB is a JWS the FIDO Alliance signs; its header's ``x5c`` chain must end at the root the
operator names (``HAWIYA_FIDO_MDS_ROOT``), and the signature must verify with the chain's leaf,
before a single entry is believed (``parse_blob`` with a trust root). Only then does an entry's
``attestationRootCertificates`` become a trust anchor, and only for that entry's AAGUID.

What Hawiya keeps of an entry (``MetadataEntry``) is what decides whether a key of that model may
prove hardware: its roots, whether its metadata says the key is kept in hardware, and whether a
status report withdrew it. The FIDO Metadata Service 3.0 status values that refuse a model:
``REVOKED``, ``USER_VERIFICATION_BYPASS``, ``USER_KEY_REMOTE_COMPROMISE``,
``USER_KEY_PHYSICAL_COMPROMISE``, and ``ATTESTATION_KEY_COMPROMISE`` without a certificate (with
one, only chains holding that certificate are refused). A report counts whatever its date: a
later report does not undo a compromise (firmware versions are not tracked here).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from fido2.mds3 import AuthenticatorStatus, MetadataBlobPayloadEntry, parse_blob

from idp.errors import ConfigurationError

log = logging.getLogger(__name__)

#: Statuses that withdraw a whole model (ATTESTATION_KEY_COMPROMISE is handled per certificate).
REFUSING_STATUSES = frozenset(
    {
        AuthenticatorStatus.REVOKED,
        AuthenticatorStatus.USER_VERIFICATION_BYPASS,
        AuthenticatorStatus.USER_KEY_REMOTE_COMPROMISE,
        AuthenticatorStatus.USER_KEY_PHYSICAL_COMPROMISE,
    }
)
#: ``keyProtection`` values (FIDO Registry of Predefined Values 3.2) that keep a key inside
#: hardware it cannot be exported from; ``software`` (and a statement with none of these) does not.
HARDWARE_PROTECTION = frozenset({"hardware", "secure_element", "tee"})


@dataclass(frozen=True)
class MetadataEntry:
    """One authenticator model (an AAGUID) as the verified BLOB describes it."""

    aaguid: str
    description: str
    #: The model's attestation root certificates, PEM (trust anchors for this AAGUID only).
    roots: tuple[bytes, ...]
    #: The metadata says the model keeps its keys in hardware (``keyProtection``).
    hardware: bool
    #: The status that withdrew the model, or None.
    refused_status: str | None
    #: DER attestation certificates reported compromised (a chain holding one is refused).
    compromised_certificates: frozenset[bytes] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Metadata:
    """A verified MDS3 BLOB: its serial number, when FIDO plans the next, and its FIDO2 entries."""

    number: int
    next_update: date
    entries: Mapping[str, MetadataEntry]

    def entry(self, aaguid: str) -> MetadataEntry | None:
        """The entry for ``aaguid`` (lower-case, hyphenated), if the BLOB has one."""
        return self.entries.get(aaguid)


def load_metadata(blob_path: str, root_path: str, *, now: datetime) -> Metadata:
    """The BLOB at ``blob_path``, its signature verified with a chain to the certificate at
    ``root_path`` (PEM or DER); ConfigurationError, one line, for anything else."""
    root = _read_root(root_path)
    try:
        blob = Path(blob_path).read_bytes().strip()
    except OSError:
        raise ConfigurationError(f"cannot read the FIDO metadata BLOB {blob_path}") from None
    _check_chain_dates(blob, blob_path, now)
    try:
        payload = parse_blob(_der_signature(blob), root)
    except Exception:  # fido2 raises what cryptography, json or its own parser raise: all mean "no"
        log.debug("FIDO metadata BLOB refused", exc_info=True)
        raise ConfigurationError(
            f"the FIDO metadata BLOB {blob_path} is not a BLOB signed by a chain to the root in "
            f"{root_path} (HAWIYA_FIDO_MDS_ROOT)"
        ) from None
    if payload.next_update < now.date():
        log.warning(
            "the FIDO metadata BLOB %s was due to be replaced on %s: download the current one",
            blob_path,
            payload.next_update.isoformat(),
        )
    entries = {}
    for raw in payload.entries:
        entry = _entry(raw)
        if entry is not None:
            entries[entry.aaguid] = entry
    return Metadata(number=payload.no, next_update=payload.next_update, entries=entries)


def _read_root(path: str) -> bytes:
    """The root certificate, DER (what fido2 takes)."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        raise ConfigurationError(f"cannot read the FIDO metadata root certificate {path}") from None
    try:
        certificate = (
            x509.load_pem_x509_certificate(data)
            if b"-----BEGIN" in data
            else x509.load_der_x509_certificate(data)
        )
    except ValueError:
        raise ConfigurationError(f"no certificate in {path} (HAWIYA_FIDO_MDS_ROOT)") from None
    return certificate.public_bytes(serialization.Encoding.DER)


def _check_chain_dates(blob: bytes, path: str, now: datetime) -> None:
    """fido2 checks the chain's signatures, not its dates: an expired signing certificate (or one
    not valid yet) is refused here. Anything unreadable is left to ``parse_blob`` to refuse."""
    try:
        header = json.loads(base64.urlsafe_b64decode(blob.split(b".")[0] + b"==="))
        chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in header.get("x5c", [])]
    except (ValueError, TypeError, AttributeError):
        return
    for certificate in chain:
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise ConfigurationError(
                f"the FIDO metadata BLOB {path} is signed by a certificate that is not valid now "
                f"({certificate.subject.rfc4514_string()})"
            )


def _der_signature(blob: bytes) -> bytes:
    """The BLOB with an ECDSA signature in DER, as fido2 verifies it: a JWS carries r || s (RFC
    7518 3.4), which fido2 would refuse. FIDO signs RS256 today; this keeps an ES256 BLOB readable.
    Anything unreadable is returned as it is, for ``parse_blob`` to refuse."""
    try:
        message, signature = blob.rsplit(b".", 1)
        header = json.loads(base64.urlsafe_b64decode(message.split(b".")[0] + b"==="))
        raw = base64.urlsafe_b64decode(signature + b"===")
    except (ValueError, TypeError):
        return blob
    if not (isinstance(header, dict) and str(header.get("alg", "")).startswith("ES") and len(raw) % 2 == 0):
        return blob
    half = len(raw) // 2
    der = encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
    return message + b"." + base64.urlsafe_b64encode(der).rstrip(b"=")


def _entry(raw: MetadataBlobPayloadEntry) -> MetadataEntry | None:
    """What Hawiya keeps of a FIDO2 entry; None for entries it cannot use (UAF or U2F ones, with no
    AAGUID, or without a metadata statement or a readable root)."""
    statement = raw.metadata_statement
    if raw.aaguid is None or statement is None:
        return None
    try:
        roots = tuple(
            x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
            for der in statement.attestation_root_certificates
        )
    except ValueError:
        log.warning("FIDO metadata entry %s has an unreadable root certificate: ignored", raw.aaguid)
        return None
    refused = next((str(r.status.value) for r in raw.status_reports if r.status in REFUSING_STATUSES), None)
    compromised = frozenset(
        r.certificate
        for r in raw.status_reports
        if r.status == AuthenticatorStatus.ATTESTATION_KEY_COMPROMISE and r.certificate
    )
    if refused is None and any(
        r.status == AuthenticatorStatus.ATTESTATION_KEY_COMPROMISE and not r.certificate
        for r in raw.status_reports
    ):
        refused = str(AuthenticatorStatus.ATTESTATION_KEY_COMPROMISE.value)
    protection = set(statement.key_protection)
    return MetadataEntry(
        aaguid=str(raw.aaguid),
        description=statement.description,
        roots=roots,
        hardware=bool(protection & HARDWARE_PROTECTION) and "software" not in protection,
        refused_status=refused,
        compromised_certificates=compromised,
    )
