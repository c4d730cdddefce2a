"""Signing keys in tests: what must never leak (their private members, unsealed for the check),
and moving their times back (a key published an hour ago, retired long enough to prune)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from idp.keys.keystore import ALL_STATES
from idp.registry import Registry
from idp.storage.models import SigningKey
from idp.storage.repositories.keys import KeyRepository

#: Members of a private JWK (RFC 7518 6.2.2, 6.3.2, 6.4; RFC 8037 2): none may ever be shown.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def private_values(registry: Registry) -> set[str]:
    """Every private member of every stored signing key, unsealed."""
    values = set()
    for row in KeyRepository(registry.db).in_states(*ALL_STATES):
        private = json.loads(registry.sealer.unseal(row.private_sealed, purpose=f"signing_key:{row.kid}"))
        values |= {str(value) for name, value in private.items() if name in PRIVATE_MEMBERS}
    return values


def leaks(text: str, registry: Registry) -> list[str]:
    """The private members of ``registry``'s keys that appear in ``text`` (should be none)."""
    values = private_values(registry)
    assert values, "no private key material to look for: the check would prove nothing"
    return [value for value in values if value in text]


def backdate(registry: Registry, state: str, column: str, age: timedelta) -> None:
    """Set ``column`` (``created_at``, ``retired_at`` ...) of every signing key in ``state`` to
    ``age`` ago."""
    with registry.db.transaction() as s:
        s.execute(
            update(SigningKey).where(SigningKey.state == state).values({column: datetime.now(UTC) - age})
        )
