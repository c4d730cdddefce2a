"""The signing-key store: keys live in the database (shared by every process), private parts
sealed under the master key.

States: ``next`` (published, not yet signing) -> ``current`` (signing) -> ``retired`` (published
for verification only) -> removed; or ``revoked``. Rotation itself is the keys issue; this module
creates the first current key of each algorithm and publishes the JWKS.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joserfc import jwk
from joserfc.jwk import ECKey, Key, KeySet, RSAKey

from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.clock import Clock
from idp.errors import KeyUnavailable
from idp.keys.sealing import Sealer
from idp.storage.models import InstanceSecret, SigningKey
from idp.storage.repositories.keys import KeyRepository

#: Algorithms Hawiya signs with, and how their keys are made (RSA: 3072-bit, DESIGN.md).
SUPPORTED_ALGS = ("ES256", "RS256")
PUBLISHED_STATES = ("next", "current", "retired")


@dataclass(frozen=True)
class PublicKeyInfo:
    """What may be shown about a key: never its private part."""

    kid: str
    alg: str
    state: str
    created_at: datetime


class KeyStore:
    """Create, publish and unseal signing keys."""

    def __init__(self, repository: KeyRepository, sealer: Sealer, clock: Clock, audit: AuditLog) -> None:
        self._repository = repository
        self._sealer = sealer
        self._clock = clock
        self._audit = audit
        self._unsealed: dict[str, Key] = {}

    def ensure_current_keys(self) -> list[str]:
        """Create a current key for each supported algorithm that has none (idempotent)."""
        have = {key.alg for key in self._repository.in_states("current")}
        created = []
        for alg in SUPPORTED_ALGS:
            if alg not in have:
                created.append(self._create(alg, state="current"))
        return created

    def _create(self, alg: str, *, state: str) -> str:
        key: Key = (
            ECKey.generate_key("P-256", private=True)
            if alg == "ES256"
            else RSAKey.generate_key(3072, private=True)
        )
        kid = f"{alg.lower()}-{datetime.fromtimestamp(self._clock.now(), UTC):%Y%m%d}-" + (
            secrets.token_hex(4)
        )
        public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
        sealed = self._sealer.seal(
            json.dumps(key.as_dict(private=True)).encode(), purpose=f"signing_key:{kid}"
        )
        now = datetime.fromtimestamp(self._clock.now(), UTC)
        self._repository.add(
            SigningKey(
                kid=kid,
                alg=alg,
                use="sig",
                state=state,
                public_jwk=public,
                private_sealed=sealed,
                created_at=now,
                activated_at=now if state == "current" else None,
            )
        )
        self._audit.record(AuditEvent.SIGNING_KEY_CREATED, detail={"kid": kid, "alg": alg})
        return kid

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set: every key that may have signed a live token, or soon will."""
        return {"keys": [dict(k.public_jwk) for k in self._repository.in_states(*PUBLISHED_STATES)]}

    def public_key_set(self) -> KeySet:
        """The published keys as a joserfc KeySet (for verifying our own tokens)."""
        return KeySet.import_key_set(self.jwks())  # type: ignore[arg-type]

    def describe(self) -> list[PublicKeyInfo]:
        """Every key, without key material."""
        return [
            PublicKeyInfo(k.kid, k.alg, k.state, k.created_at)
            for k in self._repository.in_states("next", "current", "retired", "revoked")
        ]

    def signing_key(self, alg: str) -> tuple[str, Key]:
        """The current key for ``alg``: its kid and the unsealed private key."""
        for row in self._repository.in_states("current"):
            if row.alg == alg:
                key = self._unsealed.get(row.kid)
                if key is None:
                    raw = self._sealer.unseal(row.private_sealed, purpose=f"signing_key:{row.kid}")
                    key = _import(raw)
                    self._unsealed[row.kid] = key
                return row.kid, key
        raise KeyUnavailable(f"no current {alg} signing key: run `hawiya init`")

    def instance_secret(self, name: str, *, size: int = 32) -> bytes:
        """A deployment-wide random secret, created on first use and shared through the database."""
        purpose = f"instance_secret:{name}"
        row = self._repository.secret(name)
        if row is None:
            sealed = self._sealer.seal(secrets.token_bytes(size), purpose=purpose)
            now = datetime.fromtimestamp(self._clock.now(), UTC)
            if self._repository.add_secret(InstanceSecret(name=name, sealed_value=sealed, created_at=now)):
                self._audit.record(AuditEvent.INSTANCE_SECRET_CREATED, detail={"name": name})
            row = self._repository.secret(name)
            assert row is not None  # noqa: S101 - just inserted, by us or a concurrent process
        return self._sealer.unseal(row.sealed_value, purpose=purpose)


def _import(raw: bytes) -> Key:
    return jwk.import_key(json.loads(raw))
