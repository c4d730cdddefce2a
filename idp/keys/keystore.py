"""The signing-key store: keys live in the database (shared by every process), private parts
sealed under the master key.

Lifecycle per algorithm: ``next`` (published in the JWKS, not yet signing) -> ``current``
(signing) -> ``retired`` (published for verification only, until every token it signed has
expired) -> removed by ``prune``; or ``revoked`` (withdrawn at once, never accepted again).
A ``next`` key is published at least one JWKS cache lifetime (``jwks_max_age``) before rotation
may make it sign, so a relying party that honours Cache-Control already has it.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from joserfc import jwk
from joserfc.jwk import ECKey, Key, KeySet, OKPKey, RSAKey

from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.clock import Clock
from idp.errors import HawiyaError, InvalidInput, KeyUnavailable, NotFound
from idp.inbound import is_identifier
from idp.keys.sealing import Sealer
from idp.storage.generation import Cached, Generation
from idp.storage.models import InstanceSecret, SigningKey
from idp.storage.repositories.keys import KeyRepository, Promotion

#: Algorithms Hawiya signs with (RSA keys are 3072-bit).
SUPPORTED_ALGS = ("ES256", "RS256", "PS256", "EdDSA")
#: Keys made at ``hawiya init``: every algorithm discovery advertises has a published key from the
#: start (ES256 signs access tokens; RS256 is the OIDC default for ID tokens).
INITIAL_ALGS = SUPPORTED_ALGS
PUBLISHED_STATES = ("next", "current", "retired")
#: How often a serving process renews its record of the JWKS max-age it publishes (seconds).
PUBLICATION_RENEWAL = 60
T = TypeVar("T")
ALL_STATES = ("next", "current", "retired", "revoked")
log = logging.getLogger("idp.keys")


class Resealable(Protocol):
    """Anything else that keeps values sealed under the master key (TOTP secrets, for one)."""

    def reseal(self) -> int:
        """Re-seal its values under the primary master key; how many changed."""
        ...


class RotationRefused(HawiyaError):
    """A rotation would make a key sign before relying parties can have fetched it. ``refusals``
    holds one message per algorithm refused (when several were asked for, nothing rotated)."""

    code = "rotation_refused"
    status = 409

    def __init__(self, message: str, *, refusals: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.refusals = list(refusals) or [message]


@dataclass(frozen=True)
class PublicKeyInfo:
    """What may be shown about a key: never its private part."""

    kid: str
    alg: str
    state: str
    created_at: datetime
    activated_at: datetime | None = None
    retired_at: datetime | None = None
    revoked_at: datetime | None = None
    revoke_reason: str | None = None


@dataclass(frozen=True)
class Rotation:
    """What one rotation changed."""

    alg: str
    retired: str | None
    current: str
    next: str


#: Makes a new private signing key for an algorithm (tests hand the KeyStore a pool instead).
KeyFactory = Callable[[str], Key]


def generate_key(alg: str) -> Key:
    """A new private key for ``alg``: P-256, Ed25519, or RSA-3072 for RS256 and PS256."""
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", private=True)
    return RSAKey.generate_key(3072, private=True)


class KeyStore:
    """Create, rotate, revoke, publish and unseal signing keys."""

    def __init__(
        self,
        repository: KeyRepository,
        sealer: Sealer,
        clock: Clock,
        audit: AuditLog,
        *,
        jwks_max_age: int = 300,
        max_token_ttl: int = 600,
        generation: Generation | None = None,
        key_factory: KeyFactory = generate_key,
    ) -> None:
        self._repository = repository
        self._key_factory = key_factory
        self._sealer = sealer
        self._clock = clock
        self._audit = audit
        self.jwks_max_age = jwks_max_age
        self._max_token_ttl = max_token_ttl
        self._unsealed: dict[str, Key] = {}
        self._published_at = float("-inf")
        #: What is read on each request (the rows of the live keys, the published key set), until
        #: a change below moves the generation. None: read the database every time.
        self._cache: Cached[Any] | None = Cached(generation) if generation else None

    def _changed(self) -> None:
        """Keys were created, promoted, revoked, pruned or resealed: every process forgets them."""
        if self._cache is not None:
            self._cache.changed()

    def _cached(self, key: str, load: Callable[[], T]) -> T:
        return self._cache.get(key, load) if self._cache is not None else load()

    def _live_rows(self) -> Sequence[SigningKey]:
        """The published keys (current, next, retired), newest first, from the cache."""
        return self._cached("published", lambda: tuple(self._repository.in_states(*PUBLISHED_STATES)))

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    # -- creation -------------------------------------------------------------------------------

    def ensure_keys(self, algs: tuple[str, ...] = INITIAL_ALGS) -> list[str]:
        """A current and a next key for each of ``algs`` (idempotent); the new kids."""
        unknown = [alg for alg in algs if alg not in SUPPORTED_ALGS]
        if unknown:
            raise InvalidInput(f"unsupported signing algorithm {unknown[0]!r}")
        rows = self._repository.in_states("current", "next")
        created = []
        for alg in algs:
            states = {row.state for row in rows if row.alg == alg}
            if "current" not in states:
                created.append(self._create(alg, state="current"))
            if "next" not in states:
                created.append(self._create(alg, state="next"))
        return created

    def _create(self, alg: str, *, state: str) -> str:
        row, key = self._new_row(alg, state=state)
        self._repository.add(row)
        self._unsealed[row.kid] = key  # just made here: no need to unseal and parse it again
        self._changed()
        self._record_created(row)
        return row.kid

    def _new_row(self, alg: str, *, state: str) -> tuple[SigningKey, Key]:
        """A freshly generated key, sealed, as a row not yet stored, and the key itself."""
        key = self._key_factory(alg)
        now = self._now()
        kid = f"{alg.lower()}-{now:%Y%m%d}-{secrets.token_hex(4)}"
        public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
        sealed = self._sealer.seal(
            json.dumps(key.as_dict(private=True)).encode(), purpose=f"signing_key:{kid}"
        )
        row = SigningKey(
            kid=kid,
            alg=alg,
            use="sig",
            state=state,
            public_jwk=public,
            private_sealed=sealed,
            created_at=now,
            activated_at=now if state == "current" else None,
        )
        return row, key

    def _record_created(self, row: SigningKey) -> None:
        self._audit.record(
            AuditEvent.SIGNING_KEY_CREATED, detail={"kid": row.kid, "alg": row.alg, "state": row.state}
        )

    # -- lifecycle ------------------------------------------------------------------------------

    def rotate(self, alg: str, *, force: bool = False, actor: str | None = None) -> Rotation:
        """Promote ``alg``'s next key to current, retire the old current, create a new next.

        Refused (RotationRefused) while the next key has been published for less than one JWKS
        cache lifetime (``cache_lifetime``), unless ``force`` (an emergency, when relying parties
        may briefly refetch).
        """
        return self.rotate_all((alg,), force=force, actor=actor)[0]

    def rotate_all(
        self, algs: Sequence[str], *, force: bool = False, actor: str | None = None
    ) -> list[Rotation]:
        """Rotate every algorithm of ``algs``, or none: each is checked first, then all are
        promoted in one transaction. RotationRefused names every algorithm that may not rotate yet
        (one message each in ``refusals``); nothing was rotated then."""
        unknown = [alg for alg in algs if alg not in SUPPORTED_ALGS]
        if unknown:
            raise NotFound(f"unknown algorithm {unknown[0]!r}; supported: {', '.join(SUPPORTED_ALGS)}")
        lifetime = self.cache_lifetime()
        rows = self._repository.in_states("current", "next")
        plans: list[tuple[str, SigningKey | None, SigningKey]] = []
        refusals: list[str] = []
        for alg in algs:
            current = next((row for row in rows if row.alg == alg and row.state == "current"), None)
            upcoming = next((row for row in rows if row.alg == alg and row.state == "next"), None)
            refusal = self._refusal(alg, upcoming, lifetime=lifetime, force=force)
            if refusal is not None:
                refusals.append(refusal)
            elif upcoming is not None:
                plans.append((alg, current, upcoming))
        if refusals:
            raise RotationRefused("; ".join(refusals), refusals=refusals)
        # Each successor is stored in its promotion's transaction: a concurrent rotation that reads
        # just after it then finds a (young) next key, never none (which would make it create a
        # second next key for this algorithm).
        successors = [self._new_row(alg, state="next") for alg, _current, _upcoming in plans]
        promoted = self._repository.promote_all(
            [
                Promotion(alg, current.kid if current else None, upcoming.kid, successor)
                for (alg, current, upcoming), (successor, _key) in zip(plans, successors, strict=True)
            ],
            now=self._now(),
        )
        if not promoted:
            raise RotationRefused(
                f"another process rotated a key of {', '.join(algs)} meanwhile; nothing was rotated: retry"
            )
        self._changed()
        done = []
        for (alg, current, upcoming), (successor, successor_key) in zip(plans, successors, strict=True):
            self._unsealed[successor.kid] = successor_key
            self._record_created(successor)
            self._audit.record(
                AuditEvent.SIGNING_KEY_ROTATED,
                actor=actor,
                detail={"alg": alg, "retired": current.kid if current else None, "current": upcoming.kid},
            )
            done.append(Rotation(alg, current.kid if current else None, upcoming.kid, successor.kid))
        return done

    def _refusal(self, alg: str, upcoming: SigningKey | None, *, lifetime: int, force: bool) -> str | None:
        """Why ``alg`` may not rotate now, or None."""
        if upcoming is None:
            self._create(alg, state="next")  # publish one now, so the next attempt can succeed
            return f"no {alg} key was published yet; one is now: rotate again in {lifetime} s"
        published_for = (self._now() - upcoming.created_at).total_seconds()
        if published_for < lifetime and not force:
            wait = int(lifetime - published_for) + 1
            return (
                f"the next {alg} key {upcoming.kid} was published {int(published_for)} s ago; relying "
                f"parties may cache the JWKS for {lifetime} s: rotate again in {wait} s"
            )
        return None

    # -- the published cache lifetime -----------------------------------------------------------

    def record_publication(self) -> None:
        """Note, in the database, that this process serves the JWKS with its max-age: at most once
        per ``PUBLICATION_RENEWAL`` seconds. Rotations run elsewhere (a CLI configured with a
        shorter max-age, another server) then wait as long as this process lets relying parties
        cache. Never raises: a database that is briefly away is tried again one period later (the
        record's leeway in ``cache_lifetime`` covers one missed renewal)."""
        now = self._clock.now()
        if now - self._published_at < PUBLICATION_RENEWAL:
            return
        self._published_at = now
        try:
            self._repository.record_publication(self.jwks_max_age, now=self._now())
        except Exception:
            log.warning("could not record the JWKS max-age this process publishes", exc_info=True)

    def cache_lifetime(self) -> int:
        """How long a relying party may hold a JWKS fetched now or lately: this process's max-age,
        or a longer one a serving process recorded. A record counts until relying parties can
        no longer hold what it allowed: its max-age after the renewal that would have followed
        it (plus one renewal period of leeway for clocks), so a server long gone with a larger
        value stops holding rotations back."""
        now = self._now()
        longest = self.jwks_max_age
        for max_age, recorded_at in self._repository.publications():
            if not _outlived(max_age, recorded_at, now):
                longest = max(longest, max_age)
        return longest

    def rotate_due(self, *, older_than_days: float) -> list[Rotation]:
        """Rotate every algorithm whose current key has signed for ``older_than_days`` (when its
        next key has been published long enough); what was rotated."""
        done = []
        cutoff = self._now() - timedelta(days=older_than_days)
        for row in self._repository.in_states("current"):
            if (row.activated_at or row.created_at) <= cutoff:
                try:
                    done.append(self.rotate(row.alg))
                except RotationRefused:
                    continue  # the next key is too young, or another process won: next time
        return done

    def revoke(self, kid: str, *, reason: str, actor: str | None = None) -> PublicKeyInfo:
        """Withdraw a key at once. A revoked current key is replaced by its next key immediately."""
        reason = reason.strip()
        if not reason:
            raise InvalidInput("a revocation needs a reason")
        before = self._repository.revoke(kid, reason=reason, now=self._now()) if is_identifier(kid) else None
        if before is None:
            raise NotFound(f"no key {kid!r} that can be revoked")
        self._changed()
        self._unsealed.pop(kid, None)
        self._audit.record(
            AuditEvent.SIGNING_KEY_REVOKED,
            actor=actor,
            detail={"kid": kid, "alg": before.alg, "was": before.state, "reason": reason},
        )
        if before.state in ("current", "next"):
            # Never leave an algorithm without a signing key or a published successor: the next key
            # took over in the revocation's own transaction; a new next key is published now (and a
            # current one, had there been no next key to take over).
            promoted = self.current_kid(before.alg) if before.state == "current" else None
            if promoted is not None:
                self._audit.record(
                    AuditEvent.SIGNING_KEY_ROTATED,
                    detail={"alg": before.alg, "retired": None, "current": promoted},
                )
            self.ensure_keys((before.alg,))
        return next(info for info in self.describe() if info.kid == kid)

    def prune(self, *, actor: str | None = None) -> list[str]:
        """Remove retired keys whose every token has expired; their kids."""
        cutoff = self._now() - timedelta(seconds=self._max_token_ttl + 60)
        pruned = self._repository.delete_retired_before(cutoff)
        now = self._now()
        for max_age, recorded_at in self._repository.publications():
            if _outlived(max_age, recorded_at, now):
                self._repository.forget_publication(max_age, recorded_at=recorded_at)
        if pruned:
            self._changed()
        for kid in pruned:
            self._unsealed.pop(kid, None)
            self._audit.record(AuditEvent.SIGNING_KEY_PRUNED, actor=actor, detail={"kid": kid})
        return pruned

    # -- publication and use --------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set: every key that may have signed a live token, or soon will."""
        return {"keys": [dict(k.public_jwk) for k in self._live_rows()]}

    def public_key_set(self) -> KeySet:
        """The published keys as a joserfc KeySet (for verifying our own tokens)."""
        return self._cached("key_set", lambda: KeySet.import_key_set(self.jwks()))  # type: ignore[arg-type]

    def describe(self) -> list[PublicKeyInfo]:
        """Every key, without key material."""
        return [
            PublicKeyInfo(
                k.kid,
                k.alg,
                k.state,
                k.created_at,
                k.activated_at,
                k.retired_at,
                k.revoked_at,
                k.revoke_reason,
            )
            for k in self._repository.in_states(*ALL_STATES)
        ]

    def signing_key(self, alg: str) -> tuple[str, Key]:
        """The current key for ``alg``: its kid and the unsealed private key."""
        for row in self._live_rows():
            if row.alg == alg and row.state == "current":
                key = self._unsealed.get(row.kid)
                if key is None:
                    key = _import(self._sealer.unseal(row.private_sealed, purpose=f"signing_key:{row.kid}"))
                    self._unsealed[row.kid] = key
                return row.kid, key
        raise KeyUnavailable(f"no current {alg} signing key: run `hawiya init`")

    def signing_algs(self) -> list[str]:
        """The algorithms that have a current (signing) key."""
        return sorted({row.alg for row in self._live_rows() if row.state == "current"})

    def current_kid(self, alg: str) -> str | None:
        """The kid that signs ``alg`` now."""
        return next((row.kid for row in self._live_rows() if row.alg == alg and row.state == "current"), None)

    def check_unsealable(self) -> None:
        """Fail fast (KeyUnavailable naming the value) when the master key cannot open a live key
        or an instance secret (retired and revoked keys never sign, so they are not checked)."""
        for row in self._repository.in_states("current", "next"):
            try:
                self._sealer.unseal(row.private_sealed, purpose=f"signing_key:{row.kid}")
            except KeyUnavailable as exc:
                raise KeyUnavailable(f"signing key {row.kid}: {exc.message}; check the master key") from None
        for table, name, sealed in self._repository.all_sealed():
            if table != "instance_secrets":
                continue
            try:
                self._sealer.unseal(sealed, purpose=f"instance_secret:{name}")
            except KeyUnavailable as exc:
                raise KeyUnavailable(f"instance secret {name}: {exc.message}; check the master key") from None

    # -- master key -----------------------------------------------------------------------------

    def reseal(self, *, also: Iterable[Resealable] = (), actor: str | None = None) -> int:
        """Re-seal every sealed value under the primary master key (online; idempotent): the keys
        and instance secrets here, and those of the other owners of sealed values in ``also``."""
        count = 0
        for table, ident, sealed in self._repository.all_sealed():
            purpose = f"signing_key:{ident}" if table == "signing_keys" else f"instance_secret:{ident}"
            fresh = self._sealer.reseal(sealed, purpose=purpose)
            if fresh is not None and self._repository.replace_sealed(table, ident, sealed, fresh):
                count += 1
        if count:
            self._changed()
        count += sum(owner.reseal() for owner in also)
        self._audit.record(
            AuditEvent.MASTER_KEY_ROTATED,
            actor=actor,
            detail={"resealed": count, "master_key_id": self._sealer.key_id},
        )
        return count

    def instance_secret(self, name: str, *, size: int = 32) -> bytes:
        """A deployment-wide random secret, created on first use and shared through the database."""
        purpose = f"instance_secret:{name}"
        row = self._repository.secret(name)
        if row is None:
            sealed = self._sealer.seal(secrets.token_bytes(size), purpose=purpose)
            if self._repository.add_secret(
                InstanceSecret(name=name, sealed_value=sealed, created_at=self._now())
            ):
                self._audit.record(AuditEvent.INSTANCE_SECRET_CREATED, detail={"name": name})
            row = self._repository.secret(name)
            assert row is not None  # noqa: S101 - just inserted, by us or a concurrent process
        return self._sealer.unseal(row.sealed_value, purpose=purpose)


def _outlived(max_age: int, recorded_at: datetime, now: datetime) -> bool:
    """True once no relying party can still hold a JWKS served under a record of ``max_age``."""
    return now - recorded_at > timedelta(seconds=max_age + 2 * PUBLICATION_RENEWAL)


def _import(raw: bytes) -> Key:
    return jwk.import_key(json.loads(raw))
