"""Outgoing mail and text messages: queued in the request (sealed in the ephemeral store), delivered
by a worker with retries and backoff, given up after the limit; SMTP only over TLS; the SMS outbox."""

from __future__ import annotations

import dataclasses
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from idp.app import create_app
from idp.clock import FrozenClock
from idp.mail import Mail, SmtpSender, SmtpTlsRequired, TextMessage
from idp.outbound import Outbound, Policy
from idp.outgoing import QUEUE, MessageQueue
from idp.registry import Registry
from idp.settings import Settings
from tests.conftest import BOTH_BACKENDS
from tests.support import outbox
from tests.support.audit import audit_events
from tests.support.cli import new_instance

MAIL = Mail("amal@example.org", "Subject", "Your code: 1234-5678\n")


class FlakyRelay:
    """A MailSender that refuses ``failures`` times, then delivers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.delivered: list[Mail] = []

    def send(self, mail: Mail) -> None:
        """Refuse (as a relay that is down would), then accept."""
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("relay down")
        self.delivered.append(mail)


def _queue(registry: Registry, relay: FlakyRelay, attempts: int = 3) -> MessageQueue:
    return MessageQueue(
        registry.store,
        registry.sealer,
        relay,
        registry.sms_transport,
        registry.clock,
        registry.audit,
        max_attempts=attempts,
        backoff=(10, 60),
    )


def test_send_only_queues_and_the_worker_writes_the_outbox(registry: Registry) -> None:
    folder = registry.settings.outbox_path
    registry.mail.send(MAIL)
    assert not folder.exists() or not list(folder.glob("*.eml"))  # nothing delivered in the request
    (attempt,) = registry.messages.run_once()
    assert attempt.outcome == "delivered" and attempt.attempt == 1
    (message,) = outbox.messages(folder)
    assert message["To"] == MAIL.to and "1234-5678" in outbox.body(message)


def test_the_store_holds_the_message_sealed(registry: Registry, clock: FrozenClock) -> None:
    registry.mail.send(MAIL)
    claimed = registry.store.claim(QUEUE, now=clock.now(), lease=1)
    assert claimed is not None
    assert b"1234-5678" not in claimed.value and MAIL.to.encode() not in claimed.value


@BOTH_BACKENDS
def test_a_failing_relay_is_retried_with_backoff_then_delivered(
    registry: Registry, clock: FrozenClock
) -> None:
    relay = FlakyRelay(failures=2)
    queue = _queue(registry, relay)
    queue.put_mail(MAIL)
    (first,) = queue.run_once()
    assert (first.outcome, first.error, first.retry_in) == ("retrying", "ConnectionRefusedError", 10)
    assert queue.run_once() == []  # not due yet
    clock.advance(10)
    (second,) = queue.run_once()
    assert (second.outcome, second.retry_in) == ("retrying", 60)  # the wait grows
    clock.advance(59)
    assert queue.run_once() == []
    clock.advance(1)
    (third,) = queue.run_once()
    assert (third.outcome, third.attempt) == ("delivered", 3)
    assert relay.delivered == [MAIL]
    assert audit_events(registry, "message.abandoned") == []


def test_a_relay_that_keeps_failing_is_given_up_after_the_limit(
    registry: Registry, clock: FrozenClock
) -> None:
    relay = FlakyRelay(failures=10)
    queue = _queue(registry, relay, attempts=3)
    queued = queue.put_mail(MAIL)
    outcomes = []
    for _ in range(5):
        outcomes += [attempt.outcome for attempt in queue.run_once()]
        clock.advance(3600)
    assert outcomes == ["retrying", "retrying", "abandoned"]
    assert relay.delivered == [] and relay.failures == 7
    (event,) = audit_events(registry, "message.abandoned")
    assert event["detail"] == {
        "message": queued,
        "channel": "mail",
        "attempts": 3,
        "error": "ConnectionRefusedError",
    }
    assert MAIL.to not in str(event)


def test_text_messages_go_to_the_sms_outbox_by_default(registry: Registry) -> None:
    registry.sms.send(TextMessage("+96550000001", "Hawiya: your code is 4321"))
    folder = registry.settings.sms_outbox_path
    assert folder == registry.settings.instance_path / "outbox" / "sms"
    (text,) = outbox.sms(folder)
    assert text == "To: +96550000001\n\nHawiya: your code is 4321"
    assert (next(folder.iterdir()).stat().st_mode & 0o777) == 0o600


# -- SMTP: TLS or nothing ---------------------------------------------------------------------------

#: The relay is reached under the operator policy (private and loopback addresses allowed).
OPERATOR = Outbound(Policy.operator(Settings()))


class PlainRelay:
    """An SMTP relay on 127.0.0.1 that does not offer STARTTLS; records every command it hears."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.heard: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 relay.test ESMTP\r\n")
            for raw in lines:
                command = raw.decode().strip()
                self.heard.append(command)
                verb = command.split(" ")[0].upper()
                if verb == "EHLO":
                    conn.sendall(b"250-relay.test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n")
                elif verb == "QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def plain_relay() -> Iterator[PlainRelay]:
    relay = PlainRelay()
    yield relay
    relay.close()


