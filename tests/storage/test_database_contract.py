"""One contract for the durable database, run against SQLite (the embedded default) and PostgreSQL.

Migrations, repositories, sealing at rest and the append-only audit table must behave the same on
both, so a deployment can move from one to the other without surprises.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from idp.audit.events import AuditEvent
from idp.clock import FrozenClock
from idp.errors import Conflict, KeyUnavailable
from idp.registry import Registry
from idp.storage.db import MIGRATIONS, Database
from idp.storage.models import Account, AuditRecord, Base, Client, SigningKey
from idp.storage.repositories.accounts import AccountRepository
from idp.storage.repositories.audit import AuditRepository
from idp.storage.repositories.clients import ClientRepository
from idp.storage.repositories.consents import ConsentRepository
from idp.storage.repositories.keys import KeyRepository
from tests.conftest import BOTH_BACKENDS, Backend, make_registry, make_settings

pytestmark = BOTH_BACKENDS

#: A fixed instant, so stored and read-back timestamps can be compared exactly.
T0 = datetime(2026, 3, 1, 8, 30, 15, tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    """Read a stored timestamp as UTC, so tests about other things do not also fail on the
    timezone loss that ``test_timestamps_come_back_as_the_same_aware_instant`` pins down."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@pytest.fixture
def migrated(tmp_path: Path, backend: Backend, clock: FrozenClock) -> Iterator[Registry]:
    """A registry on a freshly migrated database, without signing keys (fast)."""
    registry = make_registry(make_settings(tmp_path, backend), clock)
    registry.db.upgrade()
    yield registry
    registry.close()


def _account(username: str, **values: Any) -> Account:
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "username": username,
        "account_type": "citizen",
        "status": "active",
        "password_hash": None,
        "proofing_level": "self_asserted",
        "email_verified": False,
        "phone_verified": False,
        "attributes": {},
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(values)
    return Account(**fields)


def _client(client_id: str, **values: Any) -> Client:
    fields: dict[str, Any] = {
        "client_id": client_id,
        "name": "Ministry of Health",
        "status": "active",
        "token_endpoint_auth_method": "client_secret_basic",
        "redirect_uris": ["https://moh.example/callback"],
        "post_logout_redirect_uris": [],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "scope": "openid profile",
        "resources": [],
        "id_token_signed_response_alg": "ES256",
        "subject_type": "pairwise",
        "created_at": T0,
    }
    fields.update(values)
    return Client(**fields)


# -- migrations ------------------------------------------------------------------------------------


