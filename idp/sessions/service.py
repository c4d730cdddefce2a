"""SSO sessions.

The browser holds only a random handle in a cookie; the session lives in the ephemeral store under
the handle's SHA-256 (a leaked store does not yield usable cookies). The ``sid`` that ID tokens
carry is a separate random value, so an RP that sees ``sid`` learns nothing it could replay.
Sessions end after ``session_idle_ttl`` without use or ``session_absolute_ttl`` after sign-in.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field, replace

from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.authn.results import AuthResult
from idp.clock import Clock
from idp.storage.ephemeral import EphemeralStore


@dataclass(frozen=True)
class SsoSession:
    """What the IdP remembers about a signed-in browser."""

    sid: str
    account_id: str
    auth_time: int
    amr: tuple[str, ...]
    acr: str
    created_at: float
    last_seen: float
    clients: tuple[str, ...] = field(default=())

    @property
    def auth_result(self) -> AuthResult:
        """The authentication this session carries."""
        return AuthResult(self.account_id, self.auth_time, self.amr, self.acr)


class SessionService:
    """Start, find, touch and end SSO sessions."""

    def __init__(
        self, store: EphemeralStore, clock: Clock, audit: AuditLog, *, idle: int, absolute: int
    ) -> None:
        self._store = store
        self._clock = clock
        self._audit = audit
        self._idle = idle
        self._absolute = absolute

    @staticmethod
    def _key(handle: str) -> str:
        return "sso:" + hashlib.sha256(handle.encode()).hexdigest()

    def start(self, result: AuthResult, *, ip: str | None = None) -> tuple[str, SsoSession]:
        """A new session for ``result``; returns the cookie handle and the session."""
        now = self._clock.now()
        handle = secrets.token_urlsafe(32)
        session = SsoSession(
            sid=secrets.token_urlsafe(16),
            account_id=result.account_id,
            auth_time=result.auth_time,
            amr=tuple(result.amr),
            acr=result.acr,
            created_at=now,
            last_seen=now,
        )
        self._save(handle, session)
        self._audit.record(
            AuditEvent.SESSION_STARTED,
            subject=result.account_id,
            ip=ip,
            detail={"sid": session.sid},
        )
        return handle, session

    def find(self, handle: str | None) -> SsoSession | None:
        """The live session for a cookie handle, touched; None when absent or timed out."""
        if not handle:
            return None
        raw = self._store.get(self._key(handle))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            session = SsoSession(**{**data, "amr": tuple(data["amr"]), "clients": tuple(data["clients"])})
        except (ValueError, TypeError, KeyError):
            return None
        now = self._clock.now()
        if now - session.last_seen > self._idle or now - session.created_at > self._absolute:
            self.end(handle, reason="timeout")
            return None
        touched = replace(session, last_seen=now)
        self._save(handle, touched)
        return touched

    def step_up(
        self, handle: str, session: SsoSession, result: AuthResult, *, ip: str | None = None
    ) -> SsoSession:
        """Raise the session in place to ``result``'s acr and amr after a step-up (the person gave
        a further factor), keeping its ``sid``, its clients and its ``auth_time``: the password
        that started the session is still the one it rests on."""
        if result.account_id != session.account_id:
            raise ValueError("a step-up belongs to the session's own account")
        updated = replace(session, acr=result.acr, amr=tuple(dict.fromkeys((*session.amr, *result.amr))))
        self._save(handle, updated)
        self._audit.record(
            AuditEvent.SESSION_STEPPED_UP,
            subject=session.account_id,
            ip=ip,
            detail={"sid": session.sid, "from": session.acr, "to": updated.acr, "amr": list(updated.amr)},
        )
        return updated

    def reauthenticated(
        self, handle: str, session: SsoSession, result: AuthResult, *, ip: str | None = None
    ) -> SsoSession:
        """Record that the person re-entered their password: ``auth_time`` moves to now, the level
        the session reached stays (NIST SP 800-63B-4 allows re-authentication by password)."""
        if result.account_id != session.account_id:
            raise ValueError("a re-authentication belongs to the session's own account")
        updated = replace(session, auth_time=result.auth_time)
        self._save(handle, updated)
        self._audit.record(
            AuditEvent.SESSION_REAUTHENTICATED, subject=session.account_id, ip=ip, detail={"sid": session.sid}
        )
        return updated

    def add_client(self, handle: str, session: SsoSession, client_id: str) -> SsoSession:
        """Remember that ``client_id`` received tokens in this session (for logout)."""
        if client_id in session.clients:
            return session
        updated = replace(session, clients=(*session.clients, client_id))
        self._save(handle, updated)
        return updated

    def is_live(self, sid: str) -> bool:
        """True while the session with this ``sid`` lives (refresh tokens bound to it still work)."""
        return self._store.get("sso-sid:" + sid) is not None

    def end(self, handle: str, *, reason: str = "logout") -> None:
        """End the session behind ``handle``."""
        raw = self._store.take(self._key(handle))
        if raw is not None:
            data = json.loads(raw)
            self._store.delete("sso-sid:" + str(data.get("sid")))
            self._audit.record(
                AuditEvent.SESSION_ENDED,
                subject=data.get("account_id"),
                detail={"sid": data.get("sid"), "reason": reason},
            )

    def _save(self, handle: str, session: SsoSession) -> None:
        now = self._clock.now()
        ttl = int(min(self._idle, self._absolute - (now - session.created_at))) + 1
        self._store.put(self._key(handle), json.dumps(asdict(session)).encode(), max(1, ttl))
        self._store.put("sso-sid:" + session.sid, b"1", max(1, ttl))
