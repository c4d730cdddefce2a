"""gunicorn's access log, in the one format Hawiya uses, written without gunicorn's atom table.

gunicorn builds a dictionary of some forty fields for every request before formatting the five it
is asked for; on the token endpoint that cost about a sixth of the request. The line is the same as
the format ``%(h)s "%(m)s %(U)s" %(s)s %(B)s %(L)ss`` gave: client address, method, path (never the
query string: authorization responses carry codes and state), status, bytes sent, seconds.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger


class AccessLog(Logger):
    """gunicorn's logger, with a lean ``access``."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """One line per request."""
        if not self.access_log_enabled:
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        self.access_log.info(
            '%s "%s %s" %s %s %d.%06ds',
            environ.get("REMOTE_ADDR", "-"),
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
            status,
            getattr(resp, "sent", None),
            request_time.seconds,
            request_time.microseconds,
        )
