"""Files of the embedded default on disk: readable by Hawiya's own user only.

The SQLite database, the ephemeral store (sessions, codes), the outbox and ``demo.json`` hold what
no other local user may read: files are created 0600 and folders 0700, and files an older version
left group- or world-readable are tightened when Hawiya opens them. SQLite creates its ``-wal``,
``-shm`` and ``-journal`` companions with the mode of the database file, so making the file first
(0600) covers them; existing ones are tightened too.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

#: What SQLite writes beside a database file.
_COMPANIONS = ("-wal", "-shm", "-journal")


def private_folder(path: Path) -> None:
    """Create ``path`` (0700) if missing, or take group and other access away from it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    _tighten(path, 0o700)


def private_file(path: Path) -> None:
    """Make sure ``path`` exists with mode 0600 (its missing folders made 0700), and tighten the
    SQLite companions already beside it."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    _tighten(path, 0o600)
    for suffix in _COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            _tighten(companion, 0o600)


def _tighten(path: Path, mode: int) -> None:
    """Drop permission bits beyond ``mode`` on a file or folder this user owns."""
    info = path.stat()
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & ~mode:
        os.chmod(path, stat.S_IMODE(info.st_mode) & mode)