def _head() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def test_migrations_run_to_head_and_are_idempotent(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        assert db.is_initialised() is False
        db.upgrade()
        assert db.is_initialised() is True
        db.upgrade()  # a second `hawiya init` changes nothing and does not fail
        with db.engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        assert versions == [_head()]
        tables = set(inspect(db.engine).get_table_names())
        assert {table.name for table in Base.metadata.sorted_tables} <= tables
    finally:
        db.dispose()


# SQLite cannot reflect expression indexes (lower(username)); that index is proven by behaviour in
# the case-insensitive username test instead.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_migrations_build_exactly_the_models_schema(migrated: Registry) -> None:
    """The tables the migrations create are the tables the code maps (no drift either way)."""
    with migrated.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_schema_has_room_for_later_issues(migrated: Registry) -> None:
    inspector = inspect(migrated.db.engine)

    def columns(table: str) -> set[str]:
        return {column["name"] for column in inspector.get_columns(table)}

    assert {
        "sector_identifier",
        "subject_type",
        "min_acr",
        "id_token_signed_response_alg",
        "post_logout_redirect_uris",
        "backchannel_logout_uri",
        "agency",
    } <= columns("clients")
    assert {"sid", "family_id", "token_hash", "consumed_at", "revoked_at"} <= columns("refresh_tokens")
    assert {"state", "created_at", "activated_at", "retired_at", "revoked_at"} <= columns("signing_keys")


# -- accounts and pairwise subjects ------------------------------------------------------------------


def test_account_round_trips(migrated: Registry) -> None:
    repo = AccountRepository(migrated.db)
    address = {"formatted": "قطعة ١، شارع ٢، مدينة الكويت", "country": "KW"}
    stored = repo.add(
        _account(
            "fatima",
            name_ar="فاطمة الصباح",
            birthdate=date(1990, 5, 17),
            address=address,
            attributes={"roles": ["auditor"]},
            email_verified=True,
        )
    )
    again = repo.by_id(stored.id)
    assert again is not None and again is not stored
    assert again.username == "fatima"
    assert again.name_ar == "فاطمة الصباح"
    assert again.birthdate == date(1990, 5, 17)
    assert again.address == address
    assert again.attributes == {"roles": ["auditor"]}
    assert again.email_verified is True
    assert repo.by_id(str(uuid.uuid4())) is None


def test_timestamps_come_back_as_the_same_aware_instant(migrated: Registry) -> None:
    """Expiry checks compare stored times with the clock: they must stay timezone-aware UTC."""
    repo = AccountRepository(migrated.db)
    stored = repo.add(_account("fatima", created_at=T0, updated_at=T0 + timedelta(microseconds=250)))
    again = repo.by_id(stored.id)
    assert again is not None
    assert again.created_at.utcoffset() == timedelta(0)
    assert again.created_at == T0
    assert again.updated_at == T0 + timedelta(microseconds=250)


def test_username_lookup_ignores_case(migrated: Registry) -> None:
    repo = AccountRepository(migrated.db)
    stored = repo.add(_account("Fatima.Sabah"))
    for spelling in ("Fatima.Sabah", "fatima.sabah", "FATIMA.SABAH"):
        found = repo.by_username(spelling)
        assert found is not None and found.id == stored.id
    assert repo.by_username("fatima") is None


def test_duplicate_username_is_a_conflict(migrated: Registry) -> None:
    repo = AccountRepository(migrated.db)
    repo.add(_account("fatima"))
    with pytest.raises(Conflict):
        repo.add(_account("fatima"))
    assert [a.username for a in repo.list()] == ["fatima"]


def test_username_differing_only_in_case_is_a_conflict(migrated: Registry) -> None:
    """Lookups ignore case, so uniqueness must too: else "Fatima" could sign in as "fatima"."""
    repo = AccountRepository(migrated.db)
    first = repo.add(_account("fatima"))
    with pytest.raises(Conflict):
        repo.add(_account("FATIMA"))
    found = repo.by_username("Fatima")
    assert found is not None and found.id == first.id


def test_duplicate_national_id_is_a_conflict(migrated: Registry) -> None:
    repo = AccountRepository(migrated.db)
    repo.add(_account("fatima", national_id="290051701234"))
    with pytest.raises(Conflict):
        repo.add(_account("other", national_id="290051701234"))


def test_a_failed_insert_leaves_the_repository_usable(migrated: Registry) -> None:
    repo = AccountRepository(migrated.db)
    repo.add(_account("fatima"))
    with pytest.raises(Conflict):
        repo.add(_account("fatima"))
    repo.add(_account("ahmad"))
    assert sorted(a.username for a in repo.list()) == ["ahmad", "fatima"]


def test_account_update(migrated: Registry) -> None:
    repo = AccountRepository(migrated.db)
    stored = repo.add(_account("fatima"))
    repo.update(stored.id, status="disabled", email="f@example.org")
    again = repo.by_id(stored.id)
    assert again is not None and (again.status, again.email) == ("disabled", "f@example.org")


def test_pairwise_subject_is_recorded_once_and_resolves_back(migrated: Registry) -> None:
    repo = AccountRepository(migrated.db)
    fatima = repo.add(_account("fatima"))
    assert repo.pairwise_subject("health.example", fatima.id, "sub-1") == "sub-1"
    # The first subject recorded for a (sector, person) pair stays that person's subject there.
    assert repo.pairwise_subject("health.example", fatima.id, "sub-other") == "sub-1"
    found = repo.by_subject("health.example", "sub-1")
    assert found is not None and found.id == fatima.id
    assert repo.by_subject("health.example", "sub-other") is None
    assert repo.by_subject("tax.example", "sub-1") is None


def test_pairwise_subjects_are_unique_per_sector(migrated: Registry) -> None:
    repo = AccountRepository(migrated.db)
    fatima, ahmad = repo.add(_account("fatima")), repo.add(_account("ahmad"))
    repo.pairwise_subject("health.example", fatima.id, "sub-1")
    # Another sector may use the same string for someone else: subjects are scoped by sector.
    assert repo.pairwise_subject("tax.example", ahmad.id, "sub-1") == "sub-1"
    taken_by_ahmad = repo.by_subject("tax.example", "sub-1")
    assert taken_by_ahmad is not None and taken_by_ahmad.id == ahmad.id
    # In the same sector a subject names one person only: it is never handed to a second one.
    with pytest.raises(Conflict):
        repo.pairwise_subject("health.example", ahmad.id, "sub-1")
    owner = repo.by_subject("health.example", "sub-1")
    assert owner is not None and owner.id == fatima.id


# -- clients and consents --------------------------------------------------------------------------


def test_client_round_trips(migrated: Registry) -> None:
    repo = ClientRepository(migrated.db)
    repo.add(
        _client(
            "moh",
            name_ar="وزارة الصحة",
            agency="Ministry of Health",
            resources=["https://api.moh.example"],
            jwks={"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}]},
            sector_identifier="moh.example",
            min_acr="urn:hawiya:loa:substantial",
            backchannel_logout_uri="https://moh.example/bc-logout",
            post_logout_redirect_uris=["https://moh.example/bye"],
        )
    )
    client = repo.get("moh")
    assert client is not None
    assert client.name_ar == "وزارة الصحة"
    assert client.redirect_uris == ["https://moh.example/callback"]
    assert client.resources == ["https://api.moh.example"]
    assert client.jwks == {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}]}
    assert (client.sector_identifier, client.min_acr) == ("moh.example", "urn:hawiya:loa:substantial")
    assert client.post_logout_redirect_uris == ["https://moh.example/bye"]
    assert repo.get("nobody") is None


