"""The session sweeper: ends timed-out SSO sessions on time, so their agencies are told
(back-channel logout) at the timeout even when the browser never comes back.

``SessionService.sweep`` does the work (claiming due sessions from a queue of the ephemeral store,
so sweepers in several processes never end one twice); this runs it every ``interval`` seconds
from a daemon thread of each server process, as ``LogoutWorker`` delivers logout tokens
(idp/oidc/backchannel.py).
"""

from __future__ import annotations

from idp.sessions.service import SessionService
from idp.storage.ephemeral.worker import QueueWorker

#: Sessions one sweep looks at before it looks whether it should stop.
BATCH = 100


class SessionSweeper(QueueWorker):
    """Ends due sessions every ``interval`` seconds from a daemon thread. Safe in every process at
    once: each due session is claimed atomically."""

    def __init__(self, sessions: SessionService, *, interval: float) -> None:
        super().__init__(
            lambda limit: sessions.sweep(limit=limit),
            name="hawiya-session-sweeper",
            what="the session sweep",
            batch=BATCH,
            interval=interval,
        )
