"""The ``hawiya`` command line as the tests run it.

Most tests run a command in this process through click's ``CliRunner``: the same ``main`` an
operator's shell reaches, with settings from ``HAWIYA_*`` variables, its output and exit status,
but with the suite's cheap hasher and pooled signing keys (a separate process pays ~1 s of imports
and real RSA key generation each time). ``run_process`` runs the real ``python -m idp.cli`` entry
point; one test per command family uses it, so the installed command itself stays proven.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from idp.cli import main
from idp.registry import Registry
from idp.settings import Settings
from tests.conftest import make_registry

ROOT = Path(__file__).resolve().parents[2]
#: What a run of ``hawiya`` left: its exit status, standard output and standard error.
Result = subprocess.CompletedProcess[str]


@dataclass
class Instance:
    """One deployment's files, and how to run ``hawiya`` against them."""

    #: The environment a separate ``hawiya`` process gets: this one's, less any HAWIYA_* variable,
    #: plus the deployment's.
    env: dict[str, str]
    master_key_file: Path

    def run(self, *args: str, stdin: str | None = None, **extra_env: str) -> Result:
        """Run ``hawiya args...`` in this process; never raises on a non-zero exit."""
        wanted = {**self.env, **extra_env}
        # CliRunner overlays os.environ: unset what this process has and the deployment does not.
        overlay: dict[str, str | None] = {k: None for k in os.environ if k.startswith("HAWIYA_")}
        overlay.update({k: v for k, v in wanted.items() if k.startswith("HAWIYA_")})
        result = CliRunner().invoke(
            main, list(args), input=stdin, env=overlay, obj={"registry_factory": make_registry}
        )
        stderr = result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            # What a process would have printed: the tests assert that no command ever does.
            stderr += "".join(traceback.format_exception(result.exception))
        return subprocess.CompletedProcess(["hawiya", *args], result.exit_code, result.stdout, stderr)

    def run_process(self, *args: str, stdin: str | None = None, **extra_env: str) -> Result:
        """Run ``python -m idp.cli args...`` as a separate process, as an operator's shell does."""
        return subprocess.run(
            [sys.executable, "-m", "idp.cli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**self.env, **extra_env},
            cwd=ROOT,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        """Run and expect success; the standard output."""
        return succeeded(self.run(*args, stdin=stdin))

    def json(self, *args: str, stdin: str | None = None) -> Any:
        """Run with ``--json`` and parse the output."""
        return json.loads(self.ok(*args, "--json", stdin=stdin))

    def registry(self, **env: str) -> Registry:
        """The same deployment, opened in this process (to check what the CLI did)."""
        return make_registry(Settings.from_env({**self.env, **env}))


def new_instance(folder: Path) -> Instance:
    """A deployment in ``folder`` that nothing has initialised yet."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAWIYA_")}
    key_file = folder / "keys" / "master.key"
    env.update(
        HAWIYA_INSTANCE_PATH=str(folder / "instance"),
        HAWIYA_MASTER_KEY_FILE=str(key_file),
        HAWIYA_DATABASE_URL=f"sqlite:///{folder / 'hawiya.db'}",
    )
    return Instance(env, key_file)


def succeeded(result: Result) -> str:
    """The standard output of a command that must have succeeded without a traceback."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def assert_clean_error(result: Result) -> str:
    """Exit status 2, one line on stderr starting ``hawiya: error:``, no traceback, no output."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hawiya: error: ")
    assert result.stdout == ""
    return lines[0]
