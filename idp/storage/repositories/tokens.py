"""Refresh tokens: stored as SHA-256 hashes, in rotation families, consumed atomically.

Consuming is a single conditional UPDATE (``consumed_at IS NULL AND revoked_at IS NULL``): of two
concurrent uses exactly one changes a row, on SQLite and PostgreSQL alike. Refresh tokens live in
the durable database, not the ephemeral store, because offline tokens outlive any cache restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, insert, select, update

from idp.storage.db import Database
from idp.storage.models import RefreshToken

_COLUMNS = tuple(RefreshToken.__table__.columns)


class RefreshTokenRepository:
    """Add, consume and revoke refresh tokens."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, token: RefreshToken) -> None:
        """Insert a new token: one Core INSERT of the values set (the ORM's unit of work cost
        more than the statement; column defaults still apply)."""
        values = {c.key: getattr(token, c.key) for c in _COLUMNS if c.key in token.__dict__}
        with self._db.transaction() as s:
            s.execute(insert(RefreshToken).values(**values))

    def by_hash(self, token_hash: str) -> RefreshToken | None:
        """The token with this hash, whatever its state."""
        with self._db.transaction() as s:
            return s.scalars(select(RefreshToken).where(RefreshToken.token_hash == token_hash)).first()

    def consume(self, token_hash: str, client_id: str, now: datetime) -> RefreshToken | None:
        """Mark the token spent if it is ``client_id``'s, unspent and unrevoked; the row when this
        call won. Another client's attempt changes nothing (the token stays usable by its owner)."""
        with self._db.transaction() as s:
            return s.scalars(
                update(RefreshToken)
                .where(
                    RefreshToken.token_hash == token_hash,
                    RefreshToken.client_id == client_id,
                    RefreshToken.consumed_at.is_(None),
                    RefreshToken.revoked_at.is_(None),
                )
                .values(consumed_at=now)
                .returning(RefreshToken)
                .execution_options(synchronize_session=False)
            ).one_or_none()

    def release(self, token_hash: str, client_id: str) -> bool:
        """Make a consumed token unspent again, unless it has been revoked since; True if it was."""
        with self._db.transaction() as s:
            result = s.execute(
                update(RefreshToken)
                .where(
                    RefreshToken.token_hash == token_hash,
                    RefreshToken.client_id == client_id,
                    RefreshToken.consumed_at.is_not(None),
                    RefreshToken.revoked_at.is_(None),
                )
                .values(consumed_at=None)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def revoke_family(self, family_id: str, now: datetime) -> int:
        """Revoke every live token of a family; how many were live."""
        return self._revoke(RefreshToken.family_id == family_id, now)

    def revoke_for_code(self, code_hash: str, now: datetime) -> list[str]:
        """Revoke the families a code started; their ids."""
        with self._db.transaction() as s:
            families = list(
                s.scalars(select(RefreshToken.family_id).where(RefreshToken.code_hash == code_hash)).all()
            )
        for family in set(families):
            self.revoke_family(family, now)
        return sorted(set(families))

    def revoke_for_key(self, kid: str, now: datetime) -> list[str]:
        """Revoke the families with a token issued alongside tokens signed by ``kid``; their ids."""
        with self._db.transaction() as s:
            families = set(
                s.scalars(
                    select(RefreshToken.family_id).where(
                        RefreshToken.key_ids.contains(f" {kid} "), RefreshToken.revoked_at.is_(None)
                    )
                ).all()
            )
        for family in families:
            self.revoke_family(family, now)
        return sorted(families)

    def revoke_for_session(self, sid: str, now: datetime) -> Sequence[str]:
        """Revoke the session-bound (not offline) families of an SSO session; their ids."""
        with self._db.transaction() as s:
            families = list(
                s.scalars(
                    select(RefreshToken.family_id).where(
                        RefreshToken.sid == sid, RefreshToken.offline.is_(False)
                    )
                ).all()
            )
        for family in set(families):
            self.revoke_family(family, now)
        return sorted(set(families))

    def revoke_for_grant(self, account_id: str, client_id: str, now: datetime) -> Sequence[str]:
        """Revoke every family a person's consent gave a client (offline ones too); their ids."""
        with self._db.transaction() as s:
            families = list(
                s.scalars(
                    select(RefreshToken.family_id).where(
                        RefreshToken.account_id == account_id,
                        RefreshToken.client_id == client_id,
                        RefreshToken.revoked_at.is_(None),
                    )
                ).all()
            )
        for family in set(families):
            self.revoke_family(family, now)
        return sorted(set(families))

    def revoke_for_account(self, account_id: str, now: datetime) -> Sequence[str]:
        """Revoke every family of the person, with every client, offline ones too; their ids."""
        with self._db.transaction() as s:
            families = set(
                s.scalars(
                    select(RefreshToken.family_id).where(
                        RefreshToken.account_id == account_id, RefreshToken.revoked_at.is_(None)
                    )
                ).all()
            )
        for family in families:
            self.revoke_family(family, now)
        return sorted(families)

    def holders(self, client_id: str, now: datetime) -> set[str]:
        """The accounts for which ``client_id`` holds a usable refresh token (unspent, unrevoked,
        unexpired)."""
        with self._db.transaction() as s:
            return set(
                s.scalars(
                    select(RefreshToken.account_id).where(
                        RefreshToken.client_id == client_id,
                        RefreshToken.consumed_at.is_(None),
                        RefreshToken.revoked_at.is_(None),
                        RefreshToken.expires_at > now,
                    )
                ).all()
            )

    def _revoke(self, condition: ColumnElement[bool], now: datetime) -> int:
        with self._db.transaction() as s:
            result = s.execute(
                update(RefreshToken)
                .where(condition, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=now)
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]
