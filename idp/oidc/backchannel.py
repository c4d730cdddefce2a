"""OpenID Connect Back-Channel Logout 1.0: when an SSO session ends, every agency that received
tokens in it and registered a ``backchannel_logout_uri`` is sent a logout token (section 2.4) by a
direct POST (section 2.5), so it can end its own sessions of that ``sid``.

The person's logout never waits on an agency: ``session_ended`` only puts one delivery job per
agency in a queue of the ephemeral store. A worker claims the jobs (atomically: two workers never
hold the same one), signs a fresh logout token for each attempt and POSTs it; an agency that is down
is retried with growing waits (``BACKOFF``), then given up. Every outcome is audited, never the
token. Each server process runs a ``LogoutWorker`` (a few threads) by default; ``hawiya
logout-worker`` runs one on its own.

A token is signed per attempt, not once at logout: its ``exp`` is two minutes after ``iat``, so a
token held back for a retry an hour later would be refused as expired, and no token sits in the
store. Each attempt's token has its own ``jti``, so an agency that answered a lost attempt is not
made to refuse the next one as a replay.
"""

from __future__ import annotations

import json
import logging
import secrets
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.clock import Clock
from idp.errors import HawiyaError
from idp.keys.signer import Signer
from idp.oidc.clients import ClientService, RegisteredClient
from idp.outbound import Outbound, OutboundError
from idp.sessions.service import SsoSession
from idp.storage.ephemeral import EphemeralStore
from idp.storage.ephemeral.base import Claimed
from idp.storage.ephemeral.worker import QueueWorker

log = logging.getLogger("idp.oidc.backchannel")

#: The member of ``events`` that makes a JWT a logout token (section 2.4).
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: The ``typ`` header of logout tokens (section 2.4 recommends it, so no other JWT passes for one).
LOGOUT_JWT_TYP = "logout+jwt"
#: A logout token's lifetime, seconds (section 2.4 recommends at most two minutes).
TOKEN_LIFETIME = 120
#: The wait before the 2nd, 3rd ... attempt, seconds; past the end, the last wait repeats.
BACKOFF = (5, 30, 120, 600, 3600)
#: The queue the delivery jobs wait in.
QUEUE = "backchannel-logout"
#: How long a claimed job is hidden from other workers beyond the delivery timeout, seconds (time to
#: sign and to record); then the job comes back, in case its worker died.
LEASE = 60.0
#: How long a queued job outlives its next due time in the store (a safety net: workers dequeue).
KEEP = 24 * 3600
#: What an agency may answer to mean "logged out" (section 2.8).
DELIVERED = (200, 204)
#: Jobs one worker thread attempts before it looks whether it should stop.
BATCH = 20
#: The most of an agency's answer that is read (and thrown away).
MAX_ANSWER = 4096

Outcome = Literal["delivered", "retrying", "abandoned"]


@dataclass(frozen=True)
class LogoutJob:
    """One agency to tell that one session ended; what the queue holds (no token, no secret)."""

    id: str
    client_id: str
    account_id: str
    sid: str
    #: Why the session ended (sign-out, timeout ...), for the audit trail.
    reason: str
    #: Attempts made so far.
    attempts: int = 0

    def encode(self) -> bytes:
        """The job as the queue stores it."""
        return json.dumps(asdict(self)).encode()

    @classmethod
    def decode(cls, raw: bytes) -> LogoutJob:
        """A job from the queue; ValueError when ``raw`` is not one."""
        try:
            return cls(**json.loads(raw))
        except (TypeError, ValueError) as exc:
            raise ValueError("not a back-channel logout job") from exc


@dataclass(frozen=True)
class LogoutToken:
    """A signed logout token and its ``jti`` (the jti is audited, the token never)."""

    value: str
    jti: str


@dataclass(frozen=True)
class Delivery:
    """What one attempt came to."""

    job: LogoutJob
    outcome: Outcome
    #: The attempt's number (1 for the first).
    attempt: int
    #: The agency's HTTP status, when it answered.
    status: int | None = None
    #: Why the attempt failed when no status says it (``ConnectionRefusedError``, ``client_gone`` ...).
    error: str | None = None
    #: Seconds until the next attempt (``retrying`` only).
    retry_in: int | None = None


