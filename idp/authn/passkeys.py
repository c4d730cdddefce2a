"""Passkeys and security keys (WebAuthn): registering them, and signing in with them as a second
factor, for a step-up, or passwordless with a discoverable credential.

Each ceremony's challenge is 32 random bytes parked in the ephemeral store under the SHA-256 of a
random ceremony id that the page holds, for ``timeout`` seconds, and *taken* when the response
arrives: a challenge answers one response only, so a replayed response finds nothing. A ceremony
is bound to its purpose and, except for a passwordless sign-in, to the account it was made for.

The user handle of every credential is the account id (a random UUID: no personal data reaches
the authenticator). The signature counter and the backup-eligible flag are checked on each use: a
counter that does not move forward means a cloned key, and a credential whose BE flag changes is
not the credential that was registered (WebAuthn L3 6.1.3); either is refused and audited.

What a credential is worth is decided once, at registration: ``hardware_attested`` is stored only
when an attestation chain was verified against the trust anchors for its model and the AAGUID
policy admitted it (idp.authn.attestation), and the credential is not backup-eligible. That happens
for a "security key for high-assurance services" (its own ceremony: direct attestation, user
verification required) and for staff keys under ``staff_attestation``; ordinary passkeys are asked
for no attestation, so nothing is proven about them and they stop at substantial
(idp.authn.assurance).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from idp.accounts.service import AccountService
from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.authn import webauthn
from idp.authn.assurance import passwordless
from idp.authn.attestation import AttestationTrust
from idp.authn.factors import WEBAUTHN, Factor, clean_label, factor_of
from idp.authn.results import AuthResult
from idp.authn.throttle import Throttle
from idp.authn.webauthn import PasskeyRejected
from idp.clock import Clock
from idp.errors import NotAllowed, TooManyAttempts
from idp.settings import MFA_REQUIRED_ACCOUNT_TYPES
from idp.storage.ephemeral import EphemeralStore
from idp.storage.models import Authenticator
from idp.storage.repositories.authenticators import AuthenticatorRepository

REGISTER = "register"
#: A security key for high-assurance services: its own purpose, so an ordinary ceremony's response
#: (made without attestation) can never be posted as a high-assurance one, nor the other way round.
REGISTER_HIGH = "register-high"
SIGNIN = "signin"
FACTOR = "factor"


@dataclass(frozen=True)
class Ceremony:
    """A started ceremony: its id (the page posts it back) and the options for the browser."""

    id: str
    options: dict[str, Any]


@dataclass(frozen=True)
class PasskeyUse:
    """A verified assertion: whose credential it was, and what it proved."""

    account_id: str
    authenticator_id: str
    backup_eligible: bool
    user_verified: bool
    #: What the credential's registration proved (a verified attestation of device-bound hardware).
    hardware_attested: bool


@dataclass(frozen=True)
class RelyingParty:
    """Who the ceremonies are for: the RP ID, its name, and the one origin allowed."""

    rp_id: str
    name: str
    origin: str
    timeout: int
    #: Staff security keys must carry an attestation chain to the operator's roots.
    staff_attestation: bool = False


class Passkeys:
    """Register WebAuthn credentials and verify assertions made with them."""

    def __init__(
        self,
        repository: AuthenticatorRepository,
        accounts: AccountService,
        store: EphemeralStore,
        throttle: Throttle,
        clock: Clock,
        audit: AuditLog,
        rp: RelyingParty,
        trust: AttestationTrust | None = None,
    ) -> None:
        self._repository = repository
        self._accounts = accounts
        self._store = store
        self._throttle = throttle
        self._clock = clock
        self._audit = audit
        self._rp = rp
        self._trust = trust or AttestationTrust()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    # -- reading ----------------------------------------------------------------------------------

    def credentials(self, account_id: str) -> list[Authenticator]:
        """The account's confirmed WebAuthn credentials."""
        return [
            row
            for row in self._repository.for_account(account_id)
            if row.kind == WEBAUTHN and row.confirmed_at is not None and row.credential_id
        ]

    # -- registration -----------------------------------------------------------------------------

    @property
    def can_prove_hardware(self) -> bool:
        """True when a security key for high-assurance services can be registered here (some
        trust anchor is configured); without one, no credential can reach high."""
        return self._trust.can_prove_hardware

    def begin_registration(self, account_id: str, *, high_assurance: bool = False) -> Ceremony:
        """Options to create a new credential for the account (its existing ones excluded).

        An ordinary passkey is asked for no attestation (privacy), except a staff key under
        ``staff_attestation``. With ``high_assurance`` (a security key for high-assurance
        services): direct attestation and user verification required; NotAllowed when no trust
        anchor could verify its chain."""
        if high_assurance and not self.can_prove_hardware:
            raise NotAllowed("this service cannot register high-assurance security keys", code="no_anchors")
        person = self._accounts.get(account_id)
        challenge = secrets.token_bytes(32)
        options = webauthn.registration_options(
            rp_id=self._rp.rp_id,
            rp_name=self._rp.name,
            user_handle=account_id.encode(),
            user_name=person.username,
            display_name=person.name or person.username,
            challenge=challenge,
            exclude=[row.credential_id for row in self.credentials(account_id) if row.credential_id],
            direct_attestation=high_assurance or self._staff_attested(person.account_type),
            security_key=high_assurance,
            timeout_ms=self._rp.timeout * 1000,
        )
        purpose = REGISTER_HIGH if high_assurance else REGISTER
        return Ceremony(self._park(purpose, account_id, challenge), options)

    def finish_registration(
        self,
        account_id: str,
        ceremony_id: str,
        raw_credential: str,
        *,
        label: str,
        ip: str | None = None,
        high_assurance: bool = False,
    ) -> Factor:
        """Verify the browser's answer to ``begin_registration`` (made with the same
        ``high_assurance``) and keep the credential; PasskeyRejected otherwise.

        An attested registration (high assurance, or a staff key under ``staff_attestation``)
        passes the AAGUID policy and has its chain verified against the anchors for its model
        (high assurance: the operator's roots and the model's FIDO metadata roots; staff: the
        operator's roots). Such a key, not backup-eligible, is stored as proven hardware. A
        high-assurance key must also verify its user and be device-bound, or it is refused."""
        person = self._accounts.get(account_id)
        staff_attested = self._staff_attested(person.account_type)
        try:
            challenge = self._take(ceremony_id, REGISTER_HIGH if high_assurance else REGISTER, account_id)
            credential = webauthn.parse_credential(raw_credential)
            anchors, claimed = None, None
            if high_assurance or staff_attested:
                # The claimed AAGUID picks the anchors and meets the policy (a clear refusal before
                # any chain is checked); the attestation verified next signs the very bytes it
                # came from, so once verified it is the model's.
                claimed = webauthn.aaguid_of(credential)
                self._trust.admit(claimed)
                anchors = self._trust.anchors_for(claimed) if high_assurance else self._trust.operator_roots
            new = webauthn.verify_registration(
                credential,
                challenge=challenge,
                rp_id=self._rp.rp_id,
                origin=self._rp.origin,
                trust_anchors=anchors,
            )
            if new.attested:
                if new.aaguid != claimed:
                    raise PasskeyRejected("malformed")
                self._trust.check_chain(new.aaguid, new.attestation_chain)
            if high_assurance and not new.user_verified:
                raise PasskeyRejected("no_user_verification", "a high-assurance key must verify its user")
            if high_assurance and new.backup_eligible:
                raise PasskeyRejected("synced", "a passkey that syncs cannot be a high-assurance key")
            row = Authenticator(
                id=str(uuid.uuid4()),
                account_id=account_id,
                kind=WEBAUTHN,
                label=clean_label(label, "Passkey" if new.backup_eligible else "Security key"),
                credential_id=new.credential_id,
                public_key=new.public_key,
                sign_count=new.sign_count,
                backup_eligible=new.backup_eligible,
                backup_state=new.backup_state,
                user_verified=new.user_verified,
                transports=list(new.transports),
                aaguid=new.aaguid,
                hardware_attested=new.attested and not new.backup_eligible,
                created_at=self._now(),
                confirmed_at=self._now(),
            )
            if not self._repository.add_credential(row):
                raise PasskeyRejected("already_registered", "this passkey is already registered")
        except PasskeyRejected as rejected:
            self._audit.record(
                AuditEvent.AUTHENTICATOR_REJECTED,
                subject=account_id,
                ip=ip,
                detail={"kind": WEBAUTHN, "reason": rejected.reason},
            )
            raise
        self._audit.record(
            AuditEvent.AUTHENTICATOR_ADDED,
            subject=account_id,
            ip=ip,
            detail={
                "kind": WEBAUTHN,
                "authenticator": row.id,
                "synced": new.backup_eligible,
                "user_verified": new.user_verified,
                "attestation": new.attestation_format,
                "attested": new.attested,
                "hardware_attested": row.hardware_attested,
                "high_assurance": high_assurance,
                "aaguid": new.aaguid,
            },
        )
        return factor_of(row)

    # -- assertions -------------------------------------------------------------------------------

    def begin_assertion(self, account_id: str | None, *, only: Collection[str] | None = None) -> Ceremony:
        """Options to sign in with a credential: any of ``account_id``'s (a second factor or a
        step-up: user verification preferred), or only those whose authenticator ids are in
        ``only`` (the keys that can reach the level asked), or with none named (``account_id``
        None: a passwordless sign-in with a discoverable credential, user verification required)."""
        challenge = secrets.token_bytes(32)
        allow = (
            []
            if account_id is None
            else [
                (row.credential_id, row.transports or [])
                for row in self.credentials(account_id)
                if only is None or row.id in only
            ]
        )
        options = webauthn.authentication_options(
            rp_id=self._rp.rp_id,
            challenge=challenge,
            allow=[(ident, transports) for ident, transports in allow if ident],
            user_verification=account_id is None,
            timeout_ms=self._rp.timeout * 1000,
        )
        purpose = SIGNIN if account_id is None else FACTOR
        return Ceremony(self._park(purpose, account_id, challenge), options)

    def verify_assertion(
        self, ceremony_id: str, raw_credential: str, *, account_id: str | None
    ) -> PasskeyUse:
        """Check an assertion against its ceremony and the stored credential; PasskeyRejected
        otherwise. ``account_id`` None: the passwordless ceremony (the user handle decides)."""
        challenge = self._take(ceremony_id, SIGNIN if account_id is None else FACTOR, account_id)
        credential = webauthn.parse_credential(raw_credential)
        row = self._repository.by_credential_id(webauthn.credential_id_of(credential))
        if row is None or row.kind != WEBAUTHN or row.public_key is None:
            raise PasskeyRejected("unknown_credential", "this passkey is not registered with the service")
        if account_id is not None and row.account_id != account_id:
            raise PasskeyRejected("unknown_credential", "this passkey is not registered with the service")
        if account_id is None:
            handle = webauthn.user_handle_of(credential)
            if handle is None or not hmac.compare_digest(handle, row.account_id.encode()):
                raise PasskeyRejected("user_handle", "the passkey named another account")
        old_count = row.sign_count or 0
        verified = webauthn.verify_authentication(
            credential,
            challenge=challenge,
            rp_id=self._rp.rp_id,
            origin=self._rp.origin,
            public_key=row.public_key,
            sign_count=old_count,
            require_user_verification=account_id is None,
        )
        if verified.backup_eligible != bool(row.backup_eligible):
            raise PasskeyRejected("backup_eligibility_changed", "this is not the passkey that was registered")
        if not self._repository.record_assertion(
            row.id,
            old_count=old_count,
            new_count=verified.sign_count,
            backup_state=verified.backup_state,
            now=self._now(),
        ):
            raise PasskeyRejected("stale_counter", "this passkey was used at the same moment elsewhere")
        return PasskeyUse(
            row.account_id,
            row.id,
            verified.backup_eligible,
            verified.user_verified,
            hardware_attested=bool(row.hardware_attested),
        )

    # -- passwordless sign-in ---------------------------------------------------------------------

    def sign_in(self, ceremony_id: str, raw_credential: str, *, ip: str | None = None) -> AuthResult:
        """A passwordless sign-in: the result, or PasskeyRejected / TooManyAttempts (throttled per
        credential and per address, and audited like a password sign-in)."""
        subject = self._throttle_subject(raw_credential)
        if self._throttle.blocked(subject, ip):
            self._audit.record(AuditEvent.SIGNIN_THROTTLED, ip=ip, detail={"method": "webauthn"})
            raise TooManyAttempts("too many failed attempts; try again later")
        try:
            use = self.verify_assertion(ceremony_id, raw_credential, account_id=None)
            person = self._accounts.find(use.account_id)
            if person is None or not person.active:
                raise PasskeyRejected("inactive_account", "this account cannot sign in")
        except PasskeyRejected as rejected:
            self._throttle.failed(subject, ip)
            self._audit.record(
                AuditEvent.SIGNIN_FAILED, ip=ip, detail={"method": "webauthn", "reason": rejected.reason}
            )
            raise
        self._throttle.succeeded(subject)
        result = passwordless(
            use.account_id,
            int(self._clock.now()),
            backup_eligible=use.backup_eligible,
            hardware_attested=use.hardware_attested,
        )
        self._audit.record(
            AuditEvent.SIGNIN_SUCCEEDED,
            subject=use.account_id,
            ip=ip,
            detail={
                "method": "webauthn",
                "amr": list(result.amr),
                "acr": result.acr,
                "authenticator": use.authenticator_id,
            },
        )
        return result

    # -- helpers ----------------------------------------------------------------------------------

    def _staff_attested(self, account_type: str) -> bool:
        """True when this account's keys must carry an attestation (staff, with ``direct``)."""
        return self._rp.staff_attestation and account_type in MFA_REQUIRED_ACCOUNT_TYPES

    @staticmethod
    def _key(ceremony_id: str) -> str:
        return "webauthn:" + hashlib.sha256(ceremony_id.encode()).hexdigest()

    def _park(self, purpose: str, account_id: str | None, challenge: bytes) -> str:
        ceremony_id = secrets.token_urlsafe(24)
        state = {"purpose": purpose, "account": account_id, "challenge": webauthn.b64url(challenge)}
        self._store.put(self._key(ceremony_id), json.dumps(state).encode(), self._rp.timeout)
        return ceremony_id

    def _take(self, ceremony_id: str, purpose: str, account_id: str | None) -> bytes:
        raw = self._store.take(self._key(ceremony_id[:64])) if ceremony_id else None
        if raw is None:
            raise PasskeyRejected("expired_ceremony", "this request expired or was already used; try again")
        try:
            state = json.loads(raw)
        except ValueError:
            raise PasskeyRejected("expired_ceremony") from None
        if state.get("purpose") != purpose or state.get("account") != account_id:
            raise PasskeyRejected("expired_ceremony", "this request was made for something else; try again")
        return webauthn.unb64url(str(state.get("challenge", "")))

    @staticmethod
    def _throttle_subject(raw_credential: str) -> str:
        """Failed passwordless attempts count against the credential they named."""
        try:
            credential_id = webauthn.credential_id_of(webauthn.parse_credential(raw_credential))
        except PasskeyRejected:
            return "passkey:malformed"
        return "passkey:" + webauthn.b64url(credential_id)
