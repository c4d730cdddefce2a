"""The closed catalogue of audit events.

Only these events can be recorded; adding one is a reviewed change here. The wire name (the enum
value) is what lands in the ``audit_events`` table and in exports, so never rename one.
A detail mapping may accompany an event; it must never hold a secret, password, code or token.
"""

from __future__ import annotations

from enum import StrEnum


class AuditEvent(StrEnum):
    """Every security-relevant thing Hawiya records."""

    # Sign-in and sessions
    SIGNIN_SUCCEEDED = "signin.succeeded"
    SIGNIN_FAILED = "signin.failed"
    SIGNIN_THROTTLED = "signin.throttled"
    #: The right password came from a browser that had not signed in to the account before (or
    #: whose device cookie expired): the person is told, in case it was not her.
    SIGNIN_NEW_DEVICE = "signin.new_device"
    PASSWORD_REHASHED = "password.rehashed"
    SESSION_STARTED = "session.started"
    SESSION_ENDED = "session.ended"
    SESSION_STEPPED_UP = "session.stepped_up"
    SESSION_REAUTHENTICATED = "session.reauthenticated"
    #: RP-initiated logout (detail: outcome, hint, redirect).
    LOGOUT_REQUESTED = "logout.requested"
    # Back-channel logout: a logout token reached an agency, will be sent again, or was given up
    LOGOUT_DELIVERED = "logout.delivered"
    LOGOUT_RETRYING = "logout.retrying"
    LOGOUT_ABANDONED = "logout.abandoned"
    # Second factors
    FACTOR_SUCCEEDED = "factor.succeeded"
    FACTOR_FAILED = "factor.failed"
    FACTOR_THROTTLED = "factor.throttled"
    RECOVERY_CODE_USED = "recovery_code.used"
    RECOVERY_CODES_GENERATED = "recovery_codes.generated"
    AUTHENTICATOR_ADDED = "authenticator.added"
    AUTHENTICATOR_RENAMED = "authenticator.renamed"
    AUTHENTICATOR_REMOVED = "authenticator.removed"
    AUTHENTICATOR_REMOVAL_REFUSED = "authenticator.removal_refused"
    AUTHENTICATOR_REJECTED = "authenticator.rejected"
    #: The address of record confirms a first factor (idp.authn.binding): a code was mailed, typed
    #: right, or refused (detail: reason ``no_address``, ``throttled``, ``wrong_code``).
    FIRST_FACTOR_CODE_SENT = "first_factor.code_sent"
    FIRST_FACTOR_CONFIRMED = "first_factor.confirmed"
    FIRST_FACTOR_REFUSED = "first_factor.refused"
    # Authorization
    CONSENT_GRANTED = "consent.granted"
    CONSENT_DENIED = "consent.denied"
    CONSENT_WITHDRAWN = "consent.withdrawn"
    CODE_ISSUED = "code.issued"
    CODE_REPLAYED = "code.replayed"
    #: A code issued without PKCE, to a confidential client holding the per-client exemption.
    CODE_ISSUED_WITHOUT_PKCE = "code.issued_without_pkce"
    TOKENS_ISSUED = "tokens.issued"
    TOKEN_REVOKED = "token.revoked"
    REFRESH_TOKEN_REUSED = "refresh_token.reused"
    CLIENT_AUTH_FAILED = "client.auth_failed"
    #: A client assertion named the token endpoint URL as its audience (deprecated, legacy clients).
    CLIENT_LEGACY_AUDIENCE_USED = "client.legacy_audience_used"
    # Accounts
    ACCOUNT_CREATED = "account.created"
    PASSWORD_CHANGED = "password.changed"
    #: The person followed the "this wasn't me" link of a security notification and confirmed:
    #: every session ended, every refresh token revoked (detail: the notification, counts).
    ACCOUNT_NOT_ME_REPORTED = "account.not_me_reported"
    #: A queued mail or text message was given up after its last attempt (detail: channel, error).
    MESSAGE_ABANDONED = "message.abandoned"
    #: A new password ended every session and revoked every token of the account.
    ACCOUNT_EVICTED = "account.evicted"
    # First credentials, self-registration, bulk import
    ACTIVATION_CODE_ISSUED = "activation_code.issued"
    ACTIVATION_CODE_USED = "activation_code.used"
    ACTIVATION_CODE_REFUSED = "activation_code.refused"
    #: Helpdesk asked for a code the account's second factors make need an approval.
    ACTIVATION_CODE_WITHHELD = "activation_code.withheld"
    ACTIVATION_THROTTLED = "activation.throttled"
    REGISTRATION_STARTED = "registration.started"
    REGISTRATION_COMPLETED = "registration.completed"
    REGISTRATION_REFUSED = "registration.refused"
    ACCOUNTS_IMPORTED = "accounts.imported"
    # Organisations and the roles people hold in them
    ORGANISATION_CREATED = "organisation.created"
    ORGANISATION_SUSPENDED = "organisation.suspended"
    ORGANISATION_REACTIVATED = "organisation.reactivated"
    MEMBERSHIP_GRANTED = "membership.granted"
    MEMBERSHIP_REMOVED = "membership.removed"
    MEMBERSHIP_REFUSED = "membership.refused"
    INVITATION_SENT = "invitation.sent"
    INVITATION_ACCEPTED = "invitation.accepted"
    #: An account whose verified email is not the invited address opened the link: nothing is
    #: granted until the inviter confirms it (detail: ``confirmed_by`` on the acceptance) or
    #: declines it (the claim is cleared and the link works again).
    INVITATION_CLAIMED = "invitation.claimed"
    INVITATION_DECLINED = "invitation.declined"
    INVITATION_REFUSED = "invitation.refused"
    # Clients (agencies)
    CLIENT_CREATED = "client.created"
    CLIENT_DISABLED = "client.disabled"
    CLIENT_UPDATED = "client.updated"
    CLIENT_SECRET_ROTATED = "client.secret_rotated"
    # Keys
    MASTER_KEY_CREATED = "master_key.created"
    SIGNING_KEY_CREATED = "signing_key.created"
    SIGNING_KEY_ROTATED = "signing_key.rotated"
    SIGNING_KEY_REVOKED = "signing_key.revoked"
    SIGNING_KEY_PRUNED = "signing_key.pruned"
    MASTER_KEY_ROTATED = "master_key.rotated"
    INSTANCE_SECRET_CREATED = "instance_secret.created"
    # Staff (the admin console and named CLI operators)
    OPERATION_REFUSED = "operation.refused"
    ACCOUNT_LOOKED_UP = "account.looked_up"


#: The routine successes of every sign-in and token request. When the IdP serves (``AuditLog.
#: start_batching``) they are written in batches a quarter of a second after the response, one COPY
#: for many, instead of one transaction each: each durable commit waits for the disk, and they were
#: most of a client_credentials request and a fifth of a whole sign-in. A worker killed outright can
#: lose its last batch. Every other event (failures, refusals, throttling, changes to accounts,
#: clients and keys, logouts) is written before the response.
HIGH_VOLUME = frozenset(
    {
        AuditEvent.SIGNIN_SUCCEEDED,
        AuditEvent.SESSION_STARTED,
        AuditEvent.FACTOR_SUCCEEDED,
        AuditEvent.CONSENT_GRANTED,
        AuditEvent.CODE_ISSUED,
        AuditEvent.TOKENS_ISSUED,
    }
)
