"""Tables of the durable store. Only repositories and migrations import these."""

from idp.storage.models.base import Base
from idp.storage.models.tables import (
    Account,
    AuditRecord,
    Authenticator,
    Client,
    Consent,
    InstanceSecret,
    PairwiseSubject,
    RecoveryCode,
    RefreshToken,
    SigningKey,
)

__all__ = [
    "Account",
    "AuditRecord",
    "Authenticator",
    "Base",
    "Client",
    "Consent",
    "InstanceSecret",
    "PairwiseSubject",
    "RecoveryCode",
    "RefreshToken",
    "SigningKey",
]
