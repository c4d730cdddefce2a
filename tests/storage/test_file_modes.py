"""The embedded default's files are Hawiya's alone: the instance folder 0700, the database, the
ephemeral store and their SQLite companions 0600, the outbox 0700 with 0600 messages. Reproduction:
`instance/*.db*` and the ephemeral store were 0644 in a 0755 folder, readable by every local user
(sessions, codes, sealed keys)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from idp.mail import Mail
from tests.conftest import PASSWORD, Backend, make_registry, make_settings
from tests.support.cli import new_instance
from tests.support.identity import national_id


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _embedded_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if ".db" in path.name)


def test_init_makes_private_files(tmp_path: Path) -> None:
    """`hawiya init` on the embedded default, as `make run` does it (the database in the instance
    folder), then a process that writes: every file is 0600 in a 0700 folder."""
    instance = new_instance(tmp_path)
    default_layout = {"HAWIYA_DATABASE_URL": ""}
    assert instance.run("init", **default_layout).returncode == 0
    registry = instance.registry(**default_layout)
    try:
        registry.accounts.create(
            account_type="citizen", username="amal", password=PASSWORD, national_id=national_id(90)
        )
        registry.store.put("probe", b"1", 60)
        folder = registry.settings.instance_path
        assert _mode(folder) == 0o700
        files = _embedded_files(folder)
        assert {path.name for path in files} >= {"hawiya.db", "ephemeral.db"}
        assert any(path.name.endswith("-wal") for path in files)  # open: the companions exist
        assert {path.name: _mode(path) for path in files} == {path.name: 0o600 for path in files}
    finally:
        registry.close()


def test_files_an_older_version_left_readable_are_tightened(tmp_path: Path, backend: Backend) -> None:
    folder = tmp_path
    settings = make_settings(folder, backend)
    registry = make_registry(settings)
    registry.store.put("probe", b"1", 60)
    registry.close()
    os.chmod(folder, 0o755)  # noqa: S103 - what an older version left
    for path in _embedded_files(folder):
        os.chmod(path, 0o644)
    reopened = make_registry(settings)
    try:
        assert reopened.store.get("probe") == b"1"
        assert reopened.db.is_initialised()
        assert _mode(folder) == 0o700
        assert {_mode(path) for path in _embedded_files(folder)} == {0o600}
    finally:
        reopened.close()


def test_outbox_messages_are_private(tmp_path: Path, backend: Backend) -> None:
    settings = make_settings(tmp_path, backend)
    registry = make_registry(settings)
    try:
        registry.mail_transport.send(Mail("amal@example.org", "Subject", "Body"))
        outbox = settings.outbox_path
        assert _mode(outbox) == 0o700
        assert {_mode(path) for path in outbox.iterdir()} == {0o600}
    finally:
        registry.close()
