"""From when a proof counts as fresh for an authorization request (OIDC Core 3.1.2.1).

``max_age``: "If the elapsed time is greater than this value, the OP MUST attempt to actively
re-authenticate the End-User", so a factor proven more than ``max_age`` seconds ago no longer counts
(each factor on its own time: idp/authn/results.py). ``prompt=login``: "The Authorization Server
SHOULD prompt the End-User for reauthentication", so no proof made before the request counts.

What the person proves *for* the request (after it was parked: a sign-in, a step-up) always counts:
otherwise a small ``max_age`` could never be met by someone who takes longer than it to type.
"""

from __future__ import annotations

import math


def fresh_since(*, max_age: str | None, login: bool, parked_at: float | None, now: float) -> float | None:
    """The earliest time a proof may have been made to count for the request; None when any
    proof counts (no ``max_age``, no ``prompt=login``). ``parked_at``: when the request was parked
    (proofs since then were made for it), None when it was not."""
    limits: list[float] = []
    if max_age is not None and max_age.isdigit():
        limits.append(now - int(max_age))
    if login:
        limits.append(math.inf)
    if not limits:
        return None
    since = max(limits)
    if parked_at is not None:
        # Proof times are whole seconds: a proof made in the second the request was parked counts.
        since = min(since, float(math.floor(parked_at)))
    return since
