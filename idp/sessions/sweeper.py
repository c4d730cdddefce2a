"""The session sweeper: ends timed-out SSO sessions on time, so their agencies are told
(back-channel logout) at the timeout even when the browser never comes back.

``SessionService.sweep`` does the work (claiming due sessions from a queue of the ephemeral store,
so sweepers in several processes never end one twice); this runs it every ``interval`` seconds
from a daemon thread of each server process, as ``LogoutWorker`` delivers logout tokens
(idp/oidc/backchannel.py).
"""

from __future__ import annotations

import logging
import threading

from idp.errors import HawiyaError
from idp.sessions.service import SessionService

log = logging.getLogger("idp.sessions")

#: Sessions one sweep looks at before it looks whether it should stop.
BATCH = 100


class SessionSweeper:
    """Ends due sessions every ``interval`` seconds from a daemon thread. Safe in every process at
    once: each due session is claimed atomically."""

    def __init__(self, sessions: SessionService, *, interval: float) -> None:
        if interval <= 0:
            raise ValueError("a sweeper needs a positive interval")
        self._sessions = sessions
        self._interval = interval
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while its thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                # A full batch may leave more due: go on, checking between batches for stop().
                while not self._stopped and self._sessions.sweep(limit=BATCH) == BATCH:
                    pass
            except HawiyaError as error:  # e.g. the ephemeral store is briefly away: next time
                log.warning("the session sweep failed: %s", error.message)
            except Exception:
                log.exception("the session sweep failed")

    def start(self) -> SessionSweeper:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hawiya-session-sweeper", daemon=True)
            self._thread.start()
        return self

    def stop(self, *, wait: float = 10.0) -> None:
        """Stop, letting a sweep under way finish (up to ``wait`` seconds)."""
        self._stopped = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(0.0, wait))