def post_logout_token(outbound: Outbound, uri: str, token: str) -> int:
    """POST ``logout_token`` form-encoded to ``uri`` (section 2.5) through the outbound boundary
    (agency policy: never a redirect, within the deadline) and return the HTTP status the agency
    answered; OutboundError when it gave none (a redirect's status is on the error)."""
    answer = outbound.post(
        uri,
        urllib.parse.urlencode({"logout_token": token}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        read_body=False,  # only the status matters (section 2.8)
    )
    return answer.status


class BackchannelLogout:
    """Queue logout tokens when sessions end, and deliver them with retries."""

    def __init__(
        self,
        store: EphemeralStore,
        clients: ClientService,
        subject: Callable[[RegisteredClient, str], str],
        signer: Signer,
        clock: Clock,
        audit: AuditLog,
        outbound: Outbound,
        *,
        issuer: str,
        max_attempts: int = len(BACKOFF) + 1,
        backoff: Sequence[int] = BACKOFF,
    ) -> None:
        if max_attempts < 1 or not backoff:
            raise ValueError("deliveries need at least one attempt and one wait between attempts")
        self._store = store
        self._clients = clients
        #: The ``sub`` a client knows a person by (pairwise or public: SubjectService.subject).
        self._subject = subject
        self._signer = signer
        self._clock = clock
        self._audit = audit
        self._issuer = issuer
        #: The agency policy, its deadline the delivery timeout.
        self._outbound = outbound
        self._max_attempts = max_attempts
        self._lease = LEASE + outbound.policy.deadline
        self._backoff = tuple(backoff)
        self._on_enqueue: list[Callable[[], None]] = []

    def when_enqueued(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after jobs are queued in this process (a worker here wakes at once)."""
        self._on_enqueue.append(callback)

    # -- at logout: enqueue only ---------------------------------------------------------------

    def session_ended(self, session: SsoSession, reason: str) -> None:
        """Queue a delivery to every client of ``session`` with a back-channel logout URI (a
        session end listener). Nothing here talks to an agency."""
        now = self._clock.now()
        queued = 0
        for client_id in session.clients:
            client = self._clients.active(client_id)
            if client is None or not client.backchannel_logout_uri:
                continue
            job = LogoutJob(
                id=secrets.token_urlsafe(16),
                client_id=client_id,
                account_id=session.account_id,
                sid=session.sid,
                reason=reason,
            )
            self._store.enqueue(QUEUE, job.id, job.encode(), due=now, ttl=KEEP)
            queued += 1
        if queued:
            for callback in self._on_enqueue:
                callback()

    # -- the token ----------------------------------------------------------------------------

    def logout_token(self, client: RegisteredClient, *, account_id: str, sid: str) -> LogoutToken:
        """A logout token for ``client`` (section 2.4), signed with its ID-token algorithm: ``sid``
        as the session's ID tokens carry it, and the ``sub`` this client knows the person by."""
        now = int(self._clock.now())
        jti = secrets.token_urlsafe(16)
        claims = {
            "iss": self._issuer,
            "aud": client.client_id,
            "iat": now,
            "exp": now + TOKEN_LIFETIME,
            "jti": jti,
            "sub": self._subject(client, account_id),
            "sid": sid,
            "events": {LOGOUT_EVENT: {}},
            # 2.4: a logout token MUST NOT contain a nonce (so an ID token can never pass for one).
        }
        value = self._signer.sign(claims, alg=client.id_token_signed_response_alg, typ=LOGOUT_JWT_TYP)
        return LogoutToken(value, jti)

    # -- the worker's side --------------------------------------------------------------------

    def run_once(self, *, limit: int = 100) -> list[Delivery]:
        """Attempt every job due now (at most ``limit``), one after another; what each came to. A
        job retried in this pass is due later, so it is not attempted twice."""
        done: list[Delivery] = []
        while len(done) < limit:
            claimed = self._store.claim(QUEUE, now=self._clock.now(), lease=self._lease)
            if claimed is None:
                break
            delivery = self._attempt(claimed)
            if delivery is not None:
                done.append(delivery)
        return done

    def _attempt(self, claimed: Claimed) -> Delivery | None:
        try:
            job = LogoutJob.decode(claimed.value)
        except ValueError:
            log.warning("dropped a malformed back-channel logout job")
            self._store.dequeue(QUEUE, claimed.item)
            return None
        attempt = job.attempts + 1
        client = self._clients.active(job.client_id)
        uri = client.backchannel_logout_uri if client is not None else None
        if client is None or not uri:
            # Disabled, or its back-channel URI withdrawn since the logout: nobody to tell.
            return self._abandon(job, Delivery(job, "abandoned", attempt, error="client_gone"), None)
        jti: str | None = None
        status: int | None = None
        error: str | None = None
        try:
            token = self.logout_token(client, account_id=job.account_id, sid=job.sid)
            jti = token.jti
            status = post_logout_token(self._outbound, uri, token.value)
        except OutboundError as exc:
            # Refused, timed out, reset, a broken answer; a redirect is an answer, never followed.
            status, error = exc.status, None if exc.status else exc.cause
        except HawiyaError as exc:
            error = exc.code  # no signature (the signing service is away): try again later
        except Exception as exc:
            # Whatever else breaks one attempt counts as a failed attempt, so the job is given up
            # in the end instead of coming back forever.
            log.exception("back-channel logout attempt failed for %s", job.client_id)
            error = type(exc).__name__
        if status in DELIVERED:
            self._store.dequeue(QUEUE, job.id)
            delivery = Delivery(job, "delivered", attempt, status=status)
            self._record(AuditEvent.LOGOUT_DELIVERED, delivery, jti)
            log.info("logout token delivered to %s (attempt %d)", job.client_id, attempt)
            return delivery
        if attempt >= self._max_attempts:
            return self._abandon(job, Delivery(job, "abandoned", attempt, status=status, error=error), jti)
        wait = self._backoff[min(attempt, len(self._backoff)) - 1]
        retry = replace(job, attempts=attempt)
        self._store.enqueue(QUEUE, job.id, retry.encode(), due=self._clock.now() + wait, ttl=wait + KEEP)
        delivery = Delivery(job, "retrying", attempt, status=status, error=error, retry_in=wait)
        self._record(AuditEvent.LOGOUT_RETRYING, delivery, jti)
        log.info("logout token to %s failed (%s); retry in %d s", job.client_id, status or error, wait)
        return delivery

    def _abandon(self, job: LogoutJob, delivery: Delivery, jti: str | None) -> Delivery:
        self._store.dequeue(QUEUE, job.id)
        self._record(AuditEvent.LOGOUT_ABANDONED, delivery, jti)
        log.warning(
            "gave up the logout token to %s after %d attempt(s) (%s)",
            job.client_id,
            delivery.attempt,
            delivery.status or delivery.error,
        )
        return delivery

    def _record(self, event: AuditEvent, delivery: Delivery, jti: str | None) -> None:
        job = delivery.job
        detail: dict[str, Any] = {"sid": job.sid, "reason": job.reason, "attempt": delivery.attempt}
        for name, value in (
            ("jti", jti),
            ("status", delivery.status),
            ("error", delivery.error),
            ("retry_in", delivery.retry_in),
        ):
            if value is not None:
                detail[name] = value
        self._audit.record(event, subject=job.account_id, client_id=job.client_id, detail=detail)


class LogoutWorker(QueueWorker):
    """Delivers due logout tokens from ``threads`` daemon threads (so one agency that hangs until
    the timeout does not hold up the others): at once when this process queued some, else every
    ``interval`` seconds (retries, and jobs other processes queued). Safe in every process at once:
    jobs are claimed atomically."""

    def __init__(self, deliveries: BackchannelLogout, *, interval: float = 5.0, threads: int = 4) -> None:
        super().__init__(
            lambda limit: len(deliveries.run_once(limit=limit)),
            name="hawiya-logout-worker",
            what="back-channel logout deliveries",
            batch=BATCH,
            interval=interval,
            threads=threads,
        )
        deliveries.when_enqueued(self.wake)
