"""Every string a person can see exists in Arabic, and the catalog matches the source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "idp/i18n/translations/ar/LC_MESSAGES/messages.po"


def _ids(path: Path) -> set[str]:
    with path.open("rb") as handle:
        return {str(m.id) for m in read_po(handle) if m.id}


def test_every_source_string_is_in_the_arabic_catalog(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_",
            "-k",
            "gettext",
            "-k",
            "lazy_gettext",
            "--no-location",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    missing = _ids(pot) - _ids(PO)
    assert not missing, f"run `make i18n` and translate: {sorted(missing)}"


def test_every_arabic_entry_is_translated_and_keeps_its_placeholders() -> None:
    with PO.open("rb") as handle:
        catalog = read_po(handle)
    for message in catalog:
        if not message.id:
            continue
        assert message.string, f"untranslated: {message.id!r}"
        assert "fuzzy" not in message.flags, f"fuzzy: {message.id!r}"
        for placeholder in ("%(service)s", "%(name)s", "%(agency)s", "%(code)s"):
            assert (placeholder in str(message.id)) == (placeholder in str(message.string)), message.id
