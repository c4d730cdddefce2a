"""Automatic key rotation, run by the server itself (no cron job): each IdP process wakes up now
and then and rotates what is due; the conditional promotion in the database makes sure only one
process rotates a given key, however many are running."""

from __future__ import annotations

import logging
import threading

from idp.errors import HawiyaError
from idp.keys.keystore import KeyStore

log = logging.getLogger("idp.keys")


class KeySchedule:
    """Rotate keys older than ``rotation_days`` and prune retired keys, every ``interval`` seconds."""

    def __init__(self, keystore: KeyStore, *, rotation_days: float, interval: float = 600) -> None:
        self._keystore = keystore
        self._rotation_days = rotation_days
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> int:
        """One pass: rotate what is due, prune what is spent; how many keys were rotated."""
        rotated = self._keystore.rotate_due(older_than_days=self._rotation_days)
        for rotation in rotated:
            log.info("rotated %s: now signing with %s", rotation.alg, rotation.current)
        self._keystore.prune()
        return len(rotated)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.tick()
            except HawiyaError as error:  # e.g. the database is briefly away: try next time
                log.warning("scheduled key rotation failed: %s", error.message)
            except Exception:
                log.exception("scheduled key rotation failed")

    def start(self) -> KeySchedule:
        """Run in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hawiya-key-schedule", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
