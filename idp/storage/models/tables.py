"""The durable tables.

The schema leaves room for later capabilities (business delegation, logout, key rotation, acr
minimums) so they add behaviour rather than re-migrate the core tables.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from idp.storage.models.base import Base
from idp.storage.models.types import UTCDateTime

#: Autoincrementing 64-bit key that SQLite also accepts (it only autoincrements INTEGER).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Account(Base):
    """A person: citizen, resident, visitor or staff (business roles attach to people later)."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    account_type: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="active")
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    name_ar: Mapped[str | None] = mapped_column(String(300), nullable=True)
    given_name: Mapped[str | None] = mapped_column(String(150), nullable=True)
    family_name: Mapped[str | None] = mapped_column(String(150), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True, index=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    phone_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    birthdate: Mapped[date | None] = mapped_column(Date, nullable=True)
    address: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    national_id: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    nationality: Mapped[str | None] = mapped_column(String(3), nullable=True)
    passport_number: Mapped[str | None] = mapped_column(String(32), nullable=True)
    proofing_level: Mapped[str] = mapped_column(String(32), default="self_asserted")
    locale: Mapped[str | None] = mapped_column(String(8), nullable=True)
    #: Staff roles and other per-type attributes later issues add without a new column each.
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


#: Usernames are unique whatever their case (sign-in looks them up case-insensitively).
Index("uq_accounts_username_lower", func.lower(Account.username), unique=True)


class Client(Base):
    """An agency's registered OpenID Connect client."""

    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_ar: Mapped[str | None] = mapped_column(String(200), nullable=True)
    agency: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    #: SHA-256 (hex) of the client secret; secrets are random, not passwords.
    secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(40))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    response_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    scope: Mapped[str] = mapped_column(Text)
    resources: Mapped[list[str]] = mapped_column(JSON, default=list)
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    jwks_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(10), default="RS256")
    subject_type: Mapped[str] = mapped_column(String(10), default="pairwise")
    sector_identifier: Mapped[str | None] = mapped_column(String(255), nullable=True)
    min_acr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The least proofing level (idp.accounts.identity.PROOFING_LEVELS) of the people it is given.
    min_proofing: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: A government service staff marked first-party: consent is implied (still recorded).
    first_party: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: OIDC Core 8.1: an https URL listing the redirect URIs of the sector's clients.
    sector_identifier_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: SHA-256 of the secret a rotation replaced, still accepted until ``previous_secret_expires_at``
    #: (the overlap that lets an agency deploy the new secret without an outage).
    previous_secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: A private_key_jwt client registered before the issuer became the only assertion audience: its
    #: assertions may still name the token endpoint URL (deprecated, each use audited). Set only by
    #: migration 0007 for the clients that existed then; staff can clear it, nobody can set it.
    legacy_assertion_audience: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: A confidential client excused from PKCE (RFC 9700 2.1.1 requires it otherwise); each code it
    #: gets without PKCE is audited.
    pkce_exempt: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Consent(Base):
    """What a person has allowed a client to receive (scopes, later individual claims)."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("account_id", "client_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    claims: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PairwiseSubject(Base):
    """The subject identifier a sector knows a person by (OIDC Core 8.1), and its reverse lookup."""

    __tablename__ = "pairwise_subjects"
    __table_args__ = (
        UniqueConstraint("sector", "subject"),
        UniqueConstraint("sector", "account_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sector: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))


class RefreshToken(Base):
    """A refresh token, stored only as a hash, in a rotation family bound to a session."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index("ix_refresh_tokens_family", "family_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[str] = mapped_column(String(36))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    sid: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    scope: Mapped[str] = mapped_column(Text)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    acr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    code_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    #: The OIDC Core 5.5 claims request the grant was made with (JSON), carried across rotations.
    claims: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Space-separated kids of the signing keys whose tokens were issued alongside (" kid kid "):
    #: revoking one of those keys revokes this token.
    key_ids: Mapped[str] = mapped_column(Text, default="")
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The organisation the person acts for in this grant (the ``business`` scope), if any.
    organisation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SigningKey(Base):
    """A signing key: public JWK in clear, private JWK sealed under the master key."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    use: Mapped[str] = mapped_column(String(8), default="sig")
    #: next -> current -> retired -> (removed); or revoked.
    state: Mapped[str] = mapped_column(String(10))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    private_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class InstanceSecret(Base):
    """A deployment-wide secret (pairwise salt, cookie signing key), sealed under the master key.

    Kept in the database so every IdP process shares it; re-sealed by master-key rotation.
    """

    __tablename__ = "instance_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    sealed_value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JwksPublication(Base):
    """A JWKS ``Cache-Control: max-age`` that serving processes publish, and when one last said so.

    Key rotation waits for the longest max-age recorded recently, not only for its own setting:
    a CLI configured with a shorter max-age than the servers would otherwise rotate too early.
    """

    __tablename__ = "jwks_publications"

    max_age: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Authenticator(Base):
    """Something a person holds that proves them as a second factor: a TOTP app or (later) a
    WebAuthn credential. It counts only once ``confirmed_at`` is set (a first valid code for TOTP,
    a verified registration for WebAuthn)."""

    __tablename__ = "authenticators"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    #: ``totp`` or ``webauthn``.
    kind: Mapped[str] = mapped_column(String(16))
    #: A name the person chose ("Phone", "Blue key").
    label: Mapped[str] = mapped_column(String(100))
    #: TOTP: the shared secret, sealed under the master key with the purpose ``totp:<id>``.
    secret_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: WebAuthn (the passkey slice): credential id, COSE public key, signature counter, the
    #: backup flags (BE/BS) and user verification (UV) of registration, transports and AAGUID.
    credential_id: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, unique=True)
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    sign_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    backup_eligible: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    backup_state: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    user_verified: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    transports: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    aaguid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    #: WebAuthn: a verified attestation chain proved, at registration, a device-bound key (a model
    #: the trust anchors and the AAGUID policy accept, not backup-eligible). Only such a key can
    #: reach ``high``; the flags an authenticator reports of itself prove nothing. Rows made before
    #: migration 0004 are false: nothing was proven about them.
    hardware_attested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RecoveryCode(Base):
    """A single-use recovery code, stored only as an HMAC-SHA256 under an instance secret."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditRecord(Base):
    """One audit event. Append-only: database triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    event: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str | None] = mapped_column(String(150), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(150), nullable=True, index=True)
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Organisation(Base):
    """A registered company or establishment people act for."""

    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    registration_number: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    name_ar: Mapped[str | None] = mapped_column(String(300), nullable=True)
    #: ``active`` or ``suspended`` (nobody can act for a suspended organisation).
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Membership(Base):
    """A person's role in an organisation: ``owner``, ``signatory`` or ``employee``."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("organisation_id", "account_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    #: The account that granted it, or ``operator:<name>`` for the CLI.
    granted_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Invitation(Base):
    """An invitation by email to join an organisation in a role (single use, expires)."""

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20))
    invited_by: Mapped[str] = mapped_column(String(64), index=True)
    #: SHA-256 of the code in the invitation link.
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    membership_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    accepted_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    #: The account that opened the link without a verified email at the invited address, waiting
    #: for the inviter to confirm or decline it (cleared on a decline; one claim at a time).
    claimed_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ActivationCode(Base):
    """A one-time code that lets a person created by staff or import set their first credential."""

    __tablename__ = "activation_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    #: HMAC-SHA256 of the code under an instance secret (codes are short enough to type).
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The address the code was mailed to (None: handed over at a counter or printed). Redeeming a
    #: mailed code proves that address, while it is still the account's.
    mailed_to: Mapped[str | None] = mapped_column(String(320), nullable=True)
