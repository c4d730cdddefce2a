"""Sending mail: one interface, two senders.

The default (``HAWIYA_MAIL_URL=outbox``) writes each message as an RFC 5322 file under
``instance/outbox/`` (mode 0600): development and tests read the code or link from there, and no
message ever goes into the log. ``smtp://host:port`` (or ``smtps://``, with the user and password
in ``HAWIYA_SMTP_USER`` / ``HAWIYA_SMTP_PASSWORD``) sends through a real relay.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from idp.errors import ConfigurationError


@dataclass(frozen=True)
class Mail:
    """A message to one person: plain text (the language chosen by the caller)."""

    to: str
    subject: str
    body: str


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
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
        fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(bytes(_message(mail, self._sender)))


class SmtpSender:
    """Sends through an SMTP relay (STARTTLS on ``smtp://`` when offered; TLS on ``smtps://``)."""

    def __init__(self, url: str, sender: str, *, user: str | None, password: str | None) -> None:
        parts = urlsplit(url)
        self._tls = parts.scheme == "smtps"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (465 if self._tls else 25)
        self._sender = sender
        self._user = user
        self._password = password

    def send(self, mail: Mail) -> None:
        """Deliver the message to the relay."""
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self._tls:
            smtp = smtplib.SMTP_SSL(self._host, self._port, context=context, timeout=10)
        else:
            smtp = smtplib.SMTP(self._host, self._port, timeout=10)
        with smtp:
            if not self._tls and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
            if self._user:
                smtp.login(self._user, self._password or "")
            smtp.send_message(_message(mail, self._sender))


def open_sender(url: str, outbox: Path, sender: str, *, user: str | None, password: str | None) -> MailSender:
    """The sender ``url`` names: ``outbox`` or an ``smtp://`` / ``smtps://`` URL."""
    if url == "outbox":
        return OutboxSender(outbox, sender)
    if url.startswith(("smtp://", "smtps://")):
        return SmtpSender(url, sender, user=user, password=password)
    raise ConfigurationError("HAWIYA_MAIL_URL must be 'outbox' or an smtp:// or smtps:// URL")
