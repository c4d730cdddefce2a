"""``high`` only for proven hardware: a WebAuthn credential reaches ``urn:hawiya:loa:high`` (and
``amr`` ``hwk``) only when a verified attestation chain proved a device-bound key with user
verification (NIST SP 800-63B-4 AAL3). What an authenticator says of itself (backup-eligible 0,
user verified) proves nothing: any program can set those bits, as ``SoftAuthenticator`` does here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

from alembic import command
from alembic.config import Config
from flask import Flask
from sqlalchemy import insert, text

from idp.authn.assurance import factor_level, lost_high
from idp.authn.factors import factor_of
from idp.clock import FrozenClock
from idp.registry import Registry
from idp.storage.db import MIGRATIONS, Database
from idp.storage.models import Account
from idp.storage.repositories.authenticators import AuthenticatorRepository
from tests.conftest import BOTH_BACKENDS
from tests.support.audit import audit_events
from tests.support.authenticator import SoftAuthenticator
from tests.support.mfa import MfaPerson, Rp, add_passkey_in_account, submit

SUBSTANTIAL = "urn:hawiya:loa:substantial"
HIGH = "urn:hawiya:loa:high"


def _key(registry: Registry, **kwargs: Any) -> SoftAuthenticator:
    settings = registry.settings
    return SoftAuthenticator(rp_id=settings.rp_id, origin=settings.webauthn_origin, **kwargs)


def _details(registry: Registry, event: str) -> list[dict[str, Any]]:
    return [cast(dict[str, Any], row["detail"]) for row in audit_events(registry, event)]


def _sign_out(person: MfaPerson, clock: FrozenClock) -> None:
    submit(person, person.get("/account"), "/signout")
    clock.advance(120)
    person.pages.clear()


def _passwordless(
    app: Flask, rp: Rp, clock: FrozenClock, key: SoftAuthenticator, state: str = "s-1"
) -> dict[str, Any]:
    """Someone at a fresh browser with only ``key`` signs in at the agency; the ID token's claims."""
    person = MfaPerson(app, "", "", clock=clock, key=key)
    answered = person.use_key(person.open_page(rp.url(state), "/signin"))
    assert answered.status_code == 302, answered.get_data(as_text=True)[:400]
    return rp.id_token(person.go(answered.location or ""), state)


# -- the attack ------------------------------------------------------------------------------------


@BOTH_BACKENDS
def test_a_key_made_in_software_that_claims_to_be_hardware_stops_at_substantial(
    app: Flask, rp: Rp, citizen: MfaPerson, registry: Registry, clock: FrozenClock
) -> None:
    # A credential made in Python: attestation "none", flags UP and UV, not backup-eligible: it
    # *says* it is a device-bound key that verified its user. Nothing proves it.
    forged = _key(registry, backup_eligible=False, user_verification=True)
    add_passkey_in_account(citizen, forged, label="Made in Python")
    (added,) = [d for d in _details(registry, "authenticator.added") if d["kind"] == "webauthn"]
    assert (added["attestation"], added["synced"], added["user_verified"]) == ("none", False, True)
    _sign_out(citizen, clock)

    claims = _passwordless(app, rp, clock, forged)
    assert claims["acr"] == SUBSTANTIAL
    assert claims["amr"] == ["swk", "user", "pin", "mfa"]
    assert "hwk" not in claims["amr"]
    signed_in = _details(registry, "signin.succeeded")[0]
    assert (signed_in["method"], signed_in["acr"]) == ("webauthn", SUBSTANTIAL)
    assert "hwk" not in signed_in["amr"]
    # Nor can the agency get high by asking: the person holds nothing that reaches it.
    person = MfaPerson(app, "", "", clock=clock, key=forged)
    person.use_key(person.open_page(rp.url("s-2"), "/signin"))
    asked = person.get(rp.url("s-3", acr_values=HIGH, prompt="none"))
    assert rp.back(asked.location or "", "s-3")["error"] == "unmet_authentication_requirements"


# -- the transition ------------------------------------------------------------------------------------


def _migrate(database: Database, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@BOTH_BACKENDS
def test_keys_registered_before_the_change_are_not_proven(empty_database_url: str) -> None:
    """Migration 0004 leaves every existing credential unproven: it stays usable, at substantial."""
    database = Database(empty_database_url)
    try:
        _migrate(database, "0003")
        now = datetime.now(UTC)
        account_id, authenticator_id = str(uuid.uuid4()), str(uuid.uuid4())
        with database.engine.begin() as conn:
            conn.execute(
                insert(Account.__table__).values(
                    id=account_id, username="fatima", account_type="citizen", created_at=now, updated_at=now
                )
            )
            # What the old code stored for a key that said BE=0 and UV (high until this change).
            conn.execute(
                text(
                    "INSERT INTO authenticators (id, account_id, kind, label, credential_id, public_key,"
                    " sign_count, backup_eligible, backup_state, user_verified, aaguid, created_at,"
                    " confirmed_at) VALUES (:id, :account, 'webauthn', 'Blue key', :cred, :key, 0,"
                    " :false, :false, :true, :aaguid, :now, :now)"
                ),
                {
                    "id": authenticator_id,
                    "account": account_id,
                    "cred": b"credential",
                    "key": b"cose key",
                    "false": False,
                    "true": True,
                    "aaguid": str(uuid.UUID(int=0)),
                    "now": now,
                },
            )
        database.upgrade()
        (row,) = AuthenticatorRepository(database).for_account(account_id)
        assert row.hardware_attested is False
        factors = [factor_of(row)]
        assert factor_level(factors) == SUBSTANTIAL
        assert lost_high(factors)  # the person the account page invites to add a security key
    finally:
        database.dispose()
