"""Registered clients."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp.errors import Conflict
from idp.storage.db import Database
from idp.storage.models import Client


class ClientRepository:
    """Read and write clients."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, client: Client) -> Client:
        """Insert a client."""
        try:
            with self._db.transaction() as s:
                s.add(client)
        except IntegrityError:
            raise Conflict("a client with that id exists") from None
        return client

    def get(self, client_id: str) -> Client | None:
        """The client with this id, whatever its status."""
        with self._db.transaction() as s:
            return s.get(Client, client_id)

    def list(self) -> Sequence[Client]:
        """Every client, oldest first."""
        with self._db.transaction() as s:
            return s.scalars(select(Client).order_by(Client.created_at)).all()

    def update(self, client_id: str, **values: Any) -> Client | None:
        """Set columns of one client; None when it does not exist."""
        with self._db.transaction() as s:
            client = s.get(Client, client_id)
            if client is None:
                return None
            for name, value in values.items():
                setattr(client, name, value)
            return client
