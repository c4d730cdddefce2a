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
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idp.errors import ConfigurationError, KeyUnavailable
from idp.settings import Settings

MASTER_KEY_BYTES = 32


def master_key_id(master_key: bytes) -> str:
    """The public identifier of a master key (first 8 hex digits of its SHA-256)."""
    return hashlib.sha256(master_key).hexdigest()[:8]


class Sealer:
    """Seal under the primary master key; unseal under it or a previous one (during rotation)."""

    def __init__(self, master_key: bytes, previous: Sequence[bytes] = ()) -> None:
        for key in (master_key, *previous):
            if len(key) != MASTER_KEY_BYTES:
                raise ConfigurationError("the master key must be 32 bytes (AES-256)")
        self._aead = AESGCM(master_key)
        self.key_id = master_key_id(master_key)
        self._ring = {master_key_id(key): AESGCM(key) for key in previous}
        self._ring[self.key_id] = self._aead

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
        nonce = os.urandom(12)
        body = nonce + self._aead.encrypt(nonce, plaintext, purpose.encode())
        return f"v1.{self.key_id}.{base64.urlsafe_b64encode(body).decode().rstrip('=')}"

    def unseal(self, sealed: str, *, purpose: str) -> bytes:
        """Decrypt a sealed value; KeyUnavailable when it was sealed otherwise or tampered with."""
        try:
            version, key_id, body_text = sealed.split(".", 2)
        except ValueError:
            raise KeyUnavailable("a sealed value is malformed") from None
        if version != "v1":
            raise KeyUnavailable("a sealed value has an unknown format")
        aead = self._ring.get(key_id)
        if aead is None:
            raise KeyUnavailable("a sealed value was sealed under another master key")
        try:
            body = base64.urlsafe_b64decode(body_text + "=" * (-len(body_text) % 4))
            return aead.decrypt(body[:12], body[12:], purpose.encode())
        except (InvalidTag, ValueError, binascii.Error):
            raise KeyUnavailable("a sealed value failed authentication") from None


def load_previous_master_keys(settings: Settings) -> list[bytes]:
    """Master keys being rotated out: ``HAWIYA_PREVIOUS_MASTER_KEY`` and/or the ``.previous`` file."""
    keys = []
    if settings.previous_master_key:
        keys.append(_decode(settings.previous_master_key, "HAWIYA_PREVIOUS_MASTER_KEY"))
    path = previous_key_file(settings.master_key_file)
    if path.exists():
        keys.append(_decode(path.read_text().strip(), str(path)))
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
    encoded = base64.b64encode(secrets.token_bytes(MASTER_KEY_BYTES)).decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(encoded + "\n")
    return True


def _decode(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"the master key in {source} is not valid base64") from None
    if len(key) != MASTER_KEY_BYTES:
        raise ConfigurationError(f"the master key in {source} must decode to 32 bytes")
    return key
