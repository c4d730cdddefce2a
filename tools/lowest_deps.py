"""Install Hawiya's direct dependencies at the lowest versions pyproject.toml allows, in a venv of
their own, and run the tests that exercise each of them there.

A floor in ``pyproject.toml`` is a promise: ``cryptography>=44`` promised Argon2id's PHC helpers,
which arrived in 45. ``make test-lowest`` keeps the promises honest: every ``name>=X`` becomes
``name==X`` (extras kept), the test tools install at their newest, and the suites below run. It
needs the package index and is run when a floor changes, not on every CI run (docs/testing.md);
``make test-lowest`` compiles the translations first.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-lowest"
#: Tests that drive every direct dependency: passwords and sealing (cryptography), tokens and
#: assertions (authlib, joserfc), both stores (sqlalchemy, alembic, psycopg, redis), pages, forms
#: and translations (flask, flask-wtf, flask-babel), TOTP and QR codes (pyotp, segno), passkeys
#: and the metadata BLOB (webauthn, fido2), the CLI (click) and both servers (gunicorn, granian).
SUITES = (
    "tests/accounts/test_passwords.py",
    "tests/keys",
    "tests/oidc/test_smoke_flow.py",
    "tests/oidc/test_private_key_jwt.py",
    "tests/storage",
    "tests/authn/test_totp.py",
    "tests/authn/test_passkeys.py",
    "tests/authn/test_fido_metadata.py",
    "tests/accounts/test_account_area.py",
    "tests/i18n",
    "tests/cli/test_cli.py",
    "tests/cli/test_serve.py",
)
_FLOOR = re.compile(r"^([A-Za-z0-9_.-]+(?:\[[^\]]+\])?)\s*>=\s*([0-9][^,;\s]*)")


def floors() -> list[str]:
    """``name==floor`` for every direct dependency of the project."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = []
    for requirement in project["dependencies"]:
        found = _FLOOR.match(requirement)
        if found is None:
            raise SystemExit(f"lowest_deps: {requirement!r} has no >= floor")
        pins.append(f"{found.group(1)}=={found.group(2)}")
    return pins


def main() -> int:
    """Build the venv, install the floors and run the suites; pytest's exit status."""
    if not VENV.exists():
        venv.create(VENV, with_pip=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    pins = floors()
    print("lowest allowed versions:", " ".join(pins), flush=True)
    subprocess.run([*pip, *pins], check=True)
    library = f"{ROOT / 'clients/python'}[flask,redis]"
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT), "-e", library], check=True)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    test_tools = project["optional-dependencies"]["test"]
    # The test tools at their newest, never moving a pinned floor.
    constraints = VENV / "floors.txt"
    constraints.write_text("\n".join(re.sub(r"\[[^\]]*\]", "", pin) for pin in pins) + "\n")
    subprocess.run([*pip, "-c", str(constraints), *test_tools], check=True)
    run = [str(VENV / "bin" / "pytest"), "-q", "-n", "auto", "-p", "no:cacheprovider", *SUITES]
    return subprocess.run(run, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
