"""Signing keys and sealed instance secrets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from idp.storage.db import Database
from idp.storage.models import InstanceSecret, JwksPublication, SigningKey


@dataclass(frozen=True)
class Promotion:
    """One algorithm's rotation: ``next_kid`` signs from now on, ``current_kid`` retires."""

    alg: str
    current_kid: str | None
    next_kid: str
    successor: SigningKey | None = None


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

    def promote_all(self, promotions: Sequence[Promotion], *, now: datetime) -> bool:
        """For each promotion: retire its current key, make its next key current and store its
        successor (the new next key); all in one transaction, or none.

        Every update is conditional on the states it expects, so of several processes rotating at
        once exactly one succeeds and the others change nothing (True only for the winner).
        """
        with self._db.transaction() as s:
            for p in promotions:
                promoted = s.execute(
                    update(SigningKey)
                    .where(SigningKey.kid == p.next_kid, SigningKey.state == "next", SigningKey.alg == p.alg)
                    .values(state="current", activated_at=now)
                    .execution_options(synchronize_session=False)
                )
                if promoted.rowcount != 1:  # type: ignore[attr-defined]
                    s.rollback()
                    return False
                if p.current_kid is not None:
                    s.execute(
                        update(SigningKey)
                        .where(SigningKey.kid == p.current_kid, SigningKey.state == "current")
                        .values(state="retired", retired_at=now)
                        .execution_options(synchronize_session=False)
                    )
                if p.successor is not None:
                    s.add(p.successor)
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

    def record_publication(self, max_age: int, *, now: datetime) -> None:
        """Note that a process serves the JWKS with ``max_age`` at ``now`` (one row per value)."""
        for _attempt in range(2):
            with self._db.transaction() as s:
                renewed = s.execute(
                    update(JwksPublication)
                    .where(JwksPublication.max_age == max_age)
                    .values(recorded_at=now)
                    .execution_options(synchronize_session=False)
                )
                if renewed.rowcount == 1:  # type: ignore[attr-defined]
                    return
            try:
                with self._db.transaction() as s:
                    s.add(JwksPublication(max_age=max_age, recorded_at=now))
                return
            except IntegrityError:
                continue  # another process inserted it meanwhile: renew that row

    def publications(self) -> list[tuple[int, datetime]]:
        """(max-age, when last recorded) of every JWKS max-age a process has published."""
        with self._db.transaction() as s:
            return [(row.max_age, row.recorded_at) for row in s.scalars(select(JwksPublication))]

    def forget_publication(self, max_age: int, *, recorded_at: datetime) -> None:
        """Remove the record of ``max_age`` unless it was renewed after ``recorded_at``."""
        with self._db.transaction() as s:
            s.execute(
                delete(JwksPublication).where(
                    JwksPublication.max_age == max_age, JwksPublication.recorded_at <= recorded_at
                )
            )
