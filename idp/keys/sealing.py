"""Sealing secrets at rest: AES-256-GCM under the master key.

A sealed value reads ``v1.<master key id>.<base64url(nonce || ciphertext || tag)>``. The master
key id (first 8 hex digits of the key's SHA-256) lets master-key rotation find what to re-seal.
The associated data binds each sealed value to what it is (for example ``signing_key:<kid>``), so a
sealed value copied into another row does not unseal there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idp.errors import ConfigurationError, KeyUnavailable
from idp.settings import Settings

MASTER_KEY_BYTES = 32
log = logging.getLogger("idp.keys")


def master_key_id(master_key: bytes) -> str:
    """The public identifier of a master key (first 8 hex digits of its SHA-256)."""
    return hashlib.sha256(master_key).hexdigest()[:8]


@dataclass(frozen=True)
class _Ring:
    """The master keys one seal or unseal uses, swapped whole when the key files change."""

    key_id: str
    primary: AESGCM
    by_id: dict[str, AESGCM]


def _make_ring(master_key: bytes, previous: Sequence[bytes]) -> _Ring:
    for key in (master_key, *previous):
        if len(key) != MASTER_KEY_BYTES:
            raise ConfigurationError("the master key must be 32 bytes (AES-256)")
    primary = AESGCM(master_key)
    by_id = {master_key_id(key): AESGCM(key) for key in previous}
    by_id[master_key_id(master_key)] = primary
    return _Ring(master_key_id(master_key), primary, by_id)


class Sealer:
    """Seal under the primary master key; unseal under it or a previous one (during rotation)."""

    def __init__(self, master_key: bytes, previous: Sequence[bytes] = ()) -> None:
        self._keys = _make_ring(master_key, previous)

    def _ring(self) -> _Ring:
        """The keys to use now (a sealer over key files re-reads them here when they changed)."""
        return self._keys

    @property
    def key_id(self) -> str:
        """The id of the primary master key (the one that seals)."""
        return self._ring().key_id

    def needs_reseal(self, sealed: str) -> bool:
        """True when ``sealed`` is not under the primary master key."""
        return sealed.split(".", 2)[1:2] != [self.key_id]

    def reseal(self, sealed: str, *, purpose: str) -> str | None:
        """``sealed`` sealed afresh under the primary master key, or None when it already is."""
        if not self.needs_reseal(sealed):
            return None
        return self.seal(self.unseal(sealed, purpose=purpose), purpose=purpose)

    def seal(self, plaintext: bytes, *, purpose: str) -> str:
        """Encrypt and authenticate ``plaintext`` for ``purpose``."""
        ring = self._ring()
        nonce = os.urandom(12)
        body = nonce + ring.primary.encrypt(nonce, plaintext, purpose.encode())
        return f"v1.{ring.key_id}.{base64.urlsafe_b64encode(body).decode().rstrip('=')}"

    def unseal(self, sealed: str, *, purpose: str) -> bytes:
        """Decrypt a sealed value; KeyUnavailable when it was sealed otherwise or tampered with."""
        try:
            version, key_id, body_text = sealed.split(".", 2)
        except ValueError:
            raise KeyUnavailable("a sealed value is malformed") from None
        if version != "v1":
            raise KeyUnavailable("a sealed value has an unknown format")
        aead = self._ring().by_id.get(key_id)
        if aead is None:
            raise KeyUnavailable("a sealed value was sealed under another master key")
        try:
            body = base64.urlsafe_b64decode(body_text + "=" * (-len(body_text) % 4))
            return aead.decrypt(body[:12], body[12:], purpose.encode())
        except (InvalidTag, ValueError, binascii.Error):
            raise KeyUnavailable("a sealed value failed authentication") from None

    def check(self) -> None:
        """KeyUnavailable when the master keys this sealer was given can no longer be read."""


#: What identifies one version of a key file (None: the file is absent).
_Stamp = tuple[int, int, int, int] | None


def _stamp(path: Path) -> _Stamp:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


class KeyFileSealer(Sealer):
    """A sealer over the master keys of ``settings`` that follows their files while it runs.

    Before each seal or unseal it looks at the key files (two ``stat`` calls; seals and unseals
    are rare, since unsealed signing keys are kept): when one changed, it reads the keys again. So
    ``hawiya keys rotate-master``, or a secret store that updates a mounted file, reaches every
    running process at its next use of the key, without a restart. Keys given by environment
    (``HAWIYA_MASTER_KEY``, ``HAWIYA_PREVIOUS_MASTER_KEY``) are read once: they change with a
    restart. A file that becomes unreadable or malformed leaves the last good keys in use and is
    reported by ``check`` (the readiness probe), so a botched edit does not stop the service.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._files = [previous_key_file(settings.master_key_file)]
        if not settings.master_key:
            self._files.append(settings.master_key_file)
        self._lock = threading.Lock()
        self._problem: str | None = None
        self._stamps = self._read_stamps()
        super().__init__(load_master_key(settings), load_previous_master_keys(settings))

    def _read_stamps(self) -> list[_Stamp]:
        return [_stamp(path) for path in self._files]

    def _ring(self) -> _Ring:
        stamps = self._read_stamps()
        if stamps != self._stamps:
            with self._lock:
                if stamps != self._stamps:
                    self._reload(stamps)
        return self._keys

    def _reload(self, stamps: list[_Stamp]) -> None:
        # The stamps are taken before reading: a file replaced meanwhile is read again next time.
        try:
            settings = self._settings
            self._keys = _make_ring(load_master_key(settings), load_previous_master_keys(settings))
        except (ConfigurationError, OSError) as error:
            message = error.message if isinstance(error, ConfigurationError) else "a key file is unreadable"
            if message != self._problem:
                log.error(
                    "master key files changed but cannot be used (%s); the last good keys stay", message
                )
            self._problem = message
            return  # stamps kept: tried again at the next use
        if self._problem is not None:
            log.warning("master key files readable again")
        self._problem = None
        self._stamps = stamps
        log.info("master key files changed: sealing under %s", self._keys.key_id)

    def check(self) -> None:
        """KeyUnavailable when the key files changed into something that cannot be used."""
        self._ring()
        if self._problem is not None:
            raise KeyUnavailable(f"the master key files cannot be used: {self._problem}")


