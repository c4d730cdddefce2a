"""Service wiring: builds each service once, from Settings, with its collaborators injected.

Services are created lazily, so ``hawiya init`` can build what it needs before the schema exists.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from idp.accounts.activation import ActivationCodes
from idp.accounts.eviction import Eviction
from idp.accounts.first_factor import FirstFactorConfirmations
from idp.accounts.importer import AccountImporter
from idp.accounts.notifications import NOTICES, Notifier, NotMeLinks, NotMeReports
from idp.accounts.organisations import Organisations
from idp.accounts.passwords import PasswordHasher
from idp.accounts.policy import PasswordPolicy
from idp.accounts.registration import Registrations
from idp.accounts.service import AccountService
from idp.admin.assurance import HighAssuranceReport
from idp.admin.console import StaffAuthority, StaffConsole
from idp.admin.keys import KeyAdministration
from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.authn.attestation import AttestationTrust
from idp.authn.devices import KnownDevices
from idp.authn.factors import Authenticators
from idp.authn.flow import PendingSignins
from idp.authn.mds import load_metadata
from idp.authn.mfa import SecondFactor
from idp.authn.passkeys import Passkeys, RelyingParty
from idp.authn.password import PasswordAuthenticator
from idp.authn.recovery import RecoveryCodes
from idp.authn.throttle import SigninThrottle, Throttle
from idp.authn.webauthn import load_trust_anchors
from idp.clock import Clock, SystemClock
from idp.emails import MailRenderer
from idp.keys.keystore import KeyFactory, KeyStore, generate_key
from idp.keys.readiness import KeyReadiness
from idp.keys.remote import RemoteSigner
from idp.keys.sealing import KeyFileSealer, Sealer
from idp.keys.signer import Signer, SoftwareSigner, TokenVerifier
from idp.mail import MailSender, SmsSender, open_sender, open_sms_sender
from idp.oidc.backchannel import BackchannelLogout, LogoutWorker
from idp.oidc.claims import SubjectService
from idp.oidc.clients import ClientService, fetch_sector_uris
from idp.oidc.codes import CodeStore
from idp.oidc.consent import ConsentService
from idp.oidc.introspection import AccessTokens, Introspection
from idp.oidc.jose import AssertionVerifier, ClientKeyCache, ClientKeyRefresher, fetch_client_keys
from idp.oidc.logout import RpInitiatedLogout
from idp.oidc.refresh import RefreshTokens
from idp.oidc.revocation import TokenLedger
from idp.oidc.server import HawiyaServer
from idp.oidc.session_tokens import SessionTokens
from idp.oidc.tokens import TokenIssuer
from idp.oidc.userinfo import UserinfoService
from idp.outbound import Outbound, Policy
from idp.outgoing import MessageQueue, MessageWorker, QueueingMailSender, QueueingSmsSender
from idp.sessions.interactions import InteractionStore
from idp.sessions.service import SessionService, Timeouts
from idp.sessions.sweeper import SessionSweeper
from idp.settings import LOA_HIGH, LOA_LOW, LOA_SUBSTANTIAL, Settings
from idp.storage.db import Database
from idp.storage.ephemeral import EphemeralStore, open_store
from idp.storage.files import private_folder
from idp.storage.generation import Generation
from idp.storage.repositories.accounts import AccountRepository
from idp.storage.repositories.activation import ActivationCodeRepository
from idp.storage.repositories.audit import AuditRepository
from idp.storage.repositories.authenticators import AuthenticatorRepository, RecoveryCodeRepository
from idp.storage.repositories.clients import ClientRepository
from idp.storage.repositories.consents import ConsentRepository
from idp.storage.repositories.keys import KeyRepository
from idp.storage.repositories.organisations import OrganisationRepository
from idp.storage.repositories.tokens import RefreshTokenRepository


class Registry:
    """Every service of one IdP process."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        *,
        hasher: PasswordHasher | None = None,
        key_factory: KeyFactory | None = None,
    ) -> None:
        """Services for ``settings``. ``hasher`` and ``key_factory`` replace the Argon2id hasher the
        settings describe and the generator of new signing keys: the test suite passes a cheap
        hasher and a pool of pre-made keys (docs/testing.md); a deployment never passes either."""
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self._hasher = hasher
        self._key_factory = key_factory or generate_key

    @cached_property
    def db(self) -> Database:
        """The durable database."""
        if self.settings.database_url.startswith("sqlite:"):
            private_folder(self.settings.instance_path)
        return Database(self.settings.database_url)

    @cached_property
    def store(self) -> EphemeralStore:
        """The ephemeral store."""
        if not self.settings.uses_redis:
            private_folder(self.settings.instance_path)
        return open_store(self.settings, self.clock)

    @cached_property
    def audit(self) -> AuditLog:
        """The audit log; security changes recorded in it are mailed to the person (Notifier)."""
        log = AuditLog(AuditRepository(self.db), self.clock)
        log.listen(self._notify)
        return log

    def _notify(self, event: AuditEvent, subject: str | None, actor: str | None, detail: Any) -> None:
        # The notifier is built on the first event it cares about, not with the audit log (which
        # `hawiya init` needs before there is a schema or a master key).
        if event in NOTICES:
            self.notifier.observe(event, subject, actor, detail)

    @cached_property
    def sealer(self) -> Sealer:
        """Sealing under the master key (following the key files while the process runs)."""
        return KeyFileSealer(self.settings)

    @cached_property
    def keystore(self) -> KeyStore:
        """Signing keys and instance secrets."""
        s = self.settings
        return KeyStore(
            KeyRepository(self.db),
            self.sealer,
            self.clock,
            self.audit,
            jwks_max_age=s.jwks_max_age,
            max_token_ttl=max(s.access_token_ttl, s.id_token_ttl),
            generation=Generation(self.store, "keys"),
            key_factory=self._key_factory,
        )

    @cached_property
    def signer(self) -> Signer:
        """The only place signatures are made: in process, or a signing service (HSM/KMS seam)."""
        if self.settings.signer_url:
            return RemoteSigner(
                self.settings.signer_url,
                secret=self.settings.signer_secret or "",
                outbound=self.operator_fetches,
            )
        return SoftwareSigner(self.keystore)

    @cached_property
    def key_readiness(self) -> KeyReadiness:
        """The readiness probe's proof that the keys work (an unseal and a signature)."""
        return KeyReadiness(
            self.keystore,
            self.sealer,
            self.signer,
            self.verifier,
            self.clock,
            check_unseal=not self.settings.signer_url,
        )

    @cached_property
    def verifier(self) -> TokenVerifier:
        """Verifies tokens this IdP issued."""
        return TokenVerifier(self.keystore)

    @cached_property
    def hasher(self) -> PasswordHasher:
        """Argon2id password hashing."""
        if self._hasher is not None:
            return self._hasher
        s = self.settings
        return PasswordHasher(
            memory_kib=s.argon2_memory_kib, iterations=s.argon2_iterations, lanes=s.argon2_lanes
        )

    @cached_property
    def accounts(self) -> AccountService:
        """Accounts."""
        policy = PasswordPolicy(
            min_length=self.settings.password_min_length,
            min_length_mfa=self.settings.password_min_length_mfa,
        )
        return AccountService(
            AccountRepository(self.db),
            self.hasher,
            policy,
            self.clock,
            self.audit,
            # Looked up when a password is set, not now: sessions and tokens need accounts built.
            on_password_set=(
                lambda account_id, *, via, ip: self.pending_signins.password_changed(
                    account_id, via=via, ip=ip
                ),
                lambda account_id, *, via, ip: self.eviction.password_set(account_id, via=via, ip=ip),
            ),
        )

    def _password_set(self, account_id: str, *, via: str, ip: str | None) -> None:
        # Looked up when a password is set, not when accounts are built: sessions and tokens need
        # accounts. Sign-ins waiting for a second step go first, so none finishes meanwhile.
        self.pending_signins.password_changed(account_id, via=via, ip=ip)
        self.eviction.password_set(account_id, via=via, ip=ip)

    @cached_property
    def eviction(self) -> Eviction:
        """A new password ends every session and revokes every token of the account."""
        return Eviction(self.sessions, self.refresh, self.audit)

    @cached_property
    def passwords(self) -> PasswordAuthenticator:
        """Password sign-in."""
        s = self.settings
        return PasswordAuthenticator(
            self.accounts,
            self.hasher,
            SigninThrottle(
                self.store,
                max_failures=s.signin_max_failures,
                window=s.signin_throttle_window,
                block_max=s.signin_block_max,
                account_max_failures=s.signin_account_max_failures,
                account_window=s.signin_account_window,
                ip_max_failures=s.ip_max_failures,
            ),
            self.devices,
            self.clock,
            self.audit,
        )

    @cached_property
    def devices(self) -> KnownDevices:
        """Device cookies of browsers that signed in to an account (they pass its failure cap)."""
        return KnownDevices(
            self.keystore.instance_secret("device_cookie_key"),
            self.clock,
            self.audit,
            ttl=self.settings.device_cookie_ttl,
        )

    def _throttle(self, name: str, max_failures: int, window: int) -> Throttle:
        return Throttle(
            self.store,
            name=name,
            max_failures=max_failures,
            ip_max_failures=self.settings.ip_max_failures,
            window=window,
        )

    @cached_property
    def authenticators(self) -> Authenticators:
        """TOTP and WebAuthn authenticators, TOTP secrets sealed under the master key."""
        return Authenticators(
            AuthenticatorRepository(self.db),
            self.sealer,
            self.store,
            self.clock,
            self.audit,
            issuer_name="Hawiya",
        )

    @cached_property
    def recovery_codes(self) -> RecoveryCodes:
        """Recovery codes, stored as HMACs under an instance secret."""
        return RecoveryCodes(
            RecoveryCodeRepository(self.db),
            self.keystore.instance_secret("recovery_code_key"),
            self.clock,
            self.audit,
        )

    @cached_property
    def mfa(self) -> SecondFactor:
        """The second factor: when it is asked, checking it, enrolment and removal rules."""
        return SecondFactor(
            self.accounts,
            self.authenticators,
            self.recovery_codes,
            self.passkeys,
            self._throttle("factor", self.settings.factor_max_failures, self.settings.factor_throttle_window),
            self.audit,
            self.clock,
        )

    @cached_property
    def first_factor(self) -> FirstFactorConfirmations:
        """The mailed code that lets a session bind an account's first second factor."""
        return FirstFactorConfirmations(self.store, self.mail, self.mail_renderer, self.clock, self.audit)

    @cached_property
    def mail_transport(self) -> MailSender:
        """What delivers mail, for the worker: files under instance/outbox/ by default, or an SMTP
        relay (over TLS only)."""
        settings = self.settings
        return open_sender(
            settings.mail_url,
            settings.outbox_path,
            settings.mail_from,
            user=settings.smtp_user,
            password=settings.smtp_password,
            outbound=self.operator_fetches,
        )

    @cached_property
    def sms_transport(self) -> SmsSender:
        """What delivers text messages, for the worker: files under instance/outbox/sms/ by default."""
        return open_sms_sender(self.settings.sms_url, self.settings.sms_outbox_path)

    @cached_property
    def messages(self) -> MessageQueue:
        """The queue of outgoing mail and text messages (sealed in the ephemeral store)."""
        return MessageQueue(
            self.store,
            self.sealer,
            self.mail_transport,
            self.sms_transport,
            self.clock,
            self.audit,
            max_attempts=self.settings.mail_attempts,
        )

    @cached_property
    def mail(self) -> MailSender:
        """Outgoing mail, queued: never delivered inside a request (the message worker does)."""
        return QueueingMailSender(self.messages)

    @cached_property
    def sms(self) -> SmsSender:
        """Outgoing text messages, queued like mail."""
        return QueueingSmsSender(self.messages)

    @cached_property
    def message_worker(self) -> MessageWorker:
        """The mail and SMS delivery worker (started by create_app or `hawiya mail-worker`)."""
        return MessageWorker(self.messages)

    @cached_property
    def mail_renderer(self) -> MailRenderer:
        """Mail bodies from the templates under idp/templates/emails/, in both languages."""
        return MailRenderer()

    @cached_property
    def not_me_links(self) -> NotMeLinks:
        """The single-use "this wasn't me" tokens of security notifications."""
        return NotMeLinks(self.store, ttl=self.settings.not_me_ttl)

    @cached_property
    def notifier(self) -> Notifier:
        """Security notifications (a factor bound or removed, new recovery codes, a new password)."""
        return Notifier(
            self.accounts,
            self.mail,
            self.not_me_links,
            self.mail_renderer,
            self.clock,
            not_me_url=f"{self.settings.issuer}/account/not-me",
        )

    @cached_property
    def not_me(self) -> NotMeReports:
        """Confirmed "this wasn't me" links: every session ends, every refresh token is revoked."""
        return NotMeReports(self.not_me_links, self.eviction.evict, self.audit)

    @cached_property
    def activation_codes(self) -> ActivationCodes:
        """First credentials of people created by staff or import, stored as HMACs."""
        s = self.settings
        return ActivationCodes(
            ActivationCodeRepository(self.db),
            self.accounts,
            self.authenticators,
            self.mail,
            self._throttle("activation", s.signin_max_failures, s.signin_throttle_window),
            self.keystore.instance_secret("activation_code_key"),
            self.clock,
            self.audit,
            ttl=s.activation_ttl,
            activate_url=f"{s.issuer}/activate",
            renderer=self.mail_renderer,
        )

    @cached_property
    def registrations(self) -> Registrations:
        """Visitors' self-registration, confirmed by an email code."""
        s = self.settings
        return Registrations(
            self.accounts,
            self.store,
            self.mail,
            self._throttle("register", s.signin_max_failures, s.signin_throttle_window),
            self._throttle("register-code", s.factor_max_failures, s.factor_throttle_window),
            self.clock,
            self.audit,
            ttl=s.registration_ttl,
            verify_url=f"{s.issuer}/register/verify",
            signin_url=f"{s.issuer}/signin",
            renderer=self.mail_renderer,
        )

    @cached_property
    def importer(self) -> AccountImporter:
        """Bulk import of people (staff files and national register extracts)."""
        return AccountImporter(self.accounts, self.activation_codes, self.audit)

    @cached_property
    def organisations(self) -> Organisations:
        """Organisations, the roles people hold in them, and invitations by mail."""
        return Organisations(
            OrganisationRepository(self.db),
            self.accounts,
            self.mail,
            self.clock,
            self.audit,
            issuer=self.settings.issuer,
            renderer=self.mail_renderer,
        )

    @cached_property
    def attestation_trust(self) -> AttestationTrust:
        """What proves a key is hardware: the operator's PEM roots, the verified FIDO metadata BLOB
        and the AAGUID policy (files read once; a bad one is a ConfigurationError)."""
        s = self.settings
        return AttestationTrust(
            operator_roots=load_trust_anchors(s.attestation_trust_anchors)
            if s.attestation_trust_anchors
            else (),
            metadata=(
                load_metadata(
                    s.fido_mds_blob, s.fido_mds_root, now=datetime.fromtimestamp(self.clock.now(), UTC)
                )
                if s.fido_mds_blob
                else None
            ),
            allowed=s.aaguid_allow_list,
            denied=s.aaguid_deny_list,
        )

    @cached_property
    def passkeys(self) -> Passkeys:
        """WebAuthn ceremonies: registering passkeys and security keys, signing in with them."""
        settings = self.settings
        return Passkeys(
            AuthenticatorRepository(self.db),
            self.accounts,
            self.store,
            self._throttle("signin", settings.signin_max_failures, settings.signin_throttle_window),
            self.clock,
            self.audit,
            RelyingParty(
                rp_id=settings.rp_id,
                name="Hawiya",
                origin=settings.webauthn_origin,
                timeout=settings.webauthn_timeout,
                staff_attestation=settings.staff_attestation == "direct",
            ),
            self.attestation_trust,
        )

    @cached_property
    def high_assurance_report(self) -> HighAssuranceReport:
        """Clients whose minimum level is high, and how many of their users can still reach it."""
        return HighAssuranceReport(self.clients, self.consents, self.mfa)

    @cached_property
    def pending_signins(self) -> PendingSignins:
        """Sign-ins between a right password and their second step."""
        return PendingSignins(self.store, self.clock, ttl=self.settings.interaction_ttl)

    @cached_property
    def sessions(self) -> SessionService:
        """SSO sessions."""
        s = self.settings
        lower = Timeouts(idle=s.session_idle_ttl, absolute=s.session_absolute_ttl)
        # A higher level never lives longer than a lower one (a stricter base setting wins).
        high = Timeouts(
            idle=min(s.session_idle_ttl_high, lower.idle),
            absolute=min(s.session_absolute_ttl_high, lower.absolute),
        )
        return SessionService(
            self.store,
            self.clock,
            self.audit,
            timeouts={LOA_LOW: lower, LOA_SUBSTANTIAL: lower, LOA_HIGH: high},
            # However a session ends: its session-bound tokens die, then its agencies are told
            # (queued for the back-channel worker; the person never waits on an agency).
            on_end=(self.session_tokens.session_ended, self.backchannel.session_ended),
        )

    @cached_property
    def session_sweeper(self) -> SessionSweeper:
        """The worker that ends timed-out sessions on time (started by create_app)."""
        return SessionSweeper(self.sessions, interval=self.settings.session_sweep_interval)

    @cached_property
    def interactions(self) -> InteractionStore:
        """Parked authorization requests."""
        return InteractionStore(self.store, self.clock, ttl=self.settings.interaction_ttl)

    @cached_property
    def clients(self) -> ClientService:
        """Registered clients."""
        return ClientService(
            ClientRepository(self.db),
            self.clock,
            self.audit,
            provision_alg=lambda alg: self.keystore.ensure_keys((alg,)),
            fetch_sector_uris=lambda url: fetch_sector_uris(self.agency_fetches, url),
            generation=Generation(self.store, "clients"),
            issuer=self.settings.issuer,
        )

    @cached_property
    def consents(self) -> ConsentService:
        """Consent decisions."""
        return ConsentService(ConsentRepository(self.db), self.refresh, self.clock, self.audit)

    @cached_property
    def subjects(self) -> SubjectService:
        """Pairwise subject identifiers."""
        return SubjectService(self.accounts, self.keystore.instance_secret("pairwise_salt"))

    @cached_property
    def backchannel(self) -> BackchannelLogout:
        """Back-channel logout: tokens queued when a session ends, delivered by the worker."""
        s = self.settings
        return BackchannelLogout(
            self.store,
            self.clients,
            lambda client, account_id: self.subjects.subject(client, account_id),
            self.signer,
            self.clock,
            self.audit,
            # The agency policy, with the delivery timeout as its deadline.
            Outbound(replace(Policy.agency(s), deadline=s.backchannel_logout_timeout)),
            issuer=s.issuer,
            max_attempts=s.backchannel_logout_attempts,
        )

    @cached_property
    def logout_worker(self) -> LogoutWorker:
        """The back-channel logout delivery worker (started by create_app or `hawiya logout-worker`)."""
        return LogoutWorker(self.backchannel)

    @cached_property
    def tokens(self) -> TokenIssuer:
        """Access and ID token minting."""
        s = self.settings
        return TokenIssuer(
            self.signer,
            self.clock,
            issuer=s.issuer,
            access_ttl=s.access_token_ttl,
            id_ttl=s.id_token_ttl,
        )

    @cached_property
    def codes(self) -> CodeStore:
        """Authorization codes."""
        return CodeStore(self.store, self.clock, self.audit, ttl=self.settings.code_ttl)

    @cached_property
    def ledger(self) -> TokenLedger:
        """Issued and revoked access tokens."""
        return TokenLedger(self.store, self.clock, access_ttl=self.settings.access_token_ttl)

    @cached_property
    def refresh(self) -> RefreshTokens:
        """Refresh tokens."""
        return RefreshTokens(
            RefreshTokenRepository(self.db),
            self.ledger,
            self.clock,
            self.audit,
            session_ttl=self.settings.session_absolute_ttl,
            offline_ttl=self.settings.offline_refresh_ttl,
        )

    @cached_property
    def session_tokens(self) -> SessionTokens:
        """Revokes the session-bound tokens of an SSO session that ends (a SessionService listener)."""
        return SessionTokens(self.refresh, self.ledger, self.audit)

    @cached_property
    def rp_logout(self) -> RpInitiatedLogout:
        """RP-initiated logout requests, checked."""
        return RpInitiatedLogout(
            clients=self.clients, verifier=self.verifier, subjects=self.subjects, issuer=self.settings.issuer
        )

    @cached_property
    def agency_fetches(self) -> Outbound:
        """Fetches of URLs agencies control (jwks_uri, sector identifier, back-channel logout)."""
        return Outbound(Policy.agency(self.settings))

    @cached_property
    def operator_fetches(self) -> Outbound:
        """Connections to services the operator configures (the remote signer, the SMTP relay)."""
        return Outbound(Policy.operator(self.settings))

    @cached_property
    def client_keys(self) -> ClientKeyCache:
        """Clients' JWK Sets from their jwks_uri, kept in this process."""
        s = self.settings
        fetches = self.agency_fetches
        return ClientKeyCache(
            self.clock,
            lambda url: fetch_client_keys(fetches, url),
            refetch_interval=s.client_jwks_refetch_interval,
            wait=s.client_jwks_wait,
            ttl=s.client_jwks_ttl,
            min_ttl=s.client_jwks_min_ttl,
            max_ttl=s.client_jwks_max_ttl,
            backoff=s.client_jwks_backoff,
            backoff_max=s.client_jwks_backoff_max,
        )

    @cached_property
    def client_key_refresher(self) -> ClientKeyRefresher:
        """Refreshes clients' JWK Sets ahead of expiry (started by create_app)."""
        return ClientKeyRefresher(self.client_keys)

    @cached_property
    def assertions(self) -> AssertionVerifier:
        """private_key_jwt client assertions."""
        issuer = self.settings.issuer
        return AssertionVerifier(
            self.store, self.clock, self.client_keys, issuer=issuer, token_endpoint=f"{issuer}/token"
        )

    @cached_property
    def access_tokens(self) -> AccessTokens:
        """Access-token validation."""
        return AccessTokens(self.verifier, self.ledger, self.clients, self.clock, issuer=self.settings.issuer)

    @cached_property
    def introspection(self) -> Introspection:
        """RFC 7662."""
        return Introspection(
            self.access_tokens, self.refresh, self.sessions.is_live, issuer=self.settings.issuer
        )

    @cached_property
    def oauth(self) -> HawiyaServer:
        """Authlib's authorization server, wired."""
        return HawiyaServer(
            organisations=self.organisations,
            clients=self.clients,
            codes=self.codes,
            refresh=self.refresh,
            ledger=self.ledger,
            accounts=self.accounts,
            subjects=self.subjects,
            tokens=self.tokens,
            assertions=self.assertions,
            sessions_live=self.sessions.is_live,
            audit=self.audit,
        )

    @cached_property
    def userinfo(self) -> UserinfoService:
        """The userinfo endpoint's logic."""
        return UserinfoService(
            self.access_tokens,
            self.ledger,
            self.clients,
            self.subjects,
            self.organisations,
            issuer=self.settings.issuer,
        )

    @cached_property
    def key_admin(self) -> KeyAdministration:
        """Key revocation with its consequences."""
        return KeyAdministration(self.keystore, self.refresh, self.audit)

    @cached_property
    def staff_authority(self) -> StaffAuthority:
        """The permission table applied to staff accounts (console and CLI operators)."""
        return StaffAuthority(self.accounts, self.audit)

    @cached_property
    def console(self) -> StaffConsole:
        """The staff console's operations, each behind its permission."""
        return StaffConsole(
            self.staff_authority,
            self.accounts,
            self.clients,
            self.keystore,
            self.activation_codes,
            self.authenticators,
            self.audit,
        )

    def keystore_rows_exist(self) -> bool:
        """True when the database already holds signing keys (sealed under some master key)."""
        return bool(KeyRepository(self.db).in_states("next", "current", "retired", "revoked"))

    def close(self) -> None:
        """Release connections."""
        if "session_sweeper" in self.__dict__:
            self.session_sweeper.stop()  # before the store and the listeners it uses go
        if "logout_worker" in self.__dict__:
            self.logout_worker.stop()  # before the store and database it uses go
        if "message_worker" in self.__dict__:
            self.message_worker.stop()
        if "client_key_refresher" in self.__dict__:
            self.client_key_refresher.stop()
        if "client_keys" in self.__dict__:
            self.client_keys.close()
        if "audit" in self.__dict__:
            self.audit.close()  # the pending batch, before the database goes
        if "store" in self.__dict__:
            self.store.close()
        if "db" in self.__dict__:
            self.db.dispose()
