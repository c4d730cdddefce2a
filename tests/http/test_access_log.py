"""The access log line (idp.http.access_log): gunicorn's five fields, never a query string."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from idp.http.access_log import AccessLog


def test_one_line_per_request_without_the_query(capsys: pytest.CaptureFixture[str]) -> None:
    config = Config()
    config.set("accesslog", "-")
    logger = AccessLog(config)
    environ = {
        "REMOTE_ADDR": "192.0.2.7",
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/authorize",
        "QUERY_STRING": "code=secret-code&state=s",
    }
    response = SimpleNamespace(status="302 FOUND", sent=0)
    logger.access(response, None, environ, timedelta(seconds=1, microseconds=2500))
    assert capsys.readouterr().out == '192.0.2.7 "GET /authorize" 302 0 1.002500s\n'


def test_nothing_when_the_access_log_is_off(capsys: pytest.CaptureFixture[str]) -> None:
    AccessLog(Config()).access(SimpleNamespace(status="200 OK", sent=2), None, {}, timedelta(0))
    assert capsys.readouterr() == ("", "")
