"""Clients registered before migration 0007: what they keep, what they lose, and how staff end it.

Migration 0007 made the issuer the only audience of client assertions and PKCE a requirement of
confidential clients. The clients that existed then keep their old behaviour through explicit flags
(``legacy_assertion_audience`` for private_key_jwt clients, ``pkce_exempt`` for confidential ones
that sign people in), each use audited, each flag cleared by ``hawiya clients update``; clients
registered since get neither (docs/clients.md). Each test starts from a database at 0006
holding clients written as that schema stores them, then upgrades it as ``hawiya init`` would.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from flask import Flask

from idp.app import create_app
from idp.clock import FrozenClock
from idp.registry import Registry
from idp.storage.db import MIGRATIONS, Database
from idp.storage.models.types import UTCDateTime
from tests.conftest import BOTH_BACKENDS, PASSWORD, Backend, World, initialised, make_settings, populate
from tests.oidc.test_private_key_jwt import (
    ISSUER,
    TOKEN_ENDPOINT,
    SigningKey,
    assert_refused,
    assert_tokens,
    assertion,
    client_credentials,
    jwks_of,
    new_key,
)
from tests.support.audit import audit_events
from tests.support.cli import Instance
from tests.support.flask_person import FlaskPerson, authorize_url, query_of

pytestmark = BOTH_BACKENDS

OLD_REDIRECT = "http://127.0.0.1:9401/callback"
REMOVAL = "2027-06-30"

_CLIENTS = sa.table(
    "clients",
    sa.column("client_id", sa.String()),
    sa.column("name", sa.String()),
    sa.column("status", sa.String()),
    sa.column("secret_hash", sa.String()),
    sa.column("token_endpoint_auth_method", sa.String()),
    sa.column("redirect_uris", sa.JSON()),
    sa.column("post_logout_redirect_uris", sa.JSON()),
    sa.column("grant_types", sa.JSON()),
    sa.column("response_types", sa.JSON()),
    sa.column("scope", sa.Text()),
    sa.column("resources", sa.JSON()),
    sa.column("jwks", sa.JSON()),
    sa.column("id_token_signed_response_alg", sa.String()),
    sa.column("subject_type", sa.String()),
    sa.column("created_at", UTCDateTime()),
)


@dataclass
class Before:
    """A deployment upgraded through 0007 with the clients it held at 0006."""

    registry: Registry
    app: Flask
    world: World
    key: SigningKey
    secret: str
    settings_env: dict[str, str]


def _old_client(client_id: str, auth_method: str, grant_types: list[str], **values: Any) -> dict[str, Any]:
    code = "authorization_code" in grant_types
    return {
        "client_id": client_id,
        "name": client_id,
        "status": "active",
        "secret_hash": None,
        "token_endpoint_auth_method": auth_method,
        "redirect_uris": [OLD_REDIRECT] if code else [],
        "post_logout_redirect_uris": [],
        "grant_types": grant_types,
        "response_types": ["code"] if code else [],
        "scope": "openid email" if code else "records:read",
        "resources": [],
        "jwks": None,
        "id_token_signed_response_alg": "ES256",
        "subject_type": "pairwise",
        "created_at": datetime(2026, 11, 1, tzinfo=UTC),
        **values,
    }


@pytest.fixture
def before(tmp_path: Path, backend: Backend, empty_database_url: str, clock: FrozenClock) -> Iterator[Before]:
    key = new_key()
    secret = secrets.token_urlsafe(32)
    basic = {"secret_hash": hashlib.sha256(secret.encode()).hexdigest()}
    database = Database(empty_database_url)
    try:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0006")
            connection.execute(
                sa.insert(_CLIENTS),
                [
                    _old_client("old-jwt", "private_key_jwt", ["client_credentials"], jwks=jwks_of(key)),
                    _old_client("old-secret", "client_secret_basic", ["authorization_code"], **basic),
                    _old_client("old-public", "none", ["authorization_code"]),
                    _old_client("old-batch", "client_secret_basic", ["client_credentials"], **basic),
                    # What the registration rule now refuses: the IdP itself as a client's resource.
                    _old_client(
                        "old-introspector", "client_secret_basic", ["client_credentials"],
                        resources=[ISSUER], **basic,
                    ),
                ],
            )  # fmt: skip
    finally:
        database.dispose()
    settings = make_settings(tmp_path, backend, database_url=empty_database_url)
    registry = initialised(settings, clock)  # upgrades to head, as `hawiya init` on the new release
    app = create_app(registry=registry)
    app.testing = True
    env = {
        "HAWIYA_INSTANCE_PATH": str(settings.instance_path),
        "HAWIYA_MASTER_KEY": str(settings.master_key),
        "HAWIYA_MASTER_KEY_FILE": str(settings.master_key_file),
        "HAWIYA_DATABASE_URL": settings.database_url,
        "HAWIYA_EPHEMERAL_URL": settings.ephemeral_url,
        "HAWIYA_REDIS_PREFIX": settings.redis_prefix,
        "HAWIYA_MAIL_WORKER": "false",
    }
    yield Before(registry, app, populate(registry), key, secret, env)
    registry.close()


def test_the_migration_flags_only_the_clients_that_existed(before: Before) -> None:
    flags = {
        c.client_id: (c.legacy_assertion_audience, c.pkce_exempt) for c in before.registry.clients.list()
    }
    assert flags == {
        "old-jwt": (True, False),
        "old-secret": (False, True),
        "old-public": (False, False),  # public clients always needed PKCE
        "old-batch": (False, False),  # no sign-ins: nothing to exempt
        "old-introspector": (False, False),
        # Registered after the upgrade (tests.conftest.populate): neither.
        before.world.confidential_id: (False, False),
        before.world.public_id: (False, False),
    }


def test_a_legacy_client_may_still_name_the_token_endpoint_and_each_use_is_audited(before: Before) -> None:
    app, registry, clock = before.app, before.registry, before.registry.clock
    assert isinstance(clock, FrozenClock)
    for round_ in (1, 2):
        assert_tokens(client_credentials(app, assertion("old-jwt", before.key, clock, aud=TOKEN_ENDPOINT)))
        used = audit_events(registry, "client.legacy_audience_used")
        assert [event["client_id"] for event in used] == ["old-jwt"] * round_
        assert used[0]["detail"] == {"aud": "token_endpoint", "accepted_until": REMOVAL}
    # The issuer works too, and is nothing to report.
    assert_tokens(client_credentials(app, assertion("old-jwt", before.key, clock, aud=ISSUER)))
    assert len(audit_events(registry, "client.legacy_audience_used")) == 2
    # Arrays are refused even from a legacy client.
    listed = assertion("old-jwt", before.key, clock, aud=[TOKEN_ENDPOINT])
    assert_refused(client_credentials(app, listed), registry, "old-jwt", listed, "single string")


def test_staff_withdraw_the_legacy_audience_with_the_cli(before: Before) -> None:
    hawiya = Instance(before.settings_env, Path(before.settings_env["HAWIYA_MASTER_KEY_FILE"]))
    shown = hawiya.json("clients", "show", "old-jwt")
    assert shown["legacy_assertion_audience"] is True
    assert shown["legacy_assertion_audience_until"] == REMOVAL
    assert f"legacy_assertion_audience_until: {REMOVAL}" in hawiya.ok("clients", "show", "old-jwt")

    updated = hawiya.json("clients", "update", "old-jwt", "--no-legacy-assertion-audience")
    assert updated["legacy_assertion_audience"] is False
    assert "legacy_assertion_audience_until" not in hawiya.json("clients", "show", "old-jwt")
    changes = audit_events(before.registry, "client.updated")
    assert changes[0]["client_id"] == "old-jwt"
    assert changes[0]["detail"] == {"legacy_assertion_audience": False}

    registry = hawiya.registry()  # a process started after the change
    try:
        app = create_app(registry=registry)
        clock = before.registry.clock
        assert isinstance(clock, FrozenClock)
        old = assertion("old-jwt", before.key, clock, aud=TOKEN_ENDPOINT)
        assert_refused(client_credentials(app, old), registry, "old-jwt", old, "must be the issuer")
        assert_tokens(client_credentials(app, assertion("old-jwt", before.key, clock, aud=ISSUER)))
    finally:
        registry.close()


#: old-secret's authorization request, without PKCE.
WITHOUT_PKCE = authorize_url(
    response_type="code", client_id="old-secret", redirect_uri=OLD_REDIRECT, scope="openid", state="s-1"
)


def _access_token_of_old_secret(before: Before) -> str:
    """The citizen signs in to old-secret without PKCE; the access token it redeems."""
    back = FlaskPerson(before.app, "citizen", PASSWORD).go(WITHOUT_PKCE)
    response = before.app.test_client().post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(back)["code"][0],
            "redirect_uri": OLD_REDIRECT,
        },
        auth=("old-secret", before.secret),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json is not None
    access_token: str = response.json["access_token"]
    return access_token


def test_an_existing_confidential_client_keeps_signing_people_in_without_pkce_audited(before: Before) -> None:
    _access_token_of_old_secret(before)
    used = audit_events(before.registry, "code.issued_without_pkce")
    assert [(event["client_id"], event["subject"]) for event in used] == [
        ("old-secret", before.world.citizen_id)
    ]


def test_staff_withdraw_the_pkce_exemption_with_the_cli(before: Before) -> None:
    hawiya = Instance(before.settings_env, Path(before.settings_env["HAWIYA_MASTER_KEY_FILE"]))
    assert hawiya.json("clients", "show", "old-secret")["pkce_exempt"] is True
    assert "pkce_exempt: False" in hawiya.ok("clients", "update", "old-secret", "--no-pkce-exempt")
    registry = hawiya.registry()
    try:
        app = create_app(registry=registry)
        back = FlaskPerson(app).get(WITHOUT_PKCE)
        assert back.status_code == 302 and back.location.startswith(OLD_REDIRECT + "?")
        assert query_of(back.location)["error"] == ["invalid_request"]
    finally:
        registry.close()


def test_a_client_holding_the_idp_as_its_resource_learns_nothing_of_other_tokens(before: Before) -> None:
    access_token = _access_token_of_old_secret(before)  # aud: the issuer (it is for userinfo)
    answer = before.app.test_client().post(
        "/introspect", data={"token": access_token}, auth=("old-introspector", before.secret)
    )
    assert answer.status_code == 200
    assert answer.json == {"active": False}
    # Its own business still works: old-secret may introspect its own token.
    own = before.app.test_client().post(
        "/introspect", data={"token": access_token}, auth=("old-secret", before.secret)
    )
    assert own.json is not None and own.json["active"] is True
