"""Reading the mail the default sender wrote under ``instance/outbox/``, as a person reads it."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import cast


def messages(folder: Path) -> list[EmailMessage]:
    """Every message in ``folder``, oldest first (none when the folder does not exist yet)."""
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
