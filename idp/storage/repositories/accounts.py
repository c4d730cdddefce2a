"""Accounts and the pairwise subjects that point back to them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from idp.errors import Conflict
from idp.storage.db import Database
from idp.storage.models import Account, PairwiseSubject

#: Rows per statement in bulk work (well under every database's parameter limit).
_CHUNK = 500


_ACCOUNTS = Account.__table__


class AccountRepository:
    """Read and write accounts."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, account: Account) -> Account:
        """Insert a new account; a duplicate username or national id is a Conflict."""
        try:
            with self._db.transaction() as s:
                s.add(account)
        except IntegrityError:
            raise Conflict("an account with that username or identity number exists") from None
        return account

    def add_many(
        self, accounts: Sequence[Account], *, progress: Callable[[int], None] | None = None
    ) -> Sequence[Account]:
        """Insert accounts in one transaction, flushing ``_CHUNK`` at a time (``progress`` hears
        each chunk's size); any duplicate username or national id is a Conflict and inserts none."""
        try:
            with self._db.transaction() as s:
                for start in range(0, len(accounts), _CHUNK):
                    chunk = accounts[start : start + _CHUNK]
                    s.add_all(chunk)
                    s.flush()
                    if progress is not None:
                        progress(len(chunk))
        except IntegrityError:
            raise Conflict("an account with one of those usernames or identity numbers exists") from None
        return accounts

    def matching(self, national_ids: Sequence[str], usernames: Sequence[str]) -> Sequence[Account]:
        """Accounts with any of ``national_ids`` or (case-insensitively) ``usernames``."""
        found: dict[str, Account] = {}
        lowered = sorted({name.lower() for name in usernames})
        ids = sorted(set(national_ids))
        with self._db.transaction() as s:
            for start in range(0, max(len(ids), len(lowered)), _CHUNK):
                query = select(Account).where(
                    or_(
                        Account.national_id.in_(ids[start : start + _CHUNK]),
                        func.lower(Account.username).in_(lowered[start : start + _CHUNK]),
                    )
                )
                found.update((row.id, row) for row in s.scalars(query))
        return list(found.values())

    def email_in_use(self, email: str) -> bool:
        """True when an account has this email address (case-insensitive)."""
        with self._db.transaction() as s:
            query = select(Account.id).where(func.lower(Account.email) == email.lower()).limit(1)
            return s.scalars(query).first() is not None

    def by_id(self, account_id: str) -> Account | None:
        """The account with this id. Read as a plain row (every token request asks): the columns
        under the same names, without the ORM's identity map and instance state."""
        with self._db.transaction() as s:
            row = s.execute(select(_ACCOUNTS).where(_ACCOUNTS.c.id == account_id)).first()
        return cast(Account | None, row)

    def by_username(self, username: str) -> Account | None:
        """The account with this username (case-insensitive)."""
        with self._db.transaction() as s:
            return s.scalars(select(Account).where(func.lower(Account.username) == username.lower())).first()

    def list(self, *, limit: int = 1000) -> Sequence[Account]:
        """Accounts, oldest first."""
        with self._db.transaction() as s:
            return s.scalars(select(Account).order_by(Account.created_at).limit(limit)).all()

    def active_staff(self) -> Sequence[Account]:
        """Every active staff account (a few hundred at most; their roles live in ``attributes``)."""
        with self._db.transaction() as s:
            query = select(Account).where(Account.account_type == "staff", Account.status == "active")
            return s.scalars(query).all()

    def update(self, account_id: str, **values: Any) -> None:
        """Set columns of one account."""
        with self._db.transaction() as s:
            account = s.get(Account, account_id)
            if account is not None:
                for name, value in values.items():
                    setattr(account, name, value)

    def pairwise_subject(self, sector: str, account_id: str, subject: str) -> str:
        """Record (once) that ``sector`` knows the account as ``subject``; return the subject."""
        with self._db.transaction() as s:
            existing = s.scalars(
                select(PairwiseSubject.subject).where(
                    PairwiseSubject.sector == sector, PairwiseSubject.account_id == account_id
                )
            ).first()
            if existing is not None:
                return existing
        try:
            with self._db.transaction() as s:
                s.add(PairwiseSubject(sector=sector, subject=subject, account_id=account_id))
        except IntegrityError:
            # A concurrent request recorded the same deterministic subject: read it back. Anything
            # else (the subject already names another person) must never be handed out.
            with self._db.transaction() as s:
                recorded = s.scalars(
                    select(PairwiseSubject.subject).where(
                        PairwiseSubject.sector == sector, PairwiseSubject.account_id == account_id
                    )
                ).first()
            if recorded is None:
                raise Conflict("that pairwise subject already identifies another account") from None
            return recorded
        return subject

    def by_subject(self, sector: str, subject: str) -> Account | None:
        """The account a sector knows as ``subject``."""
        with self._db.transaction() as s:
            account_id = s.scalars(
                select(PairwiseSubject.account_id).where(
                    PairwiseSubject.sector == sector, PairwiseSubject.subject == subject
                )
            ).first()
            return None if account_id is None else s.get(Account, account_id)
