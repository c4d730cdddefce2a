"""The FIDO Metadata Service BLOB and the other attestation settings, read at start-up: a BLOB is
believed only once its JWS signature verifies with a chain to the root the operator named, and
anything wrong (an unreadable file, a signature that does not verify, another root, a bad root
file, an AAGUID that is not one) stops Hawiya from starting with one clear line, as a bad
trust-anchor file does. The BLOBs are signed by the test's own MDS (``MetadataService``)."""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path

import pytest

from idp.app import create_app
from idp.authn.mds import load_metadata
from idp.errors import ConfigurationError
from idp.settings import Settings
from tests.conftest import Backend, initialised, make_settings
from tests.support.authenticator import Attestation, b64url
from tests.support.mds import MetadataService, mds_entry

AAGUID = bytes.fromhex("6d44ba9bf6ec2e49b9300c8fe920cb73")
NOW = datetime.datetime.now(datetime.UTC)


@pytest.fixture
def maker() -> Attestation:
    """The attestation CA of a security key model."""
    return Attestation.issued_by_new_ca("Hawiya Test Key Maker CA", aaguid=AAGUID)


def _start(settings: Settings) -> None:
    """Build the app as `hawiya serve` does (raises what start-up raises)."""
    registry = initialised(settings)
    try:
        create_app(registry=registry, start_schedule=False)
    finally:
        registry.close()


def _with_payload(blob: bytes, payload: dict[str, object]) -> bytes:
    """``blob`` with its payload replaced and its signature kept (a tampered BLOB)."""
    header, _payload, signature = blob.split(b".")
    return b".".join([header, b64url(json.dumps(payload).encode()).encode(), signature])


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_blob_signed_with_a_chain_to_its_root_is_read(tmp_path: Path, maker: Attestation, alg: str) -> None:
    mds = MetadataService.new(alg=alg)
    blob, root = mds.write(tmp_path, [mds_entry(AAGUID, [maker.ca_cert])], number=42)
    metadata = load_metadata(str(blob), str(root), now=NOW)
    assert metadata.number == 42
    entry = metadata.entry("6d44ba9b-f6ec-2e49-b930-0c8fe920cb73")
    assert entry is not None and entry.hardware and entry.refused_status is None
    assert entry.roots == (maker.ca_pem(),)
    # FIDO publishes its root in DER: either form is read.
    root.write_bytes(mds.root_der())
    assert load_metadata(str(blob), str(root), now=NOW).number == 42


def test_entries_without_an_aaguid_are_left_out(tmp_path: Path, maker: Attestation) -> None:
    u2f = mds_entry(AAGUID, [maker.ca_cert])
    del u2f["aaguid"]
    u2f["attestationCertificateKeyIdentifiers"] = ["00" * 20]
    blob, root = MetadataService.new().write(tmp_path, [u2f])
    assert load_metadata(str(blob), str(root), now=NOW).entries == {}


def _bad_blob(tmp_path: Path, maker: Attestation, case: str) -> tuple[Path, Path]:
    mds = MetadataService.new()
    blob, root = mds.write(tmp_path, [mds_entry(AAGUID, [maker.ca_cert])])
    if case == "tampered payload":
        # An entry added after signing: the signature no longer covers what the file says.
        payload = json.loads(base64.urlsafe_b64decode(blob.read_bytes().split(b".")[1] + b"=="))
        payload["entries"].append(mds_entry(bytes(range(16)), [maker.ca_cert]))
        blob.write_bytes(_with_payload(blob.read_bytes(), payload))
    elif case == "signed under another root":
        blob.write_bytes(MetadataService.new("Another MDS Root").blob([mds_entry(AAGUID, [maker.ca_cert])]))
    elif case == "not a BLOB":
        blob.write_text("<html>Service Unavailable</html>")
    elif case == "empty":
        blob.write_bytes(b"")
    elif case == "expired signing certificate":
        blob.write_bytes(MetadataService.new(signer_expired=True).blob([mds_entry(AAGUID, [maker.ca_cert])]))
        root.write_bytes(MetadataService.new().root_pem())  # any root: the dates fail first
    elif case == "root file is not a certificate":
        root.write_text("GlobalSign Root R3, see the website\n")
    elif case == "root file missing":
        root.unlink()
    else:
        raise AssertionError(case)
    return blob, root


BAD_BLOBS = [
    "tampered payload",
    "signed under another root",
    "not a BLOB",
    "empty",
    "expired signing certificate",
    "root file is not a certificate",
]


@pytest.mark.parametrize("case", BAD_BLOBS)
def test_a_bad_blob_or_root_stops_start_up(
    tmp_path: Path, backend: Backend, maker: Attestation, case: str
) -> None:
    blob, root = _bad_blob(tmp_path, maker, case)
    settings = make_settings(tmp_path, backend, fido_mds_blob=str(blob), fido_mds_root=str(root))
    with pytest.raises(ConfigurationError) as refused:
        _start(settings)
    message = str(refused.value)
    assert "\n" not in message and ("FIDO metadata" in message or "HAWIYA_FIDO_MDS_ROOT" in message), message


def test_a_missing_blob_or_root_file_is_refused_by_the_settings(
    tmp_path: Path, backend: Backend, maker: Attestation
) -> None:
    blob, root = _bad_blob(tmp_path, maker, "root file missing")
    with pytest.raises(ConfigurationError, match="HAWIYA_FIDO_MDS_ROOT must name a file"):
        make_settings(tmp_path, backend, fido_mds_blob=str(blob), fido_mds_root=str(root))
    with pytest.raises(ConfigurationError, match="go together"):
        make_settings(tmp_path, backend, fido_mds_blob=str(blob))
    with pytest.raises(ConfigurationError, match="HAWIYA_ATTESTATION_TRUST_ANCHORS must name a PEM file"):
        make_settings(tmp_path, backend, attestation_trust_anchors=str(tmp_path / "missing.pem"))


def test_aaguid_lists_are_checked_at_start_up(tmp_path: Path, backend: Backend) -> None:
    with pytest.raises(ConfigurationError, match="'yubikey-5' is not an AAGUID"):
        make_settings(tmp_path, backend, attestation_aaguid_allow="yubikey-5")
    with pytest.raises(ConfigurationError, match="both allowed and denied"):
        make_settings(
            tmp_path,
            backend,
            attestation_aaguid_allow=AAGUID.hex(),
            attestation_aaguid_deny="6D44BA9B-F6EC-2E49-B930-0C8FE920CB73",
        )
    settings = Settings.from_env(
        {
            "HAWIYA_INSTANCE_PATH": str(tmp_path),
            "HAWIYA_ATTESTATION_AAGUID_DENY": f" {AAGUID.hex()} , ,00000000-0000-0000-0000-000000000000",
        }
    )
    assert settings.aaguid_deny_list == {
        "6d44ba9b-f6ec-2e49-b930-0c8fe920cb73",
        "00000000-0000-0000-0000-000000000000",
    }
    assert settings.aaguid_allow_list is None


def test_a_good_blob_lets_the_app_start(tmp_path: Path, backend: Backend, maker: Attestation) -> None:
    blob, root = MetadataService.new().write(tmp_path, [mds_entry(AAGUID, [maker.ca_cert])])
    _start(make_settings(tmp_path, backend, fido_mds_blob=str(blob), fido_mds_root=str(root)))
