"""Sending mail and text messages: one interface each, and the senders behind them.

The default (``HAWIYA_MAIL_URL=outbox``) writes each message as an RFC 5322 file under
``instance/outbox/`` (mode 0600): development and tests read the code or link from there, and no
message ever goes into the log. ``smtp://host:port`` (or ``smtps://``, with the user and password
in ``HAWIYA_SMTP_USER`` / ``HAWIYA_SMTP_PASSWORD``) sends through a real relay, always over TLS
with the relay's certificate verified: ``smtp://`` requires STARTTLS (a relay that does not offer
it is refused, never spoken to in clear), ``smtps://`` is TLS from the first byte.

Text messages (``HAWIYA_SMS_URL=outbox``) are written under ``instance/outbox/sms/`` the same way.

These senders deliver at once; the application never calls them inside a request: the registry puts
a queueing sender (``idp.outgoing``) in front, and a worker delivers with retries.
"""

from __future__ import annotations

import os
import smtplib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from idp.errors import ConfigurationError
from idp.outbound import Outbound
from idp.storage.files import private_folder


@dataclass(frozen=True)
class Mail:
    """A message to one person: plain text (the language chosen by the caller)."""

    to: str
    subject: str
    body: str


@dataclass(frozen=True)
class TextMessage:
    """A text message (SMS) to one telephone number."""

    to: str
    body: str


class SmsSender(Protocol):
    """Something that delivers text messages."""

    def send(self, message: TextMessage) -> None:
        """Deliver ``message`` (or raise)."""
        ...


class SmtpTlsRequired(OSError):
    """The relay does not offer STARTTLS: nothing is sent in clear (an OSError, so a queued message
    is retried and in the end given up, like any relay that cannot take it)."""


class MailSender(Protocol):
    """Something that delivers mail."""

    def send(self, mail: Mail) -> None:
        """Deliver ``mail`` (or raise)."""
        ...


def _message(mail: Mail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(mail.body)
    return message


class OutboxSender:
    """Writes each message to ``folder`` as ``<time>-<id>.eml``."""

    def __init__(self, folder: Path, sender: str) -> None:
        self.folder = folder
        self._sender = sender

    def send(self, mail: Mail) -> None:
        """Write the message file (0600)."""
        private_folder(self.folder)
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
        fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(bytes(_message(mail, self._sender)))


class SmsOutboxSender:
    """Writes each text message to ``folder`` as ``<time>-<id>.txt`` (``To:`` line, blank line, body)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: TextMessage) -> None:
        """Write the message file (0600)."""
        private_folder(self.folder)
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.txt"
        fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"To: {message.to}\n\n{message.body}")


def open_sms_sender(url: str, outbox: Path) -> SmsSender:
    """The text-message sender ``url`` names (``outbox`` only, until a gateway is wired)."""
    if url == "outbox":
        return SmsOutboxSender(outbox)
    raise ConfigurationError("HAWIYA_SMS_URL must be 'outbox'")


class _Relay(smtplib.SMTP):
    """smtplib over a connection the outbound boundary makes (operator policy: the name resolved
    once and checked, the connection made within the deadline), TLS from the first byte when
    ``tls`` is given (``smtps://``)."""

    def __init__(self, outbound: Outbound, *, tls: Any | None) -> None:
        self._outbound = outbound
        self._tls = tls
        super().__init__(timeout=outbound.policy.deadline)  # no host: connect() comes later

    def _get_socket(self, host: str, port: int, timeout: float) -> Any:
        sock = self._outbound.connect(host, port)
        return self._tls.wrap_socket(sock, server_hostname=host) if self._tls else sock


class SmtpSender:
    """Sends through an SMTP relay over TLS only: STARTTLS, required, on ``smtp://``; TLS from the
    start on ``smtps://``. The relay's certificate is verified against the system's CAs (and the
    outbound CA bundle). The connection comes from the outbound boundary (operator policy), and
    the whole conversation — connecting, TLS, login, the message — ends within its deadline: a
    relay that stalls is cut off and the message retried later."""

    def __init__(
        self, url: str, sender: str, *, user: str | None, password: str | None, outbound: Outbound
    ) -> None:
        parts = urlsplit(url)
        self._tls = parts.scheme == "smtps"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (465 if self._tls else 25)
        self._sender = sender
        self._user = user
        self._password = password
        self._outbound = outbound
        # Verifies the certificate and the host name.
        self._context = outbound.tls

    def send(self, mail: Mail) -> None:
        """Deliver the message to the relay; SmtpTlsRequired when ``smtp://`` offers no STARTTLS."""
        smtp = _Relay(self._outbound, tls=self._context if self._tls else None)
        with self._outbound.cut_at_deadline(lambda: smtp.sock), smtp:
            smtp.connect(self._host, self._port)
            if not self._tls:
                smtp.ehlo()
                # Never fall back to clear text: the codes and links in Hawiya's mail, and the
                # relay password, would cross the network readable by anyone on the path.
                if not smtp.has_extn("starttls"):
                    raise SmtpTlsRequired(f"the relay {self._host}:{self._port} does not offer STARTTLS")
                smtp.starttls(context=self._context)
                smtp.ehlo()
            if self._user:
                smtp.login(self._user, self._password or "")
            smtp.send_message(_message(mail, self._sender))


def open_sender(
    url: str, outbox: Path, sender: str, *, user: str | None, password: str | None, outbound: Outbound
) -> MailSender:
    """The sender ``url`` names: ``outbox`` or an ``smtp://`` / ``smtps://`` URL."""
    if url == "outbox":
        return OutboxSender(outbox, sender)
    if url.startswith(("smtp://", "smtps://")):
        return SmtpSender(url, sender, user=user, password=password, outbound=outbound)
    raise ConfigurationError("HAWIYA_MAIL_URL must be 'outbox' or an smtp:// or smtps:// URL")