def test_duplicate_client_is_a_conflict(migrated: Registry) -> None:
    repo = ClientRepository(migrated.db)
    repo.add(_client("moh"))
    with pytest.raises(Conflict):
        repo.add(_client("moh", name="Impostor"))
    client = repo.get("moh")
    assert client is not None and client.name == "Ministry of Health"


def test_client_update_and_list(migrated: Registry) -> None:
    repo = ClientRepository(migrated.db)
    repo.add(_client("moh"))
    repo.add(_client("moi", created_at=T0 + timedelta(seconds=1)))
    updated = repo.update("moh", status="disabled", redirect_uris=["https://moh.example/cb2"])
    assert updated is not None and updated.status == "disabled"
    again = repo.get("moh")
    assert again is not None and again.redirect_uris == ["https://moh.example/cb2"]
    assert repo.update("nobody", status="disabled") is None
    assert [c.client_id for c in repo.list()] == ["moh", "moi"]


def test_consent_merge_unions_scopes_and_claims(migrated: Registry) -> None:
    fatima = AccountRepository(migrated.db).add(_account("fatima"))
    clients = ClientRepository(migrated.db)
    clients.add(_client("moh"))
    clients.add(_client("moi"))
    repo = ConsentRepository(migrated.db)
    assert repo.granted(fatima.id, "moh") == (set(), set())
    repo.merge(fatima.id, "moh", {"openid", "profile"}, {"birthdate"}, T0)
    repo.merge(fatima.id, "moh", {"openid", "email"}, {"phone_number"}, T0 + timedelta(minutes=1))
    assert repo.granted(fatima.id, "moh") == (
        {"openid", "profile", "email"},
        {"birthdate", "phone_number"},
    )
    assert repo.granted(fatima.id, "moi") == (set(), set())