def test_smtp_refuses_a_relay_without_starttls(plain_relay: PlainRelay) -> None:
    sender = SmtpSender(
        f"smtp://127.0.0.1:{plain_relay.port}",
        "no-reply@hawiya.test",
        user="hawiya",
        password="relay-pw",
        outbound=OPERATOR,
    )
    with pytest.raises(SmtpTlsRequired):
        sender.send(MAIL)
    plain_relay.thread.join(5)
    verbs = [command.split(" ")[0].upper() for command in plain_relay.heard]
    # It greeted, saw no STARTTLS and left: no password, no address, no message in clear.
    assert verbs == ["EHLO", "QUIT"]
    assert not any("relay-pw" in command or "amal" in command for command in plain_relay.heard)


def test_smtps_verifies_the_relay_certificate() -> None:
    sender = SmtpSender(
        "smtps://relay.example:465", "no-reply@hawiya.test", user=None, password=None, outbound=OPERATOR
    )
    context = sender._context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_a_relay_that_drips_is_cut_off_at_the_operator_deadline() -> None:
    # A relay that greets, then answers EHLO one byte every 0.3 s: each read gets its byte well
    # within any per-read timeout, so only a total deadline ends the conversation.
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"220 relay.test ESMTP\r\n")
            conn.recv(1024)
            for byte in b"250-relay.test\r\n" * 20:
                if stop.wait(0.3):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    outbound = Outbound(dataclasses.replace(OPERATOR.policy, deadline=1.0))
    sender = SmtpSender(
        f"smtp://127.0.0.1:{server.getsockname()[1]}",
        "no-reply@hawiya.test",
        user=None,
        password=None,
        outbound=outbound,
    )
    started = time.monotonic()
    try:
        with pytest.raises(OSError):  # what the worker retries
            sender.send(MAIL)
        took = time.monotonic() - started
    finally:
        stop.set()
        server.close()
        thread.join(5)
    print(f"dripping relay cut after {took:.2f} s (deadline 1.0 s)")
    assert took < 3.0  # loose (a loaded machine); per-operation timeouts took 10 s each


# -- the worker: in every server process, or on its own -----------------------------------------------


def test_create_app_starts_the_worker_unless_turned_off(registry: Registry, clock: FrozenClock) -> None:
    assert "hawiya.message_worker" not in create_app(registry=registry).extensions  # the suite's default
    on = Registry(dataclasses.replace(registry.settings, mail_worker=True), clock)
    try:
        assert create_app(registry=on).extensions["hawiya.message_worker"].running
    finally:
        on.close()
    assert not on.message_worker.running  # close() stopped it


def test_the_mail_worker_command_delivers_what_was_queued(tmp_path: Path) -> None:
    instance = new_instance(tmp_path)
    instance.ok("init")
    registry = instance.registry()
    try:
        registry.mail.send(MAIL)
        folder: Path = registry.settings.outbox_path
    finally:
        registry.close()
    assert instance.ok("mail-worker", "--once").strip() == "1 delivered, 0 to retry, 0 given up"
    assert len(list(folder.glob("*.eml"))) == 1  # read without flushing: the command wrote it
    assert instance.ok("mail-worker", "--once").strip() == "0 delivered, 0 to retry, 0 given up"


def test_settings_name_the_sms_sender() -> None:
    with pytest.raises(Exception, match="HAWIYA_SMS_URL"):
        Settings(sms_url="https://gateway.example")
