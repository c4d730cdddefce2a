"""Background threads that drain a queue of the ephemeral store: back-channel logout deliveries,
outgoing mail and text messages, the session sweeper.

Each worker runs ``drain(limit)`` from its daemon threads: at once when woken (a process that queued
something calls ``wake``), else every ``interval`` seconds (retries, and what other processes
queued). A full batch may leave more due, so another follows, checking for ``stop`` between
batches. The queue's claims are atomic, so any number of workers in any number of processes may
drain one queue at once. A failure is logged and retried at the next turn: a store that is briefly
away never kills the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Self

from idp.errors import HawiyaError

log = logging.getLogger("idp.storage")


class QueueWorker:
    """Runs ``drain`` (how many items it handled, at most the limit it is given) in ``threads``
    daemon threads named ``name``; ``what`` names the work in the log."""

    def __init__(
        self,
        drain: Callable[[int], int],
        *,
        name: str,
        what: str,
        batch: int,
        interval: float = 5.0,
        threads: int = 1,
    ) -> None:
        if threads < 1:
            raise ValueError("a worker needs at least one thread")
        if interval <= 0:
            raise ValueError("a worker needs a positive interval")
        self._drain = drain
        self._name = name
        self._what = what
        self._batch = batch
        self._interval = interval
        self._count = threads
        self._wake = threading.Event()
        self._stopped = False
        self._threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        """True while any of its threads runs."""
        return any(thread.is_alive() for thread in self._threads)

    def wake(self) -> None:
        """Drain now rather than at the next interval (something was just queued)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                while not self._stopped and self._drain(self._batch) == self._batch:
                    pass
            except HawiyaError as error:  # e.g. the ephemeral store is briefly away: next time
                log.warning("%s failed: %s", self._what, error.message)
            except Exception:
                log.exception("%s failed", self._what)

    def start(self) -> Self:
        """Start the threads (once)."""
        if not self._threads:
            self._threads = [
                threading.Thread(
                    target=self._run,
                    name=self._name if self._count == 1 else f"{self._name}-{number}",
                    daemon=True,
                )
                for number in range(self._count)
            ]
            for thread in self._threads:
                thread.start()
        return self

    def stop(self, *, wait: float = 10.0) -> None:
        """Stop, letting work under way finish (up to ``wait`` seconds in all)."""
        self._stopped = True
        self._wake.set()
        deadline = time.monotonic() + wait
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
