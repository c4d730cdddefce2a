"""Activation codes (as hashes): the first credential of people created by staff or import.

Issuing a code ends the account's earlier unused ones in the same transaction, and redeeming one
is a single conditional UPDATE (unused and unexpired) followed, in the same transaction, by the
new password: of two requests racing with one code, exactly one sets a password.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from idp.storage.db import Database
from idp.storage.models import Account, ActivationCode


class ActivationCodeRepository:
    """Store, find and redeem activation codes."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def issue(self, account_id: str, code_hash: str, *, now: datetime, expires_at: datetime) -> None:
        """Store a new code for the account; its unused earlier codes expire now."""
        with self._db.transaction() as s:
            s.execute(
                update(ActivationCode)
                .where(
                    ActivationCode.account_id == account_id,
                    ActivationCode.used_at.is_(None),
                    ActivationCode.expires_at > now,
                )
                .values(expires_at=now)
                .execution_options(synchronize_session=False)
            )
            s.add(
                ActivationCode(
                    account_id=account_id, code_hash=code_hash, created_at=now, expires_at=expires_at
                )
            )

    def mark_mailed(self, code_hash: str, address: str) -> None:
        """Record that the code was mailed to ``address`` (after the sender took the mail)."""
        with self._db.transaction() as s:
            s.execute(
                update(ActivationCode)
                .where(ActivationCode.code_hash == code_hash)
                .values(mailed_to=address)
                .execution_options(synchronize_session=False)
            )

    def by_hash(self, code_hash: str) -> ActivationCode | None:
        """The code with this hash, used or not, expired or not."""
        with self._db.transaction() as s:
            return s.scalars(select(ActivationCode).where(ActivationCode.code_hash == code_hash)).first()

    def redeem(
        self, code_id: int, account_id: str, password_hash: str, now: datetime, *, verify_email: bool = False
    ) -> bool:
        """Spend the code if it is still unused and unexpired, and set the account's password (and,
        with ``verify_email``, mark its address verified), in one transaction; True for the one
        call that did."""
        with self._db.transaction() as s:
            spent = s.execute(
                update(ActivationCode)
                .where(
                    ActivationCode.id == code_id,
                    ActivationCode.account_id == account_id,
                    ActivationCode.used_at.is_(None),
                    ActivationCode.expires_at > now,
                )
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
            if spent.rowcount != 1:  # type: ignore[attr-defined]
                return False
            s.execute(
                update(Account)
                .where(Account.id == account_id)
                .values(
                    password_hash=password_hash,
                    updated_at=now,
                    **({"email_verified": True} if verify_email else {}),
                )
                .execution_options(synchronize_session=False)
            )
            return True
