"""``hawiya serve`` with each of its HTTP servers: it serves the app (discovery, a token), logs one
line a request without the query string, and stops cleanly on SIGTERM."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port
from tests.support.cli import ROOT, new_instance


@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_serve_answers_logs_without_queries_and_stops(tmp_path: Path, server: str) -> None:
    instance = new_instance(tmp_path)
    instance.ok("init")
    created = instance.json(
        "clients", "create", "--name", "API client", "--grant-type", "client_credentials",
        "--scope", "records:read",
    )  # fmt: skip
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "idp.cli", "serve", "--port", str(port), "--workers", "1"],
        env={**instance.env, "HAWIYA_SERVER": server, "HAWIYA_ISSUER": url},
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if requests.get(f"{url}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        basic = base64.b64encode(f"{created['client_id']}:{created['client_secret']}".encode()).decode()
        answer = requests.post(
            f"{url}/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["Cache-Control"] == "no-store"
        assert answer.json()["token_type"] == "Bearer"
        assert requests.get(f"{url}/authorize?code=never-logged-code&state=s", timeout=10).status_code == 400
        # Access lines reach standard output within a second (idp/http/access_log.py); granian stops
        # its workers without that last flush, so wait for them rather than race the stop.
        deadline = time.monotonic() + 15
        while '"GET /authorize"' not in (tmp_path / "serve.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        log.close()
    logged = (tmp_path / "serve.log").read_text()
    assert '"POST /token" 200' in logged
    assert '"GET /authorize" 400' in logged
    assert "never-logged-code" not in logged
    assert "Traceback" not in logged
    assert json.dumps(created["client_secret"])[1:-1] not in logged
