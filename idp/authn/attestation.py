"""What proves a WebAuthn credential is device-bound hardware: an attestation chain, verified by
``idp.authn.webauthn``, that ends at a trust anchor for the credential's model, from a model the
AAGUID policy admits.

Trust anchors come from two places. The operator's PEM roots (``HAWIYA_ATTESTATION_TRUST_ANCHORS``)
anchor any model: the operator vouches for what they sign. A verified FIDO MDS3 BLOB
(``idp.authn.mds``) gives each model (AAGUID) its own roots, and only while its metadata says the
model keeps keys in hardware and no status report withdrew it.

The AAGUID a registration names is only a claim until the attestation signature is verified (the
statement signs the authenticator data that carries it). So the policy is applied twice: before
the chain is checked, to pick the anchors and refuse a denied model with a clear reason; and after,
to the verified AAGUID and chain (a certificate reported compromised).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from idp.authn.mds import Metadata, MetadataEntry
from idp.authn.webauthn import PasskeyRejected


@dataclass(frozen=True)
class AttestationTrust:
    """The anchors and the AAGUID policy attested registrations are checked against."""

    #: The operator's PEM roots: anchors for any model.
    operator_roots: tuple[bytes, ...] = ()
    #: A verified FIDO MDS3 BLOB: anchors per model.
    metadata: Metadata | None = None
    #: The only AAGUIDs admitted; None admits any model with a trusted chain.
    allowed: frozenset[str] | None = None
    #: AAGUIDs never admitted.
    denied: frozenset[str] = frozenset()

    @property
    def can_prove_hardware(self) -> bool:
        """True when some chain could verify here (no anchors: no key can reach high)."""
        return bool(self.operator_roots) or bool(self.metadata and self.metadata.entries)

    def anchors_for(self, aaguid: str) -> tuple[bytes, ...]:
        """The PEM roots a chain for the model ``aaguid`` may end at (empty: none can)."""
        entry = self._entry(aaguid)
        return self.operator_roots + (entry.roots if entry is not None else ())

    def admit(self, aaguid: str) -> None:
        """PasskeyRejected unless the policy admits the model ``aaguid`` (lower-case, hyphenated)."""
        if aaguid in self.denied:
            raise PasskeyRejected("aaguid_denied", "the service does not accept this model of security key")
        if self.allowed is not None and aaguid not in self.allowed:
            raise PasskeyRejected(
                "aaguid_not_allowed", "this model of security key is not one the service accepts"
            )
        entry = self._entry(aaguid)
        if entry is not None and entry.refused_status is not None:
            raise PasskeyRejected(
                "authenticator_revoked", "this model of security key was withdrawn for a security problem"
            )
        if entry is not None and not entry.hardware:
            raise PasskeyRejected("not_hardware", "this authenticator does not keep its keys in hardware")

    def check_chain(self, aaguid: str, chain: Sequence[bytes]) -> None:
        """PasskeyRejected when the verified ``chain`` (DER, leaf first) holds an attestation
        certificate the metadata reports compromised."""
        entry = self._entry(aaguid)
        if entry is not None and entry.compromised_certificates.intersection(chain):
            raise PasskeyRejected(
                "authenticator_revoked", "this security key's attestation key was reported compromised"
            )

    def _entry(self, aaguid: str) -> MetadataEntry | None:
        return self.metadata.entry(aaguid) if self.metadata is not None else None
