"""The WSGI application for servers that import one by name (``hawiya serve`` with granian, or any
other WSGI server): built in each worker from the ``HAWIYA_*`` settings, with the audit batch writer
that serving turns on."""

from __future__ import annotations

from typing import Any

from idp.app import create_app
from idp.settings import Settings


def create(settings: Settings | None = None) -> Any:
    """The app of one worker process (gunicorn's and granian's alike): routine audit events are
    written in batches (idp.audit.events.HIGH_VOLUME); a worker that exits writes its last one."""
    app = create_app(settings or Settings.from_env())
    app.extensions["hawiya"].audit.start_batching()
    return app
