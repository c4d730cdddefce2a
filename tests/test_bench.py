"""The benchmark suite still runs (``make bench``): Hawiya under gunicorn on PostgreSQL + Redis,
driven by wrk beside the peer. Nothing here looks at a rate; every request must succeed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_servers
from tests.support.needs import unavailable

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.drill
@pytest.mark.real_hashing
def test_the_client_credentials_benchmark_runs_without_errors() -> None:
    if shutil.which("wrk") is None:
        unavailable("wrk is not installed (.ci/run installs it; Debian: apt-get install wrk)")
    require_servers()
    done = subprocess.run(
        [
            sys.executable,
            "bench/bench_client_credentials.py",
            "--seconds",
            "2",
            "--rounds",
            "1",
            "--connections",
            "4",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {
        line.split("  ")[0].strip(): line
        for line in done.stdout.splitlines()
        if re.match(r"^(hawiya|oidc-provider) ", line)
    }
    assert "hawiya (gunicorn, PG+Redis)" in rows, done.stdout
    for name, row in rows.items():
        rate, _p50, _p99, errors = row[len(name) :].split()[:4]
        assert float(rate) > 0 and errors == "0", row
