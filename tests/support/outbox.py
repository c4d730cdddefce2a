"""Reading the mail the default sender wrote under ``instance/outbox/``, as a person reads it.

Mail is queued (``idp.outgoing``) and written by the message worker, which the suite's IdPs do not
run in the background (``HAWIYA_MAIL_WORKER`` is off in ``make_settings``): reading an outbox first
runs the worker once for the deployment that writes there, so what a test reads is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import cast

#: How to deliver the queued messages of the deployment whose outbox is the key (see ``watch``).
_FLUSHERS: dict[Path, Callable[[], object]] = {}


def watch(folder: Path, flush: Callable[[], object]) -> None:
    """Run ``flush`` (one pass of the message worker) before ``folder`` is read."""
    _FLUSHERS[folder.resolve()] = flush


def forget() -> None:
    """Forget every watched outbox (after each test)."""
    _FLUSHERS.clear()


def flush(folder: Path) -> None:
    """Deliver what is queued for ``folder`` now."""
    flusher = _FLUSHERS.get(folder.resolve())
    if flusher is not None:
        flusher()


def messages(folder: Path) -> list[EmailMessage]:
    """Every message in ``folder``, oldest first (none when the folder does not exist yet)."""
    flush(folder)
    if not folder.exists():
        return []
    return [
        cast(EmailMessage, message_from_bytes(path.read_bytes(), policy=policy.default))
        for path in sorted(folder.glob("*.eml"))
    ]


def body(message: EmailMessage) -> str:
    """The plain-text body, decoded."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "the message has no text body"
    return str(part.get_content())


def to(folder: Path, address: str) -> list[EmailMessage]:
    """The messages sent to ``address``, oldest first."""
    return [message for message in messages(folder) if message["To"] == address]


def about(folder: Path, address: str, subject: str) -> list[EmailMessage]:
    """The messages sent to ``address`` whose subject contains ``subject``, oldest first (a
    person's outbox also holds the security notices: a new browser, a factor added ...)."""
    return [message for message in to(folder, address) if subject in str(message["Subject"])]


def sms(folder: Path) -> list[str]:
    """Every text message the default SMS sender wrote under ``folder`` (``instance/outbox/sms``),
    oldest first, as written (``To:`` line, blank line, body)."""
    flush(folder.parent)
    if not folder.exists():
        return []
    return [path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.txt"))]
