"""Signing keys and sealed instance secrets."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
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

    def promote(
        self,
        alg: str,
        *,
        current_kid: str | None,
        next_kid: str,
        now: datetime,
        successor: SigningKey | None = None,
    ) -> bool:
        """Retire ``current_kid``, make ``next_kid`` current and store ``successor`` (the new next
        key), in one transaction.

        Both updates are conditional on the states they expect, so of several processes rotating
        at once exactly one succeeds and the others change nothing (True only for the winner).
        """
        with self._db.transaction() as s:
            promoted = s.execute(
                update(SigningKey)
                .where(SigningKey.kid == next_kid, SigningKey.state == "next", SigningKey.alg == alg)
                .values(state="current", activated_at=now)
                .execution_options(synchronize_session=False)
            )
            if promoted.rowcount != 1:  # type: ignore[attr-defined]
                s.rollback()
                return False
            if current_kid is not None:
                s.execute(
                    update(SigningKey)
                    .where(SigningKey.kid == current_kid, SigningKey.state == "current")
                    .values(state="retired", retired_at=now)
                    .execution_options(synchronize_session=False)
                )
            if successor is not None:
                s.add(successor)
            return True

    def revoke(self, kid: str, *, reason: str, now: datetime) -> SigningKey | None:
        """Mark a key revoked; the row as it was before, or None if unknown or already revoked.

        A revoked current key hands over in the same transaction: the newest next key of its
        algorithm becomes current. Done in two steps, a token request in between would find the
        algorithm without a signing key and fail.
        """
        with self._db.transaction() as s:
            row = s.get(SigningKey, kid)
            if row is None or row.state == "revoked":
                return None
            before = SigningKey(kid=row.kid, alg=row.alg, state=row.state, created_at=row.created_at)
            row.state, row.revoked_at, row.revoke_reason = "revoked", now, reason
            if before.state == "current":
                upcoming = s.scalars(
                    select(SigningKey)
                    .where(SigningKey.alg == before.alg, SigningKey.state == "next")
                    .order_by(SigningKey.created_at.desc())
                ).first()
                if upcoming is not None:
                    upcoming.state, upcoming.activated_at = "current", now
            return before

    def delete_retired_before(self, cutoff: datetime) -> list[str]:
        """Remove retired keys retired before ``cutoff``; their kids."""
        with self._db.transaction() as s:
            rows = s.scalars(
                select(SigningKey).where(SigningKey.state == "retired", SigningKey.retired_at < cutoff)
            ).all()
            for row in rows:
                s.delete(row)
            return [row.kid for row in rows]

    def all_sealed(self) -> list[tuple[str, str, str]]:
        """(table, id, sealed value) of every sealed value, for re-sealing under a new master key."""
        with self._db.transaction() as s:
            keys = [("signing_keys", k.kid, k.private_sealed) for k in s.scalars(select(SigningKey))]
            secrets = [
                ("instance_secrets", x.name, x.sealed_value) for x in s.scalars(select(InstanceSecret))
            ]
            return keys + secrets

    def replace_sealed(self, table: str, ident: str, old: str, new: str) -> bool:
        """Swap one sealed value if it is still ``old`` (online re-sealing never loses a write)."""
        model = SigningKey if table == "signing_keys" else InstanceSecret
        column = SigningKey.private_sealed if table == "signing_keys" else InstanceSecret.sealed_value
        ident_column = SigningKey.kid if table == "signing_keys" else InstanceSecret.name
        with self._db.transaction() as s:
            result = s.execute(
                update(model)
                .where(ident_column == ident, column == old)
                .values({column.key: new})
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]
