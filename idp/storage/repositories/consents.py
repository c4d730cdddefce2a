"""Consents a person gave to clients."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select

from idp.storage.db import Database
from idp.storage.models import Consent


class ConsentRepository:
    """Read and merge consents."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def granted(self, account_id: str, client_id: str) -> tuple[set[str], set[str]]:
        """Scopes and individual claims the person already allowed this client."""
        with self._db.transaction() as s:
            consent = s.scalars(
                select(Consent).where(Consent.account_id == account_id, Consent.client_id == client_id)
            ).first()
            return (set(consent.scopes), set(consent.claims)) if consent else (set(), set())

    def merge(
        self, account_id: str, client_id: str, scopes: set[str], claims: set[str], now: datetime
    ) -> None:
        """Add scopes and claims to the person's consent for this client."""
        with self._db.transaction() as s:
            consent = s.scalars(
                select(Consent)
                .where(Consent.account_id == account_id, Consent.client_id == client_id)
                .with_for_update()
            ).first()
            if consent is None:
                s.add(
                    Consent(
                        account_id=account_id,
                        client_id=client_id,
                        scopes=sorted(scopes),
                        claims=sorted(claims),
                        created_at=now,
                        updated_at=now,
                    )
                )
            else:
                consent.scopes = sorted(set(consent.scopes) | scopes)
                consent.claims = sorted(set(consent.claims) | claims)
                consent.updated_at = now

    def for_account(self, account_id: str) -> Sequence[Consent]:
        """Every consent the person gave, most recently changed first."""
        with self._db.transaction() as s:
            return s.scalars(
                select(Consent)
                .where(Consent.account_id == account_id)
                .order_by(Consent.updated_at.desc(), Consent.client_id)
            ).all()

    def accounts_of(self, client_id: str) -> set[str]:
        """The accounts that gave ``client_id`` a consent (first-party clients' implied ones too)."""
        with self._db.transaction() as s:
            return set(s.scalars(select(Consent.account_id).where(Consent.client_id == client_id)).all())

    def delete(self, account_id: str, client_id: str) -> bool:
        """Forget the person's consent to this client; True when there was one."""
        with self._db.transaction() as s:
            result = s.execute(
                delete(Consent).where(Consent.account_id == account_id, Consent.client_id == client_id)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]