def load_previous_master_keys(settings: Settings) -> list[bytes]:
    """Master keys being rotated out: ``HAWIYA_PREVIOUS_MASTER_KEY`` and/or the ``.previous`` file."""
    keys = []
    if settings.previous_master_key:
        keys.append(_decode(settings.previous_master_key, "HAWIYA_PREVIOUS_MASTER_KEY"))
    path = previous_key_file(settings.master_key_file)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return keys
    keys.append(_decode(text.strip(), str(path)))
    return keys


def previous_key_file(master_key_file: Path) -> Path:
    """Where the embedded default keeps the master key being rotated out."""
    return master_key_file.with_name(master_key_file.name + ".previous")


def load_master_key(settings: Settings) -> bytes:
    """The master key from ``HAWIYA_MASTER_KEY`` or the key file; ConfigurationError if absent."""
    if settings.master_key:
        return _decode(settings.master_key, "HAWIYA_MASTER_KEY")
    path = settings.master_key_file
    if not path.exists():
        raise ConfigurationError(
            f"no master key: set HAWIYA_MASTER_KEY or run `hawiya init` to create {path}"
        )
    return _decode(path.read_text().strip(), str(path))


def create_master_key_file(path: Path) -> bool:
    """Create a new random master key file (0600) unless one exists; True when created."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        _write_exclusive(path, _new_key_text())
    except FileExistsError:
        return False
    return True


def start_master_key_rotation(master_key_file: Path) -> Path:
    """Put a new master key in ``master_key_file`` and the old one beside it, in the ``.previous``
    file; that file's path.

    Every moment of the swap leaves a ring that opens everything sealed so far: the old key is
    first copied to ``.previous``, then the new key replaces the file in one rename. A process
    that reads the files in between sees the old key twice, never no key. FileExistsError when a
    ``.previous`` file is there already (a rotation is unfinished).
    """
    previous = previous_key_file(master_key_file)
    _write_exclusive(previous, master_key_file.read_text())
    staged = master_key_file.with_name(f".{master_key_file.name}.{secrets.token_hex(4)}")
    _write_exclusive(staged, _new_key_text())
    os.replace(staged, master_key_file)
    return previous


def _new_key_text() -> str:
    return base64.b64encode(secrets.token_bytes(MASTER_KEY_BYTES)).decode() + "\n"


def _write_exclusive(path: Path, text: str) -> None:
    """Write a new 0600 file; FileExistsError when ``path`` exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _decode(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"the master key in {source} is not valid base64") from None
    if len(key) != MASTER_KEY_BYTES:
        raise ConfigurationError(f"the master key in {source} must decode to 32 bytes")
    return key