# -- keys and instance secrets: sealed at rest -----------------------------------------------------


def _other_master_key_registry(tmp_path: Path, backend: Backend, clock: FrozenClock) -> Registry:
    other = base64.b64encode(secrets.token_bytes(32)).decode()
    return make_registry(make_settings(tmp_path, backend, master_key=other), clock)


def test_signing_keys_are_stored_sealed(
    migrated: Registry, tmp_path: Path, backend: Backend, clock: FrozenClock
) -> None:
    created = migrated.keystore.ensure_keys()
    assert migrated.keystore.ensure_keys() == []  # idempotent
    rows = KeyRepository(migrated.db).in_states("current")
    assert sorted(row.alg for row in rows) == ["ES256", "EdDSA", "PS256", "RS256"]
    upcoming = KeyRepository(migrated.db).in_states("next")
    assert sorted(row.alg for row in upcoming) == ["ES256", "EdDSA", "PS256", "RS256"]
    assert sorted(row.kid for row in [*rows, *upcoming]) == sorted(created)
    for row in rows:
        assert row.state == "current"
        assert _utc(row.created_at) == datetime.fromtimestamp(clock.now(), UTC)
        assert row.activated_at is not None
        assert (row.retired_at, row.revoked_at) == (None, None)
        assert "d" not in row.public_jwk
        kid, private = migrated.keystore.signing_key(row.alg)
        assert kid == row.kid
        secret_d = str(private.as_dict(private=True)["d"])
        assert secret_d not in row.private_sealed
        assert "PRIVATE" not in row.private_sealed
        assert json.dumps(row.public_jwk) not in row.private_sealed
    stranger = _other_master_key_registry(tmp_path, backend, clock)
    try:
        with pytest.raises(KeyUnavailable):
            stranger.keystore.signing_key("ES256")
    finally:
        stranger.close()


def test_instance_secrets_are_stored_sealed(
    migrated: Registry, tmp_path: Path, backend: Backend, clock: FrozenClock
) -> None:
    value = migrated.keystore.instance_secret("pairwise_salt")
    assert len(value) == 32
    assert migrated.keystore.instance_secret("pairwise_salt") == value  # created once, then shared
    row = KeyRepository(migrated.db).secret("pairwise_salt")
    assert row is not None
    for encoding in (value.hex(), base64.b64encode(value).decode(), base64.urlsafe_b64encode(value).decode()):
        assert encoding.rstrip("=") not in row.sealed_value
    stranger = _other_master_key_registry(tmp_path, backend, clock)
    try:
        with pytest.raises(KeyUnavailable):
            stranger.keystore.instance_secret("pairwise_salt")
    finally:
        stranger.close()


def test_signing_key_rows_round_trip(migrated: Registry) -> None:
    repo = KeyRepository(migrated.db)
    for kid, state, offset in (("k-old", "retired", 0), ("k-cur", "current", 1), ("k-next", "next", 2)):
        repo.add(
            SigningKey(
                kid=kid,
                alg="ES256",
                use="sig",
                state=state,
                public_jwk={"kty": "EC", "kid": kid},
                private_sealed="v1.x.y",
                created_at=T0 + timedelta(days=offset),
            )
        )
    assert [k.kid for k in repo.in_states("next", "current", "retired")] == ["k-next", "k-cur", "k-old"]
    assert [k.kid for k in repo.in_states("revoked")] == []


# -- audit: a closed catalogue, recorded append-only in the database itself ------------------------


def _one_audit_row(registry: Registry) -> AuditRecord:
    registry.audit.record(AuditEvent.SIGNIN_SUCCEEDED, subject="acct-1", detail={"amr": ["pwd"]})
    rows = AuditRepository(registry.db).recent()
    assert len(rows) == 1
    return rows[0]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET event = 'signin.failed'",
        "UPDATE audit_events SET subject = 'someone-else' WHERE id = :id",
        "DELETE FROM audit_events WHERE id = :id",
        "DELETE FROM audit_events",
    ],
)
def test_audit_table_refuses_update_and_delete_in_the_database(migrated: Registry, statement: str) -> None:
    row = _one_audit_row(migrated)
    with pytest.raises(DBAPIError, match="append-only"), migrated.db.engine.begin() as conn:
        conn.execute(text(statement), {"id": row.id} if ":id" in statement else {})
    after = AuditRepository(migrated.db).recent()
    assert [(r.id, r.event, r.subject) for r in after] == [(row.id, "signin.succeeded", "acct-1")]


