"""SSO sessions: one per browser, server-side, the ``sid`` of OpenID Connect Back-Channel Logout
1.0 (section 2.1) shared by every ID token issued in it.

The browser holds only a random handle in a cookie; the session lives in the ephemeral store under
the handle's SHA-256 (a leaked store does not yield usable cookies). The ``sid`` that ID tokens
carry is a separate random value, so an RP that sees ``sid`` learns nothing it could replay.

A session ends after its level's idle timeout without use, or its absolute lifetime after sign-in
(NIST SP 800-63B-4 2.2.3 and 2.3.3: 1 h and 24 h at AAL2, 15 min and 12 h at AAL3); the limits
come from the settings (``session_idle_ttl`` ...). A step-up to a higher level applies that level's
limits from then on, so it only ever shortens what is left.

A session keeps every factor proven in it with its own time (``proofs``: the password at sign-in
and at each re-entry, a code, a security key ...), so what a request may be told (``acr``, ``amr``,
``auth_time``) rests only on the factors fresh enough for it (``assess``; idp/authn/results.py).
Sessions stored before then (one ``auth_time``, ``amr`` and ``acr``) are still read: every factor
they list counts as proven at their ``auth_time``.

The cookie handle changes at every authentication step (a step-up, a password re-entry): whoever
copied the handle before it (at a lower level, or before the person proved it was them) holds a
dead value. The ``sid`` stays, as OIDC Back-Channel Logout 1.0 wants of a session. The store has no
compare-and-set, so a request that read the session just before a rotation and writes its touch
just after would bring the old handle back; a rotation leaves a marker under the old handle's hash
that such a touch finds, and undoes itself.

Each session is also queued (``enqueue``, due when its limits would let it go) for ``sweep``, which a
background worker (idp/sessions/sweeper.py) runs: a session whose browser never comes back still
ends at its timeout, with its agencies told (back-channel logout), not whenever the person returns.

Each person's live sessions are indexed in a set (``sso-account:<account id>``, holding the handle
hashes) so the account area can list them and end any or all; an entry whose session is gone is
dropped when read. Whatever ends a session (sign-out, a new sign-in on the browser, a timeout, the
account area, RP-initiated logout) goes through one path that removes it, audits it and then tells
every end listener (revoking the session's tokens, back-channel logout), each on its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.authn.results import PASSWORD, AuthResult, Proof, assess, legacy_proofs, merge
from idp.clock import Clock
from idp.storage.ephemeral import EphemeralStore

log = logging.getLogger("idp.sessions")

# Why a session ended: audited, and handed to every end listener.
#: The person signed out on this browser.
SIGNOUT = "signout"
#: A relying party asked for the logout (OpenID Connect RP-Initiated Logout 1.0).
LOGOUT = "logout"
#: The browser signed in again (as anyone): its previous session ends.
REPLACED = "replaced"
#: The idle or absolute limit of the session's level passed.
TIMEOUT = "timeout"
#: The person ended it from another browser's account area.
ENDED_BY_PERSON = "ended_by_person"

#: The longest user agent kept (enough for any real browser's header).
USER_AGENT_MAX = 300
#: How long a timed-out session's record outlives its absolute end, seconds. Timeouts are found
#: by the sweeper, or when the browser comes back or the person lists their sessions; the record
#: lets that ending be audited and told to the listeners. Its ``sid`` stops being live at the
#: timeout itself.
DETECTION_GRACE = 3600
#: The queue of sessions waiting for their timeout (item: the handle's hash; due: the timeout).
SWEEP_QUEUE = "sso-timeouts"
#: How long a claimed sweep job is hidden from other sweepers, seconds (then it comes back, in case
#: its sweeper died).
SWEEP_LEASE = 60.0
#: How long the marker of a rotated handle stays, seconds: longer than any request that read the
#: session before the rotation can take to write its touch.
ROTATION_MARK = 300
#: Rotations followed to find the live handle of a session (each one is a step-up or re-entry).
_MAX_HOPS = 8


@dataclass(frozen=True)
class Timeouts:
    """How long a session at one level of assurance lives, seconds."""

    #: Without use.
    idle: int
    #: After sign-in, however used.
    absolute: int


@dataclass(frozen=True)
class SsoSession:
    """What the IdP remembers about a signed-in browser."""

    sid: str
    account_id: str
    created_at: float
    last_seen: float
    #: Every factor proven in this session, each at the last time it was proven.
    proofs: tuple[Proof, ...]
    #: The clients that received tokens in this session (whom logout must reach).
    clients: tuple[str, ...] = field(default=())
    #: The browser's ``User-Agent`` at sign-in, cut to ``USER_AGENT_MAX`` characters.
    user_agent: str = ""
    #: The address the sign-in came from.
    ip: str | None = None

    @property
    def first_seen(self) -> float:
        """When the session started (sign-in)."""
        return self.created_at

    def assess(self, fresh_since: float | None) -> AuthResult | None:
        """What the proofs made at or after ``fresh_since`` prove (all of them when None); None
        when they prove nothing (idp/authn/results.py ``assess``)."""
        return assess(self.account_id, self.proofs, fresh_since=fresh_since)

    @property
    def auth_result(self) -> AuthResult:
        """The authentication this session carries, all its proofs counted."""
        # Every session starts with a password or a key, which proves something on its own.
        return self.assess(None) or AuthResult(self.account_id, int(self.created_at), (), "")

    @property
    def acr(self) -> str:
        """The highest level the session reached (its timeouts are that level's)."""
        return self.auth_result.acr

    @property
    def amr(self) -> tuple[str, ...]:
        """Every factor the session rests on (RFC 8176)."""
        return self.auth_result.amr

    @property
    def auth_time(self) -> int:
        """The oldest proof the session's level rests on."""
        return self.auth_result.auth_time

    @property
    def last_authenticated(self) -> int:
        """When the person last authenticated on the strength of one factor alone: the password
        (at sign-in or re-entry) or a passkey that verified them. A code, or a key that did not
        verify them, counts only beside a password: a step-up with one alone does not count."""
        standalone = [proof.at for proof in self.proofs if not proof.needs_password]
        return max(standalone, default=int(self.created_at))

    def timed_out(self, now: float, limits: Timeouts) -> bool:
        """True once ``limits`` let the session go, at ``now``."""
        return now - self.last_seen > limits.idle or now - self.created_at > limits.absolute

    def deadline(self, limits: Timeouts) -> float:
        """When ``limits`` let the session go, unless it is used before."""
        return min(self.last_seen + limits.idle, self.created_at + limits.absolute)


#: Told of every ended session and why (``SIGNOUT``, ``TIMEOUT`` ...), after it is gone.
EndListener = Callable[[SsoSession, str], None]


def _digest(handle: str) -> str:
    return hashlib.sha256(handle.encode()).hexdigest()


def _session_key(digest: str) -> str:
    return "sso:" + digest


def _sid_key(sid: str) -> str:
    return "sso-sid:" + sid


def _account_key(account_id: str) -> str:
    return "sso-account:" + account_id


def _rotated_key(digest: str) -> str:
    return "sso-rotated:" + digest


def _decode(raw: bytes) -> tuple[SsoSession | None, bool]:
    """The stored session, and whether it was stored in the shape before proofs (to store again)."""
    try:
        data = json.loads(raw)
        legacy = "proofs" not in data
        if legacy:
            # One auth_time for every factor listed (and the level they reached together).
            proofs = legacy_proofs(data.pop("amr"), data.pop("acr"), int(data.pop("auth_time")))
        else:
            proofs = tuple(Proof(**{**p, "amr": tuple(p["amr"])}) for p in data["proofs"])
        data.update(proofs=proofs, clients=tuple(data["clients"]))
        return SsoSession(**data), legacy
    except (ValueError, TypeError, KeyError, AttributeError):
        return None, False


class SessionService:
    """Start, find, touch, list and end SSO sessions."""

    def __init__(
        self,
        store: EphemeralStore,
        clock: Clock,
        audit: AuditLog,
        *,
        timeouts: Mapping[str, Timeouts],
        on_end: Sequence[EndListener] = (),
    ) -> None:
        if not timeouts:
            raise ValueError("sessions need timeouts for at least one level")
        self._store = store
        self._clock = clock
        self._audit = audit
        self._timeouts = dict(timeouts)
        # An acr without limits of its own (none is asserted today) gets the strictest.
        self._strictest = Timeouts(
            idle=min(t.idle for t in timeouts.values()), absolute=min(t.absolute for t in timeouts.values())
        )
        self._longest = max(t.absolute for t in timeouts.values())
        self._on_end = tuple(on_end)

    def timeouts(self, acr: str) -> Timeouts:
        """The limits of a session at ``acr``."""
        return self._timeouts.get(acr, self._strictest)

    def start(
        self, result: AuthResult, *, ip: str | None = None, user_agent: str | None = None
    ) -> tuple[str, SsoSession]:
        """A new session for ``result``; returns the cookie handle and the session."""
        now = self._clock.now()
        handle = secrets.token_urlsafe(32)
        session = SsoSession(
            sid=secrets.token_urlsafe(16),
            account_id=result.account_id,
            created_at=now,
            last_seen=now,
            proofs=result.proven,
            user_agent=(user_agent or "")[:USER_AGENT_MAX],
            ip=ip,
        )
        digest = _digest(handle)
        self._save(digest, session)
        # Saved before indexed: a listed entry without its session can only be a stale one.
        self._store.add_member(_account_key(session.account_id), digest, self._longest + DETECTION_GRACE)
        self._schedule(digest, session)
        self._audit.record(
            AuditEvent.SESSION_STARTED,
            subject=result.account_id,
            ip=ip,
            detail={"sid": session.sid},
        )
        return handle, session

    def find(self, handle: str | None) -> SsoSession | None:
        """The live session for a cookie handle, touched; None when absent or timed out (a timed
        out session is ended, with its listeners told)."""
        if not handle:
            return None
        digest = _digest(handle)
        session, legacy = self._load(digest)
        if session is None:
            return None
        now = self._clock.now()
        if session.timed_out(now, self.timeouts(session.acr)):
            self._end(digest, TIMEOUT)
            return None
        touched = replace(session, last_seen=now)
        self._save(digest, touched)
        moved = self._store.get(_rotated_key(digest))
        if moved is not None:
            # The handle was rotated between this read and this write: take the write back, so
            # the old handle stays dead, and point the sid at the live handle again.
            self._store.delete(_session_key(digest))
            self._store.remove_member(_account_key(session.account_id), digest)
            self._repoint(session.sid, moved.decode())
            return None
        if legacy:
            self._schedule(digest, touched)  # stored before the sweeper: queue it now
        return touched

    def sessions_of(self, account_id: str) -> list[SsoSession]:
        """The person's live sessions, most recently used first. Entries whose session is gone are
        dropped from the index; sessions found timed out are ended."""
        now = self._clock.now()
        live: list[SsoSession] = []
        for digest in self._store.members(_account_key(account_id)):
            session, _legacy = self._load(digest)
            if session is None:
                self._store.remove_member(_account_key(account_id), digest)
            elif session.timed_out(now, self.timeouts(session.acr)):
                self._end(digest, TIMEOUT)
            else:
                live.append(session)
        return sorted(live, key=lambda s: (s.last_seen, s.created_at), reverse=True)

    def step_up(
        self, handle: str, session: SsoSession, result: AuthResult, *, ip: str | None = None
    ) -> tuple[str, SsoSession]:
        """Raise the session to what ``result`` adds (the person gave a further factor, recorded
        with its time), keeping its ``sid`` and its clients; the new cookie handle and the session
        (the old handle no longer works). The new level's limits apply from now on (counted, like
        all of them, from the sign-in and the last use)."""
        if result.account_id != session.account_id:
            raise ValueError("a step-up belongs to the session's own account")
        updated = replace(session, proofs=merge(session.proofs, result.proven))
        new_handle = self._rotate(handle, updated)
        self._audit.record(
            AuditEvent.SESSION_STEPPED_UP,
            subject=session.account_id,
            ip=ip,
            detail={"sid": session.sid, "from": session.acr, "to": updated.acr, "amr": list(updated.amr)},
        )
        return new_handle, updated

    def reauthenticated(
        self, handle: str, session: SsoSession, result: AuthResult, *, ip: str | None = None
    ) -> tuple[str, SsoSession]:
        """Record that the person re-entered their password: the password's time moves to now and
        nothing else does (a code typed an hour ago stays an hour old). The new cookie handle and
        the session (the old handle no longer works)."""
        if result.account_id != session.account_id:
            raise ValueError("a re-authentication belongs to the session's own account")
        passwords = [proof for proof in result.proven if proof.factor == PASSWORD]
        if not passwords:
            raise ValueError("a re-authentication is a password")
        updated = replace(session, proofs=merge(session.proofs, passwords))
        new_handle = self._rotate(handle, updated)
        self._audit.record(
            AuditEvent.SESSION_REAUTHENTICATED, subject=session.account_id, ip=ip, detail={"sid": session.sid}
        )
        return new_handle, updated

    def add_client(self, handle: str, session: SsoSession, client_id: str) -> SsoSession:
        """Remember that ``client_id`` received tokens in this session (for logout)."""
        if client_id in session.clients:
            return session
        updated = replace(session, clients=(*session.clients, client_id))
        self._save(_digest(handle), updated)
        return updated

    def is_live(self, sid: str) -> bool:
        """True while the session with this ``sid`` lives (refresh tokens bound to it still work)."""
        return self._store.get(_sid_key(sid)) is not None

    def end(self, handle: str, *, reason: str = LOGOUT, ip: str | None = None) -> SsoSession | None:
        """End the session behind a cookie ``handle``; the ended session, or None when there was
        none."""
        return self._end(_digest(handle), reason, ip=ip)

    def end_by_sid(
        self, sid: str, reason: str, *, account_id: str | None = None, ip: str | None = None
    ) -> SsoSession | None:
        """End the session whose ID tokens carry ``sid``; with ``account_id``, only when it is that
        person's. The ended session, or None when there was none (or it was someone else's)."""
        found = self._store.get(_sid_key(sid))
        if found is None:
            return None
        digest = found.decode()
        if account_id is not None:
            session, _legacy = self._load(digest)
            if session is None or session.account_id != account_id or session.sid != sid:
                return None
        return self._end(digest, reason, ip=ip)

    def end_all(
        self, account_id: str, reason: str, *, except_handle: str | None = None, ip: str | None = None
    ) -> int:
        """End every session of the person except the one behind ``except_handle`` (this browser,
        when it stays signed in); how many ended."""
        keep = _digest(except_handle) if except_handle else None
        ended = 0
        for digest in self._store.members(_account_key(account_id)):
            if digest != keep and self._end(digest, reason, ip=ip) is not None:
                ended += 1
        return ended

    def sweep(self, *, limit: int = 100) -> int:
        """End the sessions whose timeout has passed (up to ``limit`` looked at), so their
        listeners run on time even when their browser never comes back; how many ended. A queued
        session used since it was queued is queued again at its new timeout. Safe in every process
        at once: each due session is claimed by one sweeper."""
        now = self._clock.now()
        ended = 0
        for _ in range(limit):
            job = self._store.claim(SWEEP_QUEUE, now=now, lease=SWEEP_LEASE)
            if job is None:
                break
            digest = job.item
            session, _legacy = self._load(digest)
            if session is None:  # ended or rotated meanwhile (a rotation queues the new handle)
                self._store.dequeue(SWEEP_QUEUE, digest)
            elif session.timed_out(now, self.timeouts(session.acr)):
                if self._end(digest, TIMEOUT) is not None:
                    ended += 1
            else:
                self._schedule(digest, session)
        return ended

    def _load(self, digest: str) -> tuple[SsoSession | None, bool]:
        raw = self._store.get(_session_key(digest))
        return (None, False) if raw is None else _decode(raw)

    def _rotate(self, handle: str, session: SsoSession) -> str:
        """Move ``session`` to a new handle; the old one stops working. The marker goes in before
        the old record goes, so a touch racing this finds one or the other (see ``find``)."""
        old = _digest(handle)
        new_handle = secrets.token_urlsafe(32)
        new = _digest(new_handle)
        self._save(new, session)
        self._store.add_member(_account_key(session.account_id), new, self._longest + DETECTION_GRACE)
        self._store.put(_rotated_key(old), new.encode(), ROTATION_MARK)
        self._store.delete(_session_key(old))
        self._store.remove_member(_account_key(session.account_id), old)
        self._store.dequeue(SWEEP_QUEUE, old)
        self._schedule(new, session)
        return new_handle

    def _repoint(self, sid: str, digest: str) -> None:
        """Point ``sid`` at the live record ``digest`` leads to (following later rotations)."""
        for _ in range(_MAX_HOPS):
            session, _legacy = self._load(digest)
            if session is not None:
                if session.sid == sid:
                    self._store.put(_sid_key(sid), digest.encode(), self._sid_ttl(session))
                return
            moved = self._store.get(_rotated_key(digest))
            if moved is None:
                return  # ended meanwhile
            digest = moved.decode()

    def _schedule(self, digest: str, session: SsoSession) -> None:
        """Queue the session for the sweeper, due just after its current timeout. Use only moves
        a timeout later, and a step-up (which may bring it closer) queues the new handle anew."""
        due = session.deadline(self.timeouts(session.acr)) + 1
        ttl = int(max(0.0, due - self._clock.now())) + DETECTION_GRACE
        self._store.enqueue(SWEEP_QUEUE, digest, session.sid.encode(), due=due, ttl=ttl)

    def _end(self, digest: str, reason: str, *, ip: str | None = None) -> SsoSession | None:
        raw = self._store.take(_session_key(digest))
        session = None if raw is None else _decode(raw)[0]
        if session is None:
            return None
        self._store.delete(_sid_key(session.sid))
        self._store.remove_member(_account_key(session.account_id), digest)
        self._store.dequeue(SWEEP_QUEUE, digest)
        self._audit.record(
            AuditEvent.SESSION_ENDED,
            subject=session.account_id,
            ip=ip,
            detail={"sid": session.sid, "reason": reason},
        )
        for listener in self._on_end:
            try:
                listener(session, reason)
            except Exception:  # one agency's failure never stops the others or the logout
                log.exception(
                    "session end listener %s failed (sid %s, reason %s)",
                    getattr(listener, "__qualname__", repr(listener)),
                    session.sid,
                    reason,
                )
        return session

    def _sid_ttl(self, session: SsoSession) -> int:
        """How long the sid counts as live: until the timeout itself."""
        now = self._clock.now()
        limits = self.timeouts(session.acr)
        absolute_left = limits.absolute - (now - session.created_at)
        idle_left = limits.idle - (now - session.last_seen)
        return max(1, int(min(idle_left, absolute_left)) + 1)

    def _save(self, digest: str, session: SsoSession) -> None:
        now = self._clock.now()
        limits = self.timeouts(session.acr)
        absolute_left = limits.absolute - (now - session.created_at)
        self._store.put(
            _session_key(digest),
            json.dumps(asdict(session)).encode(),
            int(max(0.0, absolute_left)) + DETECTION_GRACE,
        )
        # The sid finds the session (end_by_sid) and says it lives (is_live) until the timeout
        # itself; it holds the handle's hash, never the handle.
        self._store.put(_sid_key(session.sid), digest.encode(), self._sid_ttl(session))
