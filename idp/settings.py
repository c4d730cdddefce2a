"""One frozen, typed Settings object, read from ``HAWIYA_*`` environment variables.

Each field is documented where it is defined, with its secure default. ``Settings.from_env()``
validates everything at start-up and raises ``ConfigurationError`` with one clear line, so a
misconfigured IdP never starts half-working.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from idp.errors import ConfigurationError

#: The installed package (its templates/, static/ and i18n/ travel with it).
PACKAGE_ROOT = Path(__file__).resolve().parent

#: Levels of assurance: the acr values Hawiya asserts, weakest first.
LOA_LOW = "urn:hawiya:loa:low"
LOA_SUBSTANTIAL = "urn:hawiya:loa:substantial"
LOA_HIGH = "urn:hawiya:loa:high"
ACR_VALUES = (LOA_LOW, LOA_SUBSTANTIAL, LOA_HIGH)
#: Account types that must use a second factor (policy): they never hold a session below
#: ``LOA_SUBSTANTIAL`` and are sent to enrolment when they have no factor.
MFA_REQUIRED_ACCOUNT_TYPES = frozenset({"staff"})

LOCALES = ("ar", "en")
#: The HTTP servers ``hawiya serve`` can run.
SERVERS = ("gunicorn", "granian")
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: Seconds in a day, for the bounds below.
DAY = 86400


def bounded(default: Any, least: float, most: float) -> Any:
    """A numeric setting's default and the values it may take, inclusive. Every int and float
    field of Settings is declared through this (a test checks it), and ``Settings`` refuses a
    value outside its bounds: no setting can be forgotten, and none can switch a protection off
    (a throttle window of 0, a session without a timeout, Argon2id below OWASP's minimum)."""
    return field(default=default, metadata={"bounds": (least, most)})


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one Hawiya deployment."""

    #: The issuer identifier (OIDC Discovery 3): https, or plain http only on localhost.
    issuer: str = "http://localhost:8000"
    #: SQLAlchemy URL of the durable store: SQLite (embedded default) or PostgreSQL (psycopg 3).
    database_url: str = ""
    #: Ephemeral store: ``embedded`` (SQLite file beside the database) or a ``redis://`` URL.
    ephemeral_url: str = "embedded"
    #: Prefix of every Redis key, so several deployments (or test runs) can share one Redis.
    redis_prefix: str = "hawiya:"
    #: Folder of the embedded default's files (database, ephemeral store, outbox, demo.json);
    #: relative paths are taken from the working directory (``make run``: the repository root).
    instance_path: Path = Path("instance")
    #: The master key that seals private keys and secrets: base64 of 32 bytes. Wins over the file.
    master_key: str | None = field(default=None, repr=False)
    #: A master key being rotated out (base64): still unseals, never seals. Remove after re-sealing.
    previous_master_key: str | None = field(default=None, repr=False)
    #: File holding the master key; ``hawiya init`` creates it (0600) when absent.
    master_key_file: Path = Path("keys") / "master.key"
    #: Lifetime of an authorization code, seconds (60 s, single use).
    code_ttl: int = bounded(60, 1, 600)
    #: Lifetime of a JWT access token, seconds (RFC 9068; 5 minutes).
    access_token_ttl: int = bounded(300, 1, DAY)
    #: Lifetime of an ID token, seconds.
    id_token_ttl: int = bounded(600, 1, DAY)
    #: SSO session idle timeout at the low and substantial levels, seconds. NIST SP 800-63B-4
    #: asks at most 1 h at AAL2 and nothing at AAL1; low sessions get AAL2's limit too, because
    #: they also release a person's identity to agencies, often from shared computers.
    session_idle_ttl: int = bounded(3600, 1, DAY)
    #: SSO session absolute lifetime at the low and substantial levels, seconds, counted from
    #: sign-in. NIST allows 24 h at AAL2 (30 days at AAL1); 12 h covers a working day.
    session_absolute_ttl: int = bounded(12 * 3600, 1, 30 * DAY)
    #: Idle timeout once a session reaches the high level, seconds (NIST AAL3: at most 15 min).
    #: A step-up to high shortens the session's remaining time to the high limits; they never
    #: exceed the two above (a stricter setting there applies to high sessions too).
    session_idle_ttl_high: int = bounded(15 * 60, 1, 15 * 60)
    #: Absolute lifetime of a session at the high level, seconds, counted from sign-in (AAL3: 12 h).
    session_absolute_ttl_high: int = bounded(12 * 3600, 1, 12 * 3600)
    #: How often each server process ends the sessions that timed out, seconds: their agencies
    #: hear of it (back-channel logout) at most this long after the timeout, even when the
    #: browser never comes back.
    session_sweep_interval: int = bounded(30, 1, 3600)
    #: Lifetime of a refresh token issued with ``offline_access`` consent, seconds (30 days).
    #: Without it, refresh tokens live only as long as the SSO session they were issued in.
    offline_refresh_ttl: int = bounded(30 * 24 * 3600, 1, 365 * DAY)
    #: Server-side fetches (idp/outbound.py, docs/outbound.md): the whole of one fetch — resolving
    #: the name, connecting, TLS, the request and the last byte of the answer — must end within this
    #: many seconds (a total, not per read: a server dripping one byte a second is cut off).
    outbound_deadline: float = bounded(5.0, 0.001, 60)
    #: The largest answer a fetch reads, bytes (a JWK Set, a sector identifier document); more fails.
    outbound_max_bytes: int = bounded(64 * 1024, 1024, 16 * 1024 * 1024)
    #: ``http://host:port`` of a forward proxy for fetches of agency URLs (tunnelled with CONNECT to
    #: the address Hawiya resolved and checked). Unset: direct. The environment's proxy variables
    #: (``HTTPS_PROXY`` ...) are never used.
    outbound_proxy: str | None = None
    #: A PEM file of certificate authorities trusted for https fetches besides the system's (an
    #: internal CA; the test suite's own).
    outbound_ca_bundle: str = ""
    #: Least time between two fetches of a client's jwks_uri when an unknown kid shows up, seconds.
    client_jwks_refetch_interval: int = bounded(10, 1, 3600)
    #: How long a token request waits for a client's JWK Set being fetched, seconds; past it the
    #: request is refused (``invalid_client``) and the fetch finishes in the background, within
    #: ``outbound_deadline``, for the next request. The bound a slow agency host holds a worker.
    client_jwks_wait: float = bounded(2.0, 0.001, 60)
    #: How long a client's JWK Set is used before it is fetched again, seconds, when its answer has
    #: no Cache-Control max-age; a max-age is honoured between the least and the most below. The
    #: set is refreshed in the background shortly before it expires.
    client_jwks_ttl: int = bounded(3600, 1, 7 * DAY)
    client_jwks_min_ttl: int = bounded(60, 1, 7 * DAY)
    client_jwks_max_ttl: int = bounded(24 * 3600, 1, 7 * DAY)
    #: After a failed fetch of a jwks_uri, no other fetch of it for this many seconds, doubled after
    #: each further failure up to ``client_jwks_backoff_max`` (a dead host is not asked on every
    #: request). The last good keys serve meanwhile, for at most ``client_jwks_max_ttl`` after they
    #: were fetched.
    client_jwks_backoff: int = bounded(5, 1, DAY)
    client_jwks_backoff_max: int = bounded(600, 1, DAY)
    #: How long relying parties may cache the JWKS (its Cache-Control max-age), seconds. A new key
    #: is published at least this long before it signs, so the two can never contradict.
    jwks_max_age: int = bounded(300, 1, DAY)
    #: Rotate signing keys automatically after this many days (0: only by `hawiya keys rotate`).
    key_rotation_days: int = bounded(0, 0, 3650)
    #: Back-channel logout (OIDC Back-Channel Logout 1.0): every server process runs a worker that
    #: delivers logout tokens to agencies. Turn off where ``hawiya logout-worker`` runs on its own.
    backchannel_logout_worker: bool = True
    #: Delivery attempts of one logout token before it is given up (and audited as abandoned); the
    #: retries wait 5 s, 30 s, 2 min, 10 min, then 1 h each (6: the last try about 73 min after logout).
    backchannel_logout_attempts: int = bounded(6, 1, 20)
    #: How long one delivery may take, seconds, before it counts as failed (redirects never followed).
    backchannel_logout_timeout: int = bounded(5, 1, 60)
    #: Sign through a signing service instead of in process (see idp/keys/remote.py).
    signer_url: str | None = None
    #: The shared secret the signing service expects.
    signer_secret: str | None = field(default=None, repr=False)
    #: How long a parked sign-in (the authorization request waiting for the person) lives, seconds.
    interaction_ttl: int = bounded(900, 1, DAY)
    #: Minimum password length where a password alone signs in (NIST SP 800-63B-4: 15).
    password_min_length: int = bounded(15, 15, 64)
    #: Minimum password length where a second factor is always required (NIST: 8).
    password_min_length_mfa: int = bounded(8, 8, 64)
    #: Argon2id memory cost in KiB (OWASP minimum 19 MiB), iterations and lanes.
    argon2_memory_kib: int = bounded(19 * 1024, 19 * 1024, 4 * 1024 * 1024)
    argon2_iterations: int = bounded(2, 2, 100)
    argon2_lanes: int = bounded(1, 1, 64)
    #: Password attempts per (account, client address) allowed in ``signin_throttle_window``
    #: seconds; then the pair is blocked for the window, twice as long the next time, and so on up
    #: to ``signin_block_max`` seconds (idp/authn/throttle.py).
    signin_max_failures: int = bounded(10, 1, 100)
    signin_block_max: int = bounded(86400, 1, 30 * DAY)
    #: Password attempts per account from browsers that never signed in to it, from anywhere, in
    #: ``signin_account_window`` seconds (NIST SP 800-63B-4 3.2.2: at most 100).
    signin_account_max_failures: int = bounded(100, 1, 100)
    signin_account_window: int = bounded(86400, 1, 30 * DAY)
    #: How long a browser that signed in to an account is remembered as its device (passes the
    #: per-account cap), seconds.
    device_cookie_ttl: int = bounded(180 * 86400, 1, 400 * DAY)
    #: Failed sign-ins or second-factor codes from one IP address, across accounts, in a window
    #: (stops one address spraying many accounts below each account's own limit).
    ip_max_failures: int = bounded(100, 1, 100_000)
    signin_throttle_window: int = bounded(900, 1, DAY)
    #: Failed second-factor codes (TOTP or recovery) per account allowed in
    #: ``factor_throttle_window`` seconds (NIST SP 800-63B-4 3.2.2: at most 100 in a row).
    factor_max_failures: int = bounded(10, 1, 100)
    factor_throttle_window: int = bounded(900, 1, DAY)
    #: Changes in the account area (adding or removing a factor, new recovery codes) need a
    #: sign-in or password re-entry at most this many seconds old.
    reauth_max_age: int = bounded(300, 1, 3600)
    #: WebAuthn relying-party ID: the issuer's host (default) or a registrable suffix of it.
    webauthn_rp_id: str = ""
    #: How long a passkey ceremony (its challenge) stays usable, seconds.
    webauthn_timeout: int = bounded(300, 1, 3600)
    #: Attestation required of staff security keys: ``none`` (any authenticator) or ``direct`` (a
    #: certificate chain to one of ``attestation_trust_anchors``). People's ordinary passkeys are
    #: never asked for attestation (privacy): they reach ``substantial`` at most.
    staff_attestation: str = "none"
    #: PEM file of attestation root certificates the operator trusts, for any authenticator model:
    #: staff keys must chain to one with ``direct``, and a "security key for high-assurance
    #: services" that chains to one is proven hardware (``high``). Keep only roots that certify
    #: device-bound hardware keys (those the government issues, say): Hawiya takes the operator's
    #: word for every model they sign.
    attestation_trust_anchors: str = ""
    #: A FIDO Metadata Service BLOB (MDS3: the JWT file from https://mds3.fidoalliance.org/), read
    #: at start-up; the operator downloads it (Hawiya never fetches it) and restarts to refresh it.
    #: Its signature must verify with a chain to ``fido_mds_root``; then each entry's attestation
    #: root certificates become trust anchors for that entry's AAGUID only, for the high-assurance
    #: registration. Entries with a revoked or compromised status, or whose keys are not kept in
    #: hardware (``keyProtection``), prove nothing.
    fido_mds_blob: str = ""
    #: The root certificate (PEM or DER) the BLOB's signing chain must end at: FIDO's is GlobalSign
    #: Root CA - R3. Required with ``fido_mds_blob``.
    fido_mds_root: str = ""
    #: AAGUIDs (comma-separated) of the only authenticator models an attested key may be (staff keys
    #: with ``direct``, and high-assurance security keys); empty: any model with a trusted chain.
    attestation_aaguid_allow: str = ""
    #: AAGUIDs (comma-separated) of authenticator models an attested key may never be, whatever
    #: anchors its chain (a model the agency has withdrawn, say).
    attestation_aaguid_deny: str = ""
    #: Where mail goes: ``outbox`` (files under instance/outbox/) or an ``smtp://``/``smtps://`` relay.
    mail_url: str = "outbox"
    #: The From address of Hawiya's mail.
    mail_from: str = "Hawiya <no-reply@hawiya.localhost>"
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    #: Where text messages go: ``outbox`` (files under instance/outbox/sms/) is the only sender yet;
    #: a gateway plugs in behind the same ``SmsSender`` interface.
    sms_url: str = "outbox"
    #: Mail and text messages are queued and delivered by a worker in every server process. Turn it
    #: off where ``hawiya mail-worker`` runs on its own.
    mail_worker: bool = True
    #: Delivery attempts of one message before it is given up (and audited as abandoned); the
    #: retries wait 10 s, 1 min, 5 min, 30 min, then 2 h each.
    mail_attempts: int = bounded(6, 1, 20)
    #: How long a "this wasn't me" link in a security notification stays usable, seconds (7 days).
    not_me_ttl: int = bounded(7 * 24 * 3600, 1, 30 * DAY)
    #: How long an activation code (the first credential of a person created by staff or import)
    #: stays usable, seconds (7 days); a new code ends the earlier ones at once.
    activation_ttl: int = bounded(7 * 24 * 3600, 1, 30 * DAY)
    #: Visitors may create their own account at ``/register`` (an email code proves the address
    #: first). Citizens and residents never self-register: the national register is their source.
    self_registration: bool = True
    #: How long a self-registration waits for its email code, seconds (24 hours).
    registration_ttl: int = bounded(24 * 3600, 1, 7 * DAY)
    #: How many reverse proxies sit in front (their X-Forwarded-* headers are trusted); 0 = none.
    trusted_proxies: int = bounded(0, 0, 10)
    #: Language shown when the browser asks for none Hawiya speaks.
    default_locale: str = "ar"
    #: Log level of the ``idp`` logger.
    log_level: str = "INFO"
    #: The HTTP server of ``hawiya serve``: ``gunicorn`` (gthread workers), or ``granian`` (HTTP in
    #: Rust, the same WSGI app in threads: about 1.5 times gunicorn's client_credentials throughput,
    #: but slower on the sign-in pages in our runs; docs/performance.md).
    server: str = "gunicorn"
    #: Number of worker processes for ``hawiya serve``.
    workers: int = bounded(2, 1, 64)
    #: Threads per worker (gunicorn's gthread worker, granian's blocking threads): a request
    #: waiting on the database or Redis lets another run; idle keep-alive connections cost none.
    threads: int = bounded(4, 1, 256)
    #: Seconds an idle keep-alive connection stays open (above a load balancer's usual 60 s idle
    #: timeout, so the balancer, not Hawiya, closes it and never reuses a closing connection).
    keepalive: int = bounded(65, 1, 3600)
    #: Answer valid client_credentials requests before Flask (idp/http/lean_token.py); false sends
    #: every token request through Flask and Authlib.
    lean_token_path: bool = True
    #: State-changing ``hawiya`` commands refuse to run unless an operator is named
    #: (``HAWIYA_OPERATOR`` or ``--operator``: a staff username whose roles allow the command; the
    #: audit then names them instead of ``cli``). Off by default so a fresh install can bootstrap.
    cli_operator_required: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "instance_path", Path(self.instance_path).resolve())
        object.__setattr__(self, "master_key_file", Path(self.master_key_file).resolve())
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.instance_path / 'hawiya.db'}")
        self._validate()

    # -- derived values -------------------------------------------------------------------------

    @property
    def issuer_is_local_http(self) -> bool:
        """True when the issuer is plain http on localhost (development only)."""
        parts = urlsplit(self.issuer)
        return parts.scheme == "http" and (parts.hostname or "") in LOCAL_HOSTS

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry ``Secure`` everywhere except on plain-http localhost."""
        return not self.issuer_is_local_http

    @property
    def rp_id(self) -> str:
        """The WebAuthn relying-party ID."""
        return self.webauthn_rp_id or (urlsplit(self.issuer).hostname or "")

    @property
    def webauthn_origin(self) -> str:
        """The origin every WebAuthn ceremony must come from: the issuer's."""
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def aaguid_allow_list(self) -> frozenset[str] | None:
        """The AAGUIDs an attested key may be (lower-case, hyphenated); None when any may."""
        allowed = _aaguids("attestation_aaguid_allow", self.attestation_aaguid_allow)
        return allowed or None

    @property
    def aaguid_deny_list(self) -> frozenset[str]:
        """The AAGUIDs an attested key may never be (lower-case, hyphenated)."""
        return _aaguids("attestation_aaguid_deny", self.attestation_aaguid_deny)

    @property
    def uses_redis(self) -> bool:
        """True when the ephemeral store is Redis."""
        return self.ephemeral_url.startswith(("redis://", "rediss://", "unix://"))

    @property
    def embedded_ephemeral_path(self) -> Path:
        """Where the embedded ephemeral store keeps its SQLite file."""
        return self.instance_path / "ephemeral.db"

    @property
    def outbox_path(self) -> Path:
        """Where the default mail sender writes each message as a file."""
        return self.instance_path / "outbox"

    @property
    def sms_outbox_path(self) -> Path:
        """Where the default text-message sender writes each message as a file."""
        return self.outbox_path / "sms"

    # -- validation -----------------------------------------------------------------------------

    def _validate_bounds(self) -> None:
        """Every numeric setting within the bounds its field declares (``bounded``)."""
        for spec in dataclasses.fields(self):
            if "bounds" not in spec.metadata:
                continue
            least, most = spec.metadata["bounds"]
            value = getattr(self, spec.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not least <= value <= most:
                raise ConfigurationError(f"HAWIYA_{spec.name.upper()} must be between {least:g} and {most:g}")

    def _validate(self) -> None:
        self._validate_bounds()
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigurationError(f"HAWIYA_ISSUER must be an https URL, got {self.issuer!r}")
        if parts.scheme == "http" and not self.issuer_is_local_http:
            raise ConfigurationError("HAWIYA_ISSUER must use https (plain http only on localhost)")
        if parts.query or parts.fragment or self.issuer.endswith("/"):
            raise ConfigurationError(
                "HAWIYA_ISSUER must have no query, fragment or trailing slash (OIDC Discovery 3)"
            )
        if not self.database_url.startswith(("sqlite:", "postgresql")):
            raise ConfigurationError("HAWIYA_DATABASE_URL must be a sqlite: or postgresql URL")
        if self.ephemeral_url != "embedded" and not self.uses_redis:
            raise ConfigurationError("HAWIYA_EPHEMERAL_URL must be 'embedded' or a redis:// URL")
        if self.signer_url and not self.signer_secret:
            raise ConfigurationError("HAWIYA_SIGNER_URL needs HAWIYA_SIGNER_SECRET")
        host = urlsplit(self.issuer).hostname or ""
        if self.webauthn_rp_id and not (host == self.rp_id or host.endswith("." + self.rp_id)):
            raise ConfigurationError("HAWIYA_WEBAUTHN_RP_ID must be the issuer's host or a suffix of it")
        if self.mail_url != "outbox" and not self.mail_url.startswith(("smtp://", "smtps://")):
            raise ConfigurationError("HAWIYA_MAIL_URL must be 'outbox' or an smtp:// or smtps:// URL")
        if self.sms_url != "outbox":
            raise ConfigurationError("HAWIYA_SMS_URL must be 'outbox'")
        if self.staff_attestation not in ("none", "direct"):
            raise ConfigurationError("HAWIYA_STAFF_ATTESTATION must be 'none' or 'direct'")
        if self.staff_attestation == "direct" and not Path(self.attestation_trust_anchors or "-").is_file():
            raise ConfigurationError(
                "HAWIYA_STAFF_ATTESTATION=direct needs HAWIYA_ATTESTATION_TRUST_ANCHORS, a PEM file"
            )
        if self.attestation_trust_anchors and not Path(self.attestation_trust_anchors).is_file():
            raise ConfigurationError("HAWIYA_ATTESTATION_TRUST_ANCHORS must name a PEM file")
        if bool(self.fido_mds_blob) != bool(self.fido_mds_root):
            raise ConfigurationError(
                "HAWIYA_FIDO_MDS_BLOB and HAWIYA_FIDO_MDS_ROOT go together: the BLOB and the root"
                " certificate its signature must chain to"
            )
        for name in ("fido_mds_blob", "fido_mds_root"):
            if getattr(self, name) and not Path(getattr(self, name)).is_file():
                raise ConfigurationError(f"HAWIYA_{name.upper()} must name a file")
        both = (self.aaguid_allow_list or frozenset()) & self.aaguid_deny_list
        if both:
            raise ConfigurationError(f"AAGUID {min(both)} is both allowed and denied")
        if self.server not in SERVERS:
            raise ConfigurationError(f"HAWIYA_SERVER must be one of {', '.join(SERVERS)}")
        if self.default_locale not in LOCALES:
            raise ConfigurationError(f"HAWIYA_DEFAULT_LOCALE must be one of {', '.join(LOCALES)}")
        if self.password_min_length_mfa > self.password_min_length:  # each is bounded above
            raise ConfigurationError(
                "HAWIYA_PASSWORD_MIN_LENGTH_MFA must be at most HAWIYA_PASSWORD_MIN_LENGTH"
            )
        self._validate_outbound()

    def _validate_outbound(self) -> None:
        if self.outbound_proxy:
            proxy = urlsplit(self.outbound_proxy)
            if proxy.scheme != "http" or not proxy.hostname or proxy.path not in ("", "/"):
                raise ConfigurationError("HAWIYA_OUTBOUND_PROXY must be an http://host:port URL")
        if self.outbound_ca_bundle and not Path(self.outbound_ca_bundle).is_file():
            raise ConfigurationError("HAWIYA_OUTBOUND_CA_BUNDLE must name a PEM file")
        if self.client_jwks_wait > self.outbound_deadline:
            raise ConfigurationError("HAWIYA_CLIENT_JWKS_WAIT must be at most HAWIYA_OUTBOUND_DEADLINE")
        if not self.client_jwks_min_ttl <= self.client_jwks_ttl <= self.client_jwks_max_ttl:
            raise ConfigurationError(
                "JWKS cache lifetimes must satisfy HAWIYA_CLIENT_JWKS_MIN_TTL <= HAWIYA_CLIENT_JWKS_TTL"
                " <= HAWIYA_CLIENT_JWKS_MAX_TTL"
            )
        if self.client_jwks_backoff > self.client_jwks_backoff_max:
            raise ConfigurationError(
                "HAWIYA_CLIENT_JWKS_BACKOFF must be at most HAWIYA_CLIENT_JWKS_BACKOFF_MAX"
            )

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build Settings from ``HAWIYA_<FIELD>`` variables, then apply ``overrides``."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f"HAWIYA_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        values.update(overrides)
        try:
            return cls(**values)
        except TypeError as exc:  # an unknown override name
            raise ConfigurationError(str(exc)) from None


def _aaguids(name: str, raw: str) -> frozenset[str]:
    """A comma-separated list of AAGUIDs, canonical; ConfigurationError on anything else."""
    found = set()
    for item in raw.split(","):
        if not item.strip():
            continue
        try:
            found.add(str(uuid.UUID(item.strip())))
        except ValueError:
            raise ConfigurationError(f"HAWIYA_{name.upper()}: {item.strip()!r} is not an AAGUID") from None
    return frozenset(found)


def _parse(name: str, type_name: Any, raw: str) -> Any:
    text = str(type_name)
    try:
        if text == "int":
            return int(raw)
        if text == "float":
            return float(raw)
        if text == "bool":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if text == "Path":
            return Path(raw)
    except ValueError:
        raise ConfigurationError(f"HAWIYA_{name.upper()} has an invalid value for a {text} setting") from None
    return raw
