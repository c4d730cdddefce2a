"""A new password evicts whoever held the account.

A password is set anew when it may have been known to someone else: a helpdesk reset (an activation
code), the person changing it. Whoever signed in with the old one keeps nothing: every SSO session
of the account ends (its end listeners then revoke the session's tokens and queue back-channel
logout to its agencies), and every refresh family of the account is revoked, offline ones too, with
the access tokens they issued. ``AccountService`` calls ``password_set`` after every change of the
password; a re-hash of the same password (``replace_password_hash``) is not a change.
"""

from __future__ import annotations

from typing import Protocol

from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog

#: Why the sessions ended (a reason of ``idp.sessions.service``, audited and told to the agencies).
PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a reason, not a secret


class SessionEnder(Protocol):
    """What eviction needs of SSO sessions (``idp.sessions.service.SessionService`` fits it)."""

    def end_all(
        self, account_id: str, reason: str, *, except_handle: str | None = None, ip: str | None = None
    ) -> int:
        """End every session of the person; how many ended."""
        ...


class FamilyRevoker(Protocol):
    """What eviction needs of refresh tokens (``idp.oidc.refresh.RefreshTokens`` fits it)."""

    def revoke_account(self, account_id: str) -> list[str]:
        """Revoke every refresh family of the person and its access tokens; their ids."""
        ...


class Eviction:
    """End every session and revoke every token of an account whose password was set anew."""

    def __init__(self, sessions: SessionEnder, refresh: FamilyRevoker, audit: AuditLog) -> None:
        self._sessions = sessions
        self._refresh = refresh
        self._audit = audit

    def password_set(self, account_id: str, *, via: str, ip: str | None = None) -> None:
        """Evict everyone signed in to ``account_id``; ``via`` names the route (audited)."""
        ended, families = self.evict(account_id, PASSWORD_CHANGED, ip=ip)
        self._audit.record(
            AuditEvent.ACCOUNT_EVICTED,
            subject=account_id,
            ip=ip,
            detail={"via": via, "sessions": ended, "refresh_families": families},
        )

    def evict(self, account_id: str, reason: str, *, ip: str | None = None) -> tuple[int, int]:
        """End every session of ``account_id`` for ``reason`` and revoke every refresh family of
        it with their access tokens (a new password, a "this wasn't me" report); how many sessions
        ended and how many families were revoked. The caller audits why."""
        # Sessions first: their end listeners revoke session-bound tokens and tell the agencies.
        ended = self._sessions.end_all(account_id, reason, ip=ip)
        families = self._refresh.revoke_account(account_id)
        return ended, len(families)
