"""A person's authenticators: TOTP apps and WebAuthn credentials (passkeys and security keys,
whose ceremonies live in idp.authn.passkeys).

TOTP enrolment creates an *unconfirmed* authenticator holding a fresh secret, sealed at rest under
the master key with the purpose ``totp:<authenticator id>`` (so a sealed secret copied into another
row does not open there). It counts only once a first valid code confirms it. A code is accepted
one 30-second step either side of now, and each step's code only once per authenticator (RFC 6238
5.2): the replay cache is an atomic ``add`` in the ephemeral store, which every IdP process shares.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.authn import totp
from idp.clock import Clock
from idp.errors import InvalidCode, InvalidInput, NotAllowed, NotFound
from idp.storage.ephemeral import EphemeralStore
from idp.storage.models import Authenticator
from idp.storage.repositories.authenticators import AuthenticatorRepository

TOTP = "totp"
WEBAUTHN = "webauthn"
LABEL_MAX = 100
#: How long a used step stays in the replay cache: the whole acceptance window, and then some.
_REPLAY_TTL = (2 * totp.TOLERANCE + 2) * totp.STEP_SECONDS


class Sealing(Protocol):
    """What this module needs of ``idp.keys.sealing.Sealer`` (injected by the registry)."""

    def seal(self, plaintext: bytes, *, purpose: str) -> str:
        """Encrypt and authenticate ``plaintext`` for ``purpose``."""
        ...

    def unseal(self, sealed: str, *, purpose: str) -> bytes:
        """Decrypt a value sealed for ``purpose``."""
        ...

    def reseal(self, sealed: str, *, purpose: str) -> str | None:
        """``sealed`` afresh under the primary master key, or None when it already is."""
        ...


@dataclass(frozen=True)
class Factor:
    """A confirmed authenticator as the account page shows it (never its secret)."""

    id: str
    kind: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    #: WebAuthn only: may sync to other devices (BE); verified its user when registered (UV).
    backup_eligible: bool | None = None
    user_verified: bool | None = None
    #: WebAuthn only: a verified attestation proved it device-bound hardware (what ``high`` needs).
    hardware_attested: bool | None = None

    @property
    def synced(self) -> bool:
        """A passkey that may sync between devices (its key can leave the device)."""
        return bool(self.backup_eligible)


def factor_of(row: Authenticator) -> Factor:
    """What may be shown of an authenticator row."""
    return Factor(
        row.id,
        row.kind,
        row.label,
        row.created_at,
        row.last_used_at,
        row.backup_eligible,
        row.user_verified,
        bool(row.hardware_attested) if row.kind == WEBAUTHN else None,
    )


@dataclass(frozen=True)
class TotpEnrolment:
    """A TOTP enrolment waiting for its first code: what the enrolment page shows."""

    authenticator_id: str
    label: str
    secret: str
    uri: str


class TotpReplayed(InvalidCode):
    """The code was right but its time step was already used (it may have been observed)."""

    code = "code_replayed"


def clean_label(label: str, default: str) -> str:
    """A label fit to store: trimmed, control characters removed, at most 100 characters."""
    printable = "".join(ch for ch in label if ch.isprintable()).strip()
    return printable[:LABEL_MAX] or default


def _purpose(authenticator_id: str) -> str:
    return f"totp:{authenticator_id}"


class Authenticators:
    """Enrol, check, list, rename and remove a person's authenticators."""

    def __init__(
        self,
        repository: AuthenticatorRepository,
        sealer: Sealing,
        store: EphemeralStore,
        clock: Clock,
        audit: AuditLog,
        *,
        issuer_name: str,
    ) -> None:
        self._repository = repository
        self._sealer = sealer
        self._store = store
        self._clock = clock
        self._audit = audit
        self._issuer_name = issuer_name

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    # -- reading ----------------------------------------------------------------------------------

    def factors(self, account_id: str) -> list[Factor]:
        """The account's confirmed authenticators, oldest first."""
        rows = self._repository.for_account(account_id)
        return [factor_of(row) for row in rows if row.confirmed_at is not None]

    def confirmed_kinds(self, account_id: str) -> set[str]:
        """The kinds of the account's confirmed authenticators."""
        return {factor.kind for factor in self.factors(account_id)}

    # -- TOTP enrolment ---------------------------------------------------------------------------

    def begin_totp(self, account_id: str, *, account_name: str, label: str = "") -> TotpEnrolment:
        """Start a TOTP enrolment (replacing any unfinished one of the account)."""
        self._repository.delete_unconfirmed(account_id, TOTP)
        ident = str(uuid.uuid4())
        secret = totp.new_secret()
        label = clean_label(label, "Authenticator app")
        self._repository.add(
            Authenticator(
                id=ident,
                account_id=account_id,
                kind=TOTP,
                label=label,
                secret_sealed=self._sealer.seal(secret.encode(), purpose=_purpose(ident)),
                created_at=self._now(),
            )
        )
        return TotpEnrolment(ident, label, secret, self._uri(secret, account_name))

    def enrolment(self, account_id: str, authenticator_id: str, *, account_name: str) -> TotpEnrolment | None:
        """The unfinished TOTP enrolment ``authenticator_id`` of the account, or None."""
        row = self._repository.get(account_id, authenticator_id)
        if row is None or row.kind != TOTP or row.confirmed_at is not None or row.secret_sealed is None:
            return None
        secret = self._secret(row)
        return TotpEnrolment(row.id, row.label, secret, self._uri(secret, account_name))

    def confirm_totp(
        self, account_id: str, authenticator_id: str, code: str, *, label: str = "", ip: str | None = None
    ) -> Factor:
        """Confirm an enrolment with its first valid code; InvalidCode otherwise."""
        row = self._repository.get(account_id, authenticator_id)
        if row is None or row.kind != TOTP or row.confirmed_at is not None or row.secret_sealed is None:
            raise NotFound("this enrolment has expired; start again")
        self._check(row, code)
        values = {"label": clean_label(label, row.label)} if label.strip() else {}
        if values:
            self._repository.update(account_id, authenticator_id, **values)
        if not self._repository.confirm(account_id, authenticator_id, self._now()):
            raise NotFound("this enrolment has expired; start again")
        self._audit.record(
            AuditEvent.AUTHENTICATOR_ADDED,
            subject=account_id,
            ip=ip,
            detail={"kind": TOTP, "authenticator": authenticator_id},
        )
        return Factor(row.id, TOTP, values.get("label", row.label), row.created_at, self._now())

    def provision_totp(self, account_id: str, *, label: str, actor: str) -> str:
        """Create a confirmed TOTP authenticator at once and return its secret (operator tooling:
        the demo prints it). People enrol through the pages, which require a first code."""
        ident = str(uuid.uuid4())
        secret = totp.new_secret()
        now = self._now()
        self._repository.add(
            Authenticator(
                id=ident,
                account_id=account_id,
                kind=TOTP,
                label=clean_label(label, "Authenticator app"),
                secret_sealed=self._sealer.seal(secret.encode(), purpose=_purpose(ident)),
                created_at=now,
                confirmed_at=now,
            )
        )
        self._audit.record(
            AuditEvent.AUTHENTICATOR_ADDED,
            actor=actor,
            subject=account_id,
            detail={"kind": TOTP, "authenticator": ident, "provisioned": True},
        )
        return secret

    # -- sign-in ----------------------------------------------------------------------------------

    def verify_totp(self, account_id: str, code: str) -> str:
        """The id of the confirmed TOTP authenticator whose code this is; InvalidCode (or its
        TotpReplayed) otherwise. The step is spent: the same code never works twice."""
        rows = [
            row
            for row in self._repository.for_account(account_id)
            if row.kind == TOTP and row.confirmed_at is not None and row.secret_sealed is not None
        ]
        for row in rows:
            step = totp.matching_step(self._secret(row), code, at=self._clock.now())
            if step is None:
                continue
            self._spend(row.id, step)
            self._repository.update(account_id, row.id, last_used_at=self._now())
            return row.id
        raise InvalidCode("the code is not correct")

    def _check(self, row: Authenticator, code: str) -> None:
        step = totp.matching_step(self._secret(row), code, at=self._clock.now())
        if step is None:
            raise InvalidCode("the code is not correct")
        self._spend(row.id, step)

    def _spend(self, authenticator_id: str, step: int) -> None:
        # RFC 6238 5.2: each step once; and never a step older than one already accepted, so a code
        # seen over someone's shoulder is useless once they have signed in with a newer one.
        last = self._store.get(f"totp-last:{authenticator_id}")
        if last is not None and int(last) >= step:
            raise TotpReplayed("this code was already used; wait for the next one")
        if not self._store.add(f"totp-used:{authenticator_id}:{step}", b"1", _REPLAY_TTL):
            raise TotpReplayed("this code was already used; wait for the next one")
        self._store.put(f"totp-last:{authenticator_id}", str(step).encode(), _REPLAY_TTL)

    # -- changes ----------------------------------------------------------------------------------

    def rename(self, account_id: str, authenticator_id: str, label: str, *, ip: str | None = None) -> None:
        """Give one of the account's confirmed authenticators a new label."""
        new = clean_label(label, "")
        if not new:
            raise InvalidInput("a name is required")
        row = self._repository.get(account_id, authenticator_id)
        if row is None or row.confirmed_at is None:
            raise NotFound("no such authenticator")
        self._repository.update(account_id, authenticator_id, label=new)
        self._audit.record(
            AuditEvent.AUTHENTICATOR_RENAMED,
            subject=account_id,
            ip=ip,
            detail={"authenticator": authenticator_id},
        )

    def remove(self, account_id: str, authenticator_id: str, *, keep_one: bool, ip: str | None = None) -> int:
        """Remove one of the account's authenticators; how many confirmed ones remain. With
        ``keep_one`` (policy requires MFA), removing the last one raises NotAllowed."""
        outcome = self._repository.remove(account_id, authenticator_id, keep_one=keep_one)
        if outcome == "missing":
            raise NotFound("no such authenticator")
        if outcome == "last":
            self._audit.record(
                AuditEvent.AUTHENTICATOR_REMOVAL_REFUSED,
                subject=account_id,
                ip=ip,
                detail={"authenticator": authenticator_id, "reason": "last_factor"},
            )
            raise NotAllowed("your account must keep at least one second factor", code="last_factor")
        self._audit.record(
            AuditEvent.AUTHENTICATOR_REMOVED,
            subject=account_id,
            ip=ip,
            detail={"authenticator": authenticator_id},
        )
        return self._repository.count_confirmed(account_id)

    # -- master-key rotation ----------------------------------------------------------------------

    def reseal(self) -> int:
        """Re-seal every TOTP secret under the primary master key (online; idempotent)."""
        count = 0
        for ident, sealed in self._repository.all_sealed():
            fresh = self._sealer.reseal(sealed, purpose=_purpose(ident))
            if fresh is not None and self._repository.replace_sealed(ident, sealed, fresh):
                count += 1
        return count

    # -- helpers ----------------------------------------------------------------------------------

    def _secret(self, row: Authenticator) -> str:
        assert row.secret_sealed is not None  # noqa: S101 - callers select TOTP rows with a secret
        return self._sealer.unseal(row.secret_sealed, purpose=_purpose(row.id)).decode()

    def _uri(self, secret: str, account_name: str) -> str:
        return totp.provisioning_uri(secret, account_name=account_name, issuer=self._issuer_name)
