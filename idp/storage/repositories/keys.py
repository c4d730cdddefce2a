"""Signing keys and sealed instance secrets."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp.storage.db import Database
from idp.storage.models import InstanceSecret, SigningKey


class KeyRepository:
    """Read and write signing keys and instance secrets."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, key: SigningKey) -> None:
        """Insert a key."""
        with self._db.transaction() as s:
            s.add(key)

    def in_states(self, *states: str) -> Sequence[SigningKey]:
        """Keys in any of ``states``, newest first."""
        with self._db.transaction() as s:
            return s.scalars(
                select(SigningKey).where(SigningKey.state.in_(states)).order_by(SigningKey.created_at.desc())
            ).all()

    def secret(self, name: str) -> InstanceSecret | None:
        """The sealed instance secret called ``name``."""
        with self._db.transaction() as s:
            return s.get(InstanceSecret, name)

    def add_secret(self, secret: InstanceSecret) -> bool:
        """Insert a secret unless another process already did; True when this call stored it."""
        try:
            with self._db.transaction() as s:
                s.add(secret)
            return True
        except IntegrityError:
            return False
