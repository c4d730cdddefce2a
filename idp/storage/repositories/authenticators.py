"""Authenticators (second factors) and recovery codes.

Every state change that a security decision rests on is one conditional statement: confirming an
enrolment (``confirmed_at IS NULL``), spending a recovery code (``used_at IS NULL``), and removing
a factor while the account row is locked, so two concurrent removals cannot both leave an account
that must keep one factor with none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from idp.storage.db import Database
from idp.storage.models import Account, Authenticator, RecoveryCode

Removal = Literal["removed", "last", "missing"]


class AuthenticatorRepository:
    """Read and write one account's authenticators."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, row: Authenticator) -> Authenticator:
        """Insert an authenticator."""
        with self._db.transaction() as s:
            s.add(row)
        return row

    def add_credential(self, row: Authenticator) -> bool:
        """Insert a WebAuthn credential; False when its credential id is already registered."""
        try:
            with self._db.transaction() as s:
                s.add(row)
        except IntegrityError:
            return False
        return True

    def for_account(self, account_id: str) -> Sequence[Authenticator]:
        """The account's authenticators, oldest first (confirmed or not)."""
        with self._db.transaction() as s:
            return s.scalars(
                select(Authenticator)
                .where(Authenticator.account_id == account_id)
                .order_by(Authenticator.created_at, Authenticator.id)
            ).all()

    def get(self, account_id: str, authenticator_id: str) -> Authenticator | None:
        """One of the account's authenticators (None for another account's)."""
        with self._db.transaction() as s:
            return s.scalars(
                select(Authenticator).where(
                    Authenticator.id == authenticator_id, Authenticator.account_id == account_id
                )
            ).first()

    def by_credential_id(self, credential_id: bytes) -> Authenticator | None:
        """The confirmed WebAuthn authenticator with this credential id, whoever holds it."""
        with self._db.transaction() as s:
            return s.scalars(
                select(Authenticator).where(
                    Authenticator.credential_id == credential_id, Authenticator.confirmed_at.is_not(None)
                )
            ).first()

    def record_assertion(
        self, authenticator_id: str, *, old_count: int, new_count: int, backup_state: bool, now: datetime
    ) -> bool:
        """Move a credential's signature counter from ``old_count`` on; False when another sign-in
        moved it first (two assertions with one counter value: at most one counts)."""
        with self._db.transaction() as s:
            result = s.execute(
                update(Authenticator)
                .where(Authenticator.id == authenticator_id, Authenticator.sign_count == old_count)
                .values(sign_count=new_count, backup_state=backup_state, last_used_at=now)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def count_confirmed(self, account_id: str) -> int:
        """How many confirmed authenticators the account has."""
        with self._db.transaction() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(Authenticator)
                    .where(Authenticator.account_id == account_id, Authenticator.confirmed_at.is_not(None))
                )
                or 0
            )

    def confirm(self, account_id: str, authenticator_id: str, now: datetime) -> bool:
        """Mark an unconfirmed authenticator confirmed; True when this call did it."""
        return self._conditional(
            account_id,
            authenticator_id,
            Authenticator.confirmed_at.is_(None),
            confirmed_at=now,
            last_used_at=now,
        )

    def update(self, account_id: str, authenticator_id: str, **values: Any) -> bool:
        """Set columns of one of the account's authenticators; False when it is not theirs."""
        return self._conditional(account_id, authenticator_id, None, **values)

    def _conditional(self, account_id: str, authenticator_id: str, condition: Any, **values: Any) -> bool:
        query = update(Authenticator).where(
            Authenticator.id == authenticator_id, Authenticator.account_id == account_id
        )
        if condition is not None:
            query = query.where(condition)
        with self._db.transaction() as s:
            result = s.execute(query.values(**values).execution_options(synchronize_session=False))
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def delete_unconfirmed(self, account_id: str, kind: str) -> int:
        """Drop enrolments of ``kind`` that were never confirmed; how many."""
        with self._db.transaction() as s:
            result = s.execute(
                delete(Authenticator).where(
                    Authenticator.account_id == account_id,
                    Authenticator.kind == kind,
                    Authenticator.confirmed_at.is_(None),
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def remove(self, account_id: str, authenticator_id: str, *, keep_one: bool) -> Removal:
        """Delete one authenticator; with ``keep_one``, refuse to delete the last confirmed one."""
        with self._db.transaction() as s:
            # Serialise removals per account (PostgreSQL row lock; SQLite has one writer anyway).
            s.execute(select(Account.id).where(Account.id == account_id).with_for_update())
            row = s.scalars(
                select(Authenticator).where(
                    Authenticator.id == authenticator_id, Authenticator.account_id == account_id
                )
            ).first()
            if row is None:
                return "missing"
            if keep_one and row.confirmed_at is not None:
                others = s.scalar(
                    select(func.count())
                    .select_from(Authenticator)
                    .where(
                        Authenticator.account_id == account_id,
                        Authenticator.confirmed_at.is_not(None),
                        Authenticator.id != authenticator_id,
                    )
                )
                if not others:
                    return "last"
            s.delete(row)
            return "removed"

    def all_sealed(self) -> list[tuple[str, str]]:
        """(id, sealed secret) of every authenticator with a sealed secret (master-key rotation)."""
        with self._db.transaction() as s:
            rows = s.execute(
                select(Authenticator.id, Authenticator.secret_sealed).where(
                    Authenticator.secret_sealed.is_not(None)
                )
            ).all()
            return [(str(ident), str(sealed)) for ident, sealed in rows]

    def replace_sealed(self, authenticator_id: str, old: str, new: str) -> bool:
        """Swap a sealed secret if it is still ``old`` (online re-sealing never loses a write)."""
        with self._db.transaction() as s:
            result = s.execute(
                update(Authenticator)
                .where(Authenticator.id == authenticator_id, Authenticator.secret_sealed == old)
                .values(secret_sealed=new)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]


class RecoveryCodeRepository:
    """Store, count and spend recovery codes (as hashes)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def replace(self, account_id: str, code_hashes: Sequence[str], now: datetime) -> None:
        """Drop every code of the account and store the new set, in one transaction."""
        with self._db.transaction() as s:
            s.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
            s.add_all(
                RecoveryCode(account_id=account_id, code_hash=code_hash, created_at=now)
                for code_hash in code_hashes
            )

    def consume(self, account_id: str, code_hash: str, now: datetime) -> bool:
        """Spend the account's unused code with this hash; True for the one call that did."""
        with self._db.transaction() as s:
            result = s.execute(
                update(RecoveryCode)
                .where(
                    RecoveryCode.account_id == account_id,
                    RecoveryCode.code_hash == code_hash,
                    RecoveryCode.used_at.is_(None),
                )
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def counts(self, account_id: str) -> tuple[int, int]:
        """(unused, total) codes of the account."""
        with self._db.transaction() as s:
            total = s.scalar(
                select(func.count()).select_from(RecoveryCode).where(RecoveryCode.account_id == account_id)
            )
            unused = s.scalar(
                select(func.count())
                .select_from(RecoveryCode)
                .where(RecoveryCode.account_id == account_id, RecoveryCode.used_at.is_(None))
            )
            return int(unused or 0), int(total or 0)

    def delete_all(self, account_id: str) -> None:
        """Drop every code of the account."""
        with self._db.transaction() as s:
            s.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