def test_audit_table_refuses_truncate_on_postgresql(migrated: Registry, backend: Backend) -> None:
    if backend.name != "postgres":
        pytest.skip("SQLite has no TRUNCATE; its DELETE without WHERE is covered above")
    _one_audit_row(migrated)
    with pytest.raises(DBAPIError, match="append-only"), migrated.db.engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_events"))
    assert len(AuditRepository(migrated.db).recent()) == 1


def test_audit_rows_cannot_be_changed_through_the_orm(migrated: Registry) -> None:
    _one_audit_row(migrated)
    with pytest.raises(DBAPIError, match="append-only"), migrated.db.transaction() as session:
        record = session.query(AuditRecord).one()
        record.event = "signin.failed"
    with pytest.raises(DBAPIError, match="append-only"), migrated.db.transaction() as session:
        session.delete(session.query(AuditRecord).one())
    assert [r.event for r in AuditRepository(migrated.db).recent()] == ["signin.succeeded"]


def test_audit_records_only_catalogue_events(migrated: Registry) -> None:
    with pytest.raises(TypeError):
        migrated.audit.record("signin.succeeded")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        migrated.audit.record("made.up")  # type: ignore[arg-type]
    assert AuditRepository(migrated.db).recent() == []


def test_audit_records_the_injected_clock_and_fields(migrated: Registry, clock: FrozenClock) -> None:
    migrated.audit.record(
        AuditEvent.CLIENT_CREATED, actor="admin", subject="acct-1", client_id="moh", ip="192.0.2.1"
    )
    (row,) = AuditRepository(migrated.db).recent()
    assert _utc(row.at) == datetime.fromtimestamp(clock.now(), UTC)
    assert (row.event, row.actor, row.subject, row.client_id, row.ip) == (
        "client.created",
        "admin",
        "acct-1",
        "moh",
        "192.0.2.1",
    )
    assert row.detail == {}


def test_audit_drops_forbidden_detail_keys(migrated: Registry) -> None:
    leaked = "LEAKED-" + secrets.token_hex(8)
    forbidden = (
        "password",
        "secret",
        "client_secret",
        "code",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "otp",
        "code_verifier",
    )
    detail: dict[str, Any] = {key: leaked for key in forbidden}
    # A differently-cased key is the same secret: it must not slip through either.
    detail.update({"Password": leaked, "CODE": leaked, "Access_Token": leaked})
    detail.update({"kid": "es256-1", "amr": ["pwd"]})
    migrated.audit.record(AuditEvent.SIGNIN_FAILED, subject="acct-1", detail=detail)
    (row,) = AuditRepository(migrated.db).recent()
    assert row.detail == {"kid": "es256-1", "amr": ["pwd"]}
    with migrated.db.engine.connect() as conn:
        raw = conn.execute(text("SELECT detail FROM audit_events")).scalar_one()
    assert leaked not in str(raw)


def test_audit_recent_filters_by_event_newest_first(migrated: Registry, clock: FrozenClock) -> None:
    migrated.audit.record(AuditEvent.SIGNIN_FAILED, subject="a")
    clock.advance(1)
    migrated.audit.record(AuditEvent.SIGNIN_SUCCEEDED, subject="a")
    clock.advance(1)
    migrated.audit.record(AuditEvent.SIGNIN_FAILED, subject="b")
    repo = AuditRepository(migrated.db)
    assert [r.subject for r in repo.recent(event="signin.failed")] == ["b", "a"]
    assert [r.event for r in repo.recent(limit=2)] == ["signin.failed", "signin.succeeded"]
