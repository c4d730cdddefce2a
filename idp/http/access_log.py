"""gunicorn's access log, in the one format Hawiya uses, written without gunicorn's atom table and,
on standard output, without a flush per line.

gunicorn builds a dictionary of some forty fields for every request before formatting the five it is
asked for, then goes through the logging module, which flushes the stream after every line; together
that was a fifth of a client_credentials request. The line is the same as the format
``%(h)s "%(m)s %(U)s" %(s)s %(B)s %(L)ss`` gave: client address, method, path (never the query
string: authorization responses carry codes and state), status, bytes sent, seconds.

On standard output (``accesslog = "-"``, what ``hawiya serve`` sets) lines are written to the
buffered stream and flushed at least once a second by a thread of the worker, as nginx does with
``access_log ... buffer= flush=1s``; a worker killed outright can lose its last second of lines.
Anywhere else (a file, syslog, a logging config) the line goes through gunicorn's logger as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from typing import Any

from gunicorn.glogging import Logger

#: Seconds a line may wait in the buffer.
FLUSH_SECONDS = 1.0


class BufferedStdout:
    """Lines to standard output without a flush each; a thread of the process flushes them at
    least every FLUSH_SECONDS (started by the first line of each process, forked ones included)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flusher_pid: int | None = None

    def write(self, line: str) -> None:
        """Buffer one line."""
        if self._flusher_pid != os.getpid():
            self._flusher_pid = os.getpid()
            threading.Thread(target=self._flush_forever, name="hawiya-access-log", daemon=True).start()
        with self._lock:
            sys.stdout.write(line + "\n")

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()

    def flush(self) -> None:
        """Write out the buffered lines."""
        with self._lock, contextlib.suppress(OSError, ValueError):  # stdout gone: nothing to keep
            sys.stdout.flush()


class BufferedStdoutHandler(logging.Handler):
    """A logging handler over BufferedStdout (granian's access log, configured by ``hawiya serve``)."""

    def __init__(self) -> None:
        super().__init__()
        self._out = BufferedStdout()

    def emit(self, record: logging.LogRecord) -> None:
        """Buffer the formatted line."""
        try:
            self._out.write(self.format(record))
        except Exception:  # the logging module's contract: report, never raise
            self.handleError(record)

    def flush(self) -> None:
        """Write out the buffered lines."""
        self._out.flush()


class AccessLog(Logger):
    """gunicorn's logger, with a lean ``access``."""

    def setup(self, cfg: Any) -> None:
        """gunicorn's setup; then, for standard output, the buffered path."""
        super().setup(cfg)
        direct = cfg.accesslog == "-" and not (
            cfg.logconfig or cfg.logconfig_dict or cfg.logconfig_json or cfg.syslog
        )
        self._out = BufferedStdout() if direct else None

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """One line per request."""
        if not self.access_log_enabled:
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        line = '%s "%s %s" %s %s %d.%06ds' % (  # noqa: UP031 - one cheap formatting, like logging's
            environ.get("REMOTE_ADDR", "-"),
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
            status,
            getattr(resp, "sent", None),
            request_time.seconds,
            request_time.microseconds,
        )
        if self._out is None:
            self.access_log.info(line)
        else:
            self._out.write(line)

    def flush(self) -> None:
        """Write out the buffered lines (the worker's exit calls it too)."""
        out: BufferedStdout | None = getattr(self, "_out", None)
        if out is not None:
            out.flush()
