"""Tables of the durable store. Only repositories and migrations import these."""

from idp.storage.models.base import Base
from idp.storage.models.tables import (
    Account,
    ActivationCode,
    AuditRecord,
    Authenticator,
    Client,
    Consent,
    InstanceSecret,
    Invitation,
    JwksPublication,
    Membership,
    Organisation,
    PairwiseSubject,
    RecoveryCode,
    RefreshToken,
    SigningKey,
)

__all__ = [
    "Account",
    "ActivationCode",
    "AuditRecord",
    "Authenticator",
    "Base",
    "Client",
    "Consent",
    "InstanceSecret",
    "Invitation",
    "JwksPublication",
    "Membership",
    "Organisation",
    "PairwiseSubject",
    "RecoveryCode",
    "RefreshToken",
    "SigningKey",
]
