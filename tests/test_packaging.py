"""The wheel carries everything Hawiya reads at run time: a deployment installs the wheel, not the
repository. Reproduction: the mail templates (``idp/templates/emails/*.txt``) and the pages'
scripts (``idp/static/js/``: passkeys, form_post) were missing from the wheel, so an installed
Hawiya could send no mail, register no passkey and answer no form_post request."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: What the package reads from its own folder at run time (besides its modules).
DATA = ("templates", "static", "storage/migrations", "accounts/data")


def test_the_wheel_carries_every_template_migration_and_data_file(tmp_path: Path) -> None:
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("hawiya-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        path.relative_to(ROOT).as_posix()
        for folder in DATA
        for path in (ROOT / "idp" / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.name != "README.md"
    }
    missing = sorted(expected - shipped)
    assert not missing, f"not in the wheel: {missing}"
    assert any(name.endswith("ar/LC_MESSAGES/messages.mo") for name in shipped)
