"""The access log line (idp.http.access_log): gunicorn's five fields, never a query string."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
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


def test_to_a_file_the_line_goes_through_gunicorns_logger(tmp_path: Path) -> None:
    config = Config()
    config.set("accesslog", str(tmp_path / "access.log"))
    logger = AccessLog(config)
    environ = {"REMOTE_ADDR": "192.0.2.8", "REQUEST_METHOD": "POST", "PATH_INFO": "/token"}
    try:
        logger.access(SimpleNamespace(status="200 OK", sent=514), None, environ, timedelta(microseconds=420))
        assert (tmp_path / "access.log").read_text() == '192.0.2.8 "POST /token" 200 514 0.000420s\n'
    finally:
        for handler in logger.access_log.handlers:
            handler.close()


def test_on_stdout_lines_are_buffered_then_flushed(capsys: pytest.CaptureFixture[str]) -> None:
    config = Config()
    config.set("accesslog", "-")
    logger = AccessLog(config)
    for n in range(3):
        logger.access(
            SimpleNamespace(status="204 NO CONTENT", sent=0), None, {"PATH_INFO": f"/{n}"}, timedelta(0)
        )
    logger.flush()
    assert capsys.readouterr().out.splitlines() == [f'- "None /{n}" 204 0 0.000000s' for n in range(3)]
