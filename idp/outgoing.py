"""Outgoing mail and text messages: queued in the request, delivered by a worker.

``registry.mail.send`` and ``registry.sms.send`` never talk to a relay: the queueing senders here
put the message in a queue of the ephemeral store and return, so a person never waits on (or sees
the failure of) a mail relay. A ``MessageWorker`` claims due messages (atomically: two workers
never hold the same one) and hands each to the real sender; a relay that fails is retried with
growing waits (``BACKOFF``), then the message is given up and audited as abandoned. This is the
shape of back-channel logout (``idp.oidc.backchannel``).

A queued message holds what the person will read (an activation code, an invitation link), so it
is sealed under the master key in the store, like TOTP secrets: a copy of the store reveals nothing.
Neither a message's text nor its address is ever logged.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Literal

from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.clock import Clock
from idp.errors import HawiyaError
from idp.keys.sealing import Sealer
from idp.mail import Mail, MailSender, SmsSender, TextMessage
from idp.storage.ephemeral import EphemeralStore
from idp.storage.ephemeral.base import Claimed
from idp.storage.ephemeral.worker import QueueWorker

log = logging.getLogger("idp.outgoing")

#: The wait before the 2nd, 3rd ... attempt, seconds; past the end, the last wait repeats.
BACKOFF = (10, 60, 300, 1800, 7200)
#: The queue the messages wait in.
QUEUE = "outgoing-messages"
#: How long a claimed message is hidden from other workers, seconds (then it comes back, in case
#: its worker died mid-delivery).
LEASE = 120.0
#: How long a queued message outlives its next due time in the store (a safety net).
KEEP = 24 * 3600
#: Messages one worker pass attempts before it looks whether it should stop.
BATCH = 20
#: What the sealed payload is bound to.
PURPOSE = "outgoing-message"

Channel = Literal["mail", "sms"]
Outcome = Literal["delivered", "retrying", "abandoned"]


@dataclass(frozen=True)
class Outgoing:
    """One queued message (sealed in the store)."""

    id: str
    channel: Channel
    to: str
    body: str
    subject: str = ""
    #: Attempts made so far.
    attempts: int = 0


@dataclass(frozen=True)
class Attempt:
    """What one delivery attempt came to (no address, no text)."""

    id: str
    channel: Channel
    outcome: Outcome
    attempt: int
    error: str | None = None
    retry_in: int | None = None


_SEQUENCE = itertools.count()


def _new_id() -> str:
    """A queue id that sorts in the order messages were queued: the store claims the messages due
    at the same time in the order of their ids, so a person's mails arrive in the order they were
    sent (the activation code before the notice that the password was set)."""
    return f"{time.time_ns():020d}{next(_SEQUENCE) % 10**9:09d}-{secrets.token_urlsafe(6)}"


class MessageQueue:
    """Queues messages, and delivers them through the real senders with retries."""

    def __init__(
        self,
        store: EphemeralStore,
        sealer: Sealer,
        mail: MailSender,
        sms: SmsSender,
        clock: Clock,
        audit: AuditLog,
        *,
        max_attempts: int = len(BACKOFF) + 1,
        backoff: Sequence[int] = BACKOFF,
    ) -> None:
        if max_attempts < 1 or not backoff:
            raise ValueError("deliveries need at least one attempt and one wait between attempts")
        self._store = store
        self._sealer = sealer
        self._mail = mail
        self._sms = sms
        self._clock = clock
        self._audit = audit
        self._max_attempts = max_attempts
        self._backoff = tuple(backoff)
        self._on_enqueue: list[Callable[[], None]] = []

    def when_enqueued(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after a message is queued in this process (a worker here wakes)."""
        self._on_enqueue.append(callback)

    # -- the request's side: enqueue only ---------------------------------------------------------

    def put_mail(self, mail: Mail) -> str:
        """Queue ``mail``; its queue id."""
        return self._put(Outgoing(_new_id(), "mail", mail.to, mail.body, mail.subject))

    def put_sms(self, message: TextMessage) -> str:
        """Queue a text message; its queue id."""
        return self._put(Outgoing(_new_id(), "sms", message.to, message.body))

    def _put(self, message: Outgoing, *, due: float | None = None, ttl: int = KEEP) -> str:
        sealed = self._sealer.seal(json.dumps(asdict(message)).encode(), purpose=PURPOSE)
        when = self._clock.now() if due is None else due
        self._store.enqueue(QUEUE, message.id, sealed.encode(), due=when, ttl=ttl)
        if due is None:
            for callback in self._on_enqueue:
                callback()
        return message.id

    # -- the worker's side --------------------------------------------------------------------

    def run_once(self, *, limit: int = 100) -> list[Attempt]:
        """Attempt every message due now (at most ``limit``); what each came to. A message retried
        in this pass is due later, so it is not attempted twice."""
        done: list[Attempt] = []
        while len(done) < limit:
            claimed = self._store.claim(QUEUE, now=self._clock.now(), lease=LEASE)
            if claimed is None:
                break
            attempt = self._attempt(claimed)
            if attempt is not None:
                done.append(attempt)
        return done

    def _decode(self, claimed: Claimed) -> Outgoing | None:
        try:
            raw = self._sealer.unseal(claimed.value.decode(), purpose=PURPOSE)
            return Outgoing(**json.loads(raw))
        except Exception:  # sealed under a retired master key, or not ours: nothing to deliver
            return None

    def _attempt(self, claimed: Claimed) -> Attempt | None:
        message = self._decode(claimed)
        if message is None:
            log.warning("dropped an unreadable queued message")
            self._store.dequeue(QUEUE, claimed.item)
            return None
        number = message.attempts + 1
        error: str | None = None
        try:
            if message.channel == "mail":
                self._mail.send(Mail(message.to, message.subject, message.body))
            else:
                self._sms.send(TextMessage(message.to, message.body))
        except HawiyaError as exc:
            error = exc.code
        except Exception as exc:
            # Refused, unreachable, no STARTTLS, a bad certificate ...: a failed attempt (the
            # exception's text may quote the address, so only its type is kept).
            error = type(exc).__name__
        if error is None:
            self._store.dequeue(QUEUE, message.id)
            log.info("%s %s delivered (attempt %d)", message.channel, message.id, number)
            return Attempt(message.id, message.channel, "delivered", number)
        if number >= self._max_attempts:
            self._store.dequeue(QUEUE, message.id)
            self._audit.record(
                AuditEvent.MESSAGE_ABANDONED,
                detail={
                    "message": message.id,
                    "channel": message.channel,
                    "attempts": number,
                    "error": error,
                },
            )
            log.warning("gave up %s %s after %d attempt(s) (%s)", message.channel, message.id, number, error)
            return Attempt(message.id, message.channel, "abandoned", number, error=error)
        wait = self._backoff[min(number, len(self._backoff)) - 1]
        self._put(replace(message, attempts=number), due=self._clock.now() + wait, ttl=wait + KEEP)
        log.info("%s %s failed (%s); retry in %d s", message.channel, message.id, error, wait)
        return Attempt(message.id, message.channel, "retrying", number, error=error, retry_in=wait)


class QueueingMailSender:
    """A ``MailSender`` that queues: what the registry hands to services as ``mail``."""

    def __init__(self, queue: MessageQueue) -> None:
        self._queue = queue

    def send(self, mail: Mail) -> None:
        """Queue ``mail`` for the worker."""
        self._queue.put_mail(mail)


class QueueingSmsSender:
    """An ``SmsSender`` that queues: what the registry hands to services as ``sms``."""

    def __init__(self, queue: MessageQueue) -> None:
        self._queue = queue

    def send(self, message: TextMessage) -> None:
        """Queue ``message`` for the worker."""
        self._queue.put_sms(message)


class MessageWorker(QueueWorker):
    """Delivers due messages from daemon threads: at once when this process queued some, else every
    ``interval`` seconds (retries, and messages other processes queued). Safe in every process at
    once: messages are claimed atomically."""

    def __init__(self, queue: MessageQueue, *, interval: float = 5.0, threads: int = 2) -> None:
        super().__init__(
            lambda limit: len(queue.run_once(limit=limit)),
            name="hawiya-mail-worker",
            what="message deliveries",
            batch=BATCH,
            interval=interval,
            threads=threads,
        )
        queue.when_enqueued(self.wake)
