"""Tokens bound to an SSO session die with it (issue 8).

When a session ends (RP-initiated logout, sign-out, timeout, the person ending it from their
account), the refresh families issued in it without ``offline_access`` consent are revoked, and so
is every access token issued in it except those of offline grants: ``HawiyaServer.issue`` records
each under the grant ``session:<sid>`` in the TokenLedger. Offline families and their tokens live
on, as the person consented.
"""

from __future__ import annotations

from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.oidc.refresh import RefreshTokens
from idp.oidc.revocation import TokenLedger
from idp.sessions.service import SsoSession


def session_grant(sid: str) -> str:
    """The ledger grant under which the access tokens of session ``sid`` are recorded."""
    return "session:" + sid


class SessionTokens:
    """Revoke what an ended SSO session issued; a listener of SessionService."""

    def __init__(self, refresh: RefreshTokens, ledger: TokenLedger, audit: AuditLog) -> None:
        self._refresh = refresh
        self._ledger = ledger
        self._audit = audit

    def session_ended(self, session: SsoSession, reason: str) -> None:
        """Revoke the session-bound refresh families and access tokens of ``session``.

        The session's ledger mark goes first: a response being issued in the session right now
        either recorded its access token before the sweep or sees the mark (``HawiyaServer.issue``).
        """
        access_tokens = self._ledger.revoke_grant(session_grant(session.sid))
        families = self._refresh.revoke_for_session(session.sid)
        if access_tokens or families:
            self._audit.record(
                AuditEvent.TOKEN_REVOKED,
                subject=session.account_id,
                detail={
                    "reason": "session_ended",
                    "session_end": reason,
                    "sid": session.sid,
                    "refresh_families": len(families),
                    "access_tokens": access_tokens,
                },
            )
