"""What the account pages need from a failure throttle (``idp.authn.throttle.Throttle`` fits it):
the account services receive one through their constructor and never import authn."""

from __future__ import annotations

from typing import Protocol


class AttemptLimit(Protocol):
    """Counts failures per subject and per client IP address in a window."""

    def blocked(self, subject: str, ip: str | None) -> bool:
        """True when ``subject`` or ``ip`` has used up its failures."""
        ...

    def failed(self, subject: str, ip: str | None) -> None:
        """Count one failure."""
        ...

    def succeeded(self, subject: str) -> None:
        """Clear ``subject``'s count."""
        ...
