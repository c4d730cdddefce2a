"""Tables of the durable store. Only repositories and migrations import these."""

from idp.storage.models.base import Base
from idp.storage.models.tables import (
    Account,
    AuditRecord,
    Client,
    Consent,
    InstanceSecret,
    PairwiseSubject,
    RefreshToken,
    SigningKey,
)

__all__ = [
    "Account",
    "AuditRecord",
    "Base",
    "Client",
    "Consent",
    "InstanceSecret",
    "PairwiseSubject",
    "RefreshToken",
    "SigningKey",
]
