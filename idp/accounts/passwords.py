"""Password hashing with Argon2id (cryptography), stored as PHC strings.

Parameters are at least OWASP's (m=19 MiB, t=2, p=1); a stored hash made with weaker parameters is
re-hashed at the next successful sign-in.
"""

from __future__ import annotations

import re
import secrets

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

_PARAMS = re.compile(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$")


class PasswordHasher:
    """Hash and verify passwords."""

    def __init__(self, *, memory_kib: int, iterations: int, lanes: int) -> None:
        self.memory_kib = memory_kib
        self.iterations = iterations
        self.lanes = lanes
        self._dummy: str | None = None

    def _kdf(self, salt: bytes) -> Argon2id:
        return Argon2id(
            salt=salt,
            length=32,
            iterations=self.iterations,
            lanes=self.lanes,
            memory_cost=self.memory_kib,
        )

    def hash(self, password: str) -> str:
        """A PHC string for ``password`` with a fresh 16-byte salt."""
        return self._kdf(secrets.token_bytes(16)).derive_phc_encoded(password.encode())

    def verify(self, password: str, phc: str) -> bool:
        """True when ``password`` matches ``phc`` (constant-time inside the KDF comparison)."""
        try:
            Argon2id.verify_phc_encoded(password.encode(), phc)
            return True
        except (InvalidKey, ValueError):
            return False

    def verify_dummy(self, password: str) -> None:
        """Spend the same time as a real verification, for accounts that do not exist."""
        if self._dummy is None:
            self._dummy = self.hash(secrets.token_urlsafe(16))
        self.verify(password, self._dummy)

    def needs_rehash(self, phc: str) -> bool:
        """True when ``phc`` was made with weaker parameters than today's."""
        match = _PARAMS.match(phc)
        if match is None:
            return True
        memory, iterations, lanes = (int(g) for g in match.groups())
        return memory < self.memory_kib or iterations < self.iterations or lanes != self.lanes
