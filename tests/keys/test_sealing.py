"""Private keys and instance secrets sealed at rest (AES-256-GCM under the master key): what breaks
the seal fails loudly, clearly and at start-up; master-key rotation re-seals everything online,
with the previous key kept only until that is done."""

from __future__ import annotations

import base64
import dataclasses
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, update

from idp.app import create_app
from idp.clock import FrozenClock
from idp.errors import KeyUnavailable
from idp.keys.keystore import SUPPORTED_ALGS
from idp.keys.sealing import KeyFileSealer, Sealer, master_key_id, previous_key_file
from idp.registry import Registry
from idp.settings import Settings
from idp.storage.models import InstanceSecret, SigningKey
from idp.storage.repositories.keys import KeyRepository
from tests.conftest import PASSWORD, World, free_port, make_registry
from tests.support.agency import Agency, userinfo_status
from tests.support.audit import audit_events
from tests.support.cli import assert_clean_error, new_instance
from tests.support.flask_person import FlaskPerson


def new_master_key() -> str:
    """A fresh master key, as HAWIYA_MASTER_KEY takes it (base64 of 32 bytes)."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def sealed_rows(registry: Registry) -> dict[str, str]:
    """Every sealed value in the database, by ``table:id``."""
    return {f"{table}:{ident}": sealed for table, ident, sealed in KeyRepository(registry.db).all_sealed()}


def set_sealed(registry: Registry, kid: str, value: str) -> None:
    """Overwrite a key's sealed private part, as an attacker or a bad restore would."""
    with registry.db.transaction() as s:
        s.execute(update(SigningKey).where(SigningKey.kid == kid).values(private_sealed=value))


def current_kid(registry: Registry, alg: str = "ES256") -> str:
    kid = registry.keystore.current_kid(alg)
    assert kid is not None
    return kid


@pytest.fixture
def open_registry(clock: FrozenClock) -> Iterator[Callable[[Settings], Registry]]:
    """Open more registries on a test's deployment (other processes, other settings); closed after.

    They sign in process, whatever the run's signer: what is sealed at rest is the software signer's
    business (under ``HAWIYA_TEST_SIGNER=remote`` the fixture's registry signs through a service).
    """
    opened: list[Registry] = []

    def make(settings: Settings) -> Registry:
        registry = make_registry(dataclasses.replace(settings, signer_url=None, signer_secret=None), clock)
        opened.append(registry)
        return registry

    yield make
    for registry in opened:
        registry.close()


def start_up(registry: Registry) -> KeyUnavailable:
    """What the app factory raises for ``registry``."""
    with pytest.raises(KeyUnavailable) as failed:
        create_app(registry=registry, start_schedule=False)
    return failed.value


def flip_one_character(sealed: str) -> str:
    """Change one character in the middle of the ciphertext (every bit of it counts there)."""
    version, key_id, body = sealed.split(".", 2)
    middle = len(body) // 2
    replacement = "A" if body[middle] != "A" else "B"
    return f"{version}.{key_id}.{body[:middle]}{replacement}{body[middle + 1 :]}"


# -- tampering and wrong keys fail at start-up -----------------------------------------------------


@pytest.mark.parametrize(
    "tamper",
    [
        flip_one_character,
        lambda sealed: sealed[:-10],
        lambda sealed: "v2" + sealed[2:],
        lambda sealed: sealed.replace(".", "", 1),
    ],
    ids=["flipped-character", "truncated", "unknown-version", "malformed"],
)
def test_a_tampered_signing_key_stops_the_idp_at_start_up(
    registry: Registry, open_registry: Callable[[Settings], Registry], tamper: Callable[[str], str]
) -> None:
    kid = current_kid(registry, "RS256")
    original = sealed_rows(registry)[f"signing_keys:{kid}"]
    set_sealed(registry, kid, tamper(original))

    error = start_up(open_registry(registry.settings))
    assert kid in error.message
    assert "check the master key" in error.message
    assert original not in error.message

    set_sealed(registry, kid, original)  # restoring the value restores the IdP
    create_app(registry=open_registry(registry.settings), start_schedule=False)


def test_a_wrong_master_key_stops_the_idp_at_start_up(
    registry: Registry, open_registry: Callable[[Settings], Registry]
) -> None:
    wrong = dataclasses.replace(registry.settings, master_key=new_master_key())
    error = start_up(open_registry(wrong))
    assert "check the master key" in error.message
    live = {i.kid for i in registry.keystore.describe() if i.state in ("current", "next")}
    assert any(kid in error.message for kid in live), error.message
    assert wrong.master_key not in error.message
    assert registry.settings.master_key not in error.message


def test_a_tampered_instance_secret_stops_the_idp_at_start_up(
    registry: Registry, app: Flask, open_registry: Callable[[Settings], Registry]
) -> None:
    with registry.db.transaction() as s:
        row = s.scalars(select(InstanceSecret).where(InstanceSecret.name == "cookie_signing_key")).one()
        row.sealed_value = flip_one_character(row.sealed_value)
    error = start_up(open_registry(registry.settings))
    assert error.message == (
        "instance secret cookie_signing_key: a sealed value failed authentication; check the master key"
    )


def test_serve_with_a_wrong_master_key_prints_one_clear_line_and_exits_2(tmp_path: Path) -> None:
    instance = new_instance(tmp_path)
    instance.ok("init")
    port = free_port()
    attempts: dict[str, dict[str, str]] = {
        "HAWIYA_MASTER_KEY": {"HAWIYA_MASTER_KEY": new_master_key()},
        "another key file": {},
    }
    instance.master_key_file.write_text(new_master_key() + "\n")  # a backup of another deployment's key
    for name, env in attempts.items():
        line = assert_clean_error(instance.run("serve", "--port", str(port), **env))
        assert "signing key" in line and "check the master key" in line, (name, line)


# -- the keyring: primary and previous master keys -------------------------------------------------


def test_a_value_sealed_under_the_previous_key_unseals_while_that_key_is_configured() -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    sealed = Sealer(old).seal(b"private jwk", purpose="signing_key:k1")

    with pytest.raises(KeyUnavailable, match="another master key"):
        Sealer(new).unseal(sealed, purpose="signing_key:k1")
    ring = Sealer(new, [old])
    assert ring.unseal(sealed, purpose="signing_key:k1") == b"private jwk"
    assert ring.needs_reseal(sealed)

    resealed = ring.seal(ring.unseal(sealed, purpose="signing_key:k1"), purpose="signing_key:k1")
    assert resealed.split(".")[1] == master_key_id(new) == ring.key_id
    assert not ring.needs_reseal(resealed)
    assert Sealer(new).unseal(resealed, purpose="signing_key:k1") == b"private jwk"
    with pytest.raises(KeyUnavailable):
        Sealer(old).unseal(resealed, purpose="signing_key:k1")


def write_key(path: Path, key: bytes) -> None:
    path.write_text(base64.b64encode(key).decode() + "\n")


def test_a_sealer_over_key_files_follows_them_and_one_from_the_environment_does_not(tmp_path: Path) -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    key_file = tmp_path / "master.key"
    write_key(key_file, old)
    from_files = KeyFileSealer(Settings(instance_path=tmp_path, master_key_file=key_file))
    from_env = KeyFileSealer(
        Settings(instance_path=tmp_path, master_key_file=key_file, master_key=base64.b64encode(old).decode())
    )
    sealed = from_files.seal(b"secret", purpose="p")

    # A rotation as rotate-master makes it: the old key beside the file, the new one in it.
    write_key(previous_key_file(key_file), old)
    write_key(key_file, new)
    assert from_files.key_id == master_key_id(new), "seals under the new key at once"
    assert from_files.unseal(sealed, purpose="p") == b"secret", "still opens what the old key sealed"
    fresh = from_files.seal(b"secret", purpose="p")
    assert from_env.key_id == master_key_id(old), "a key from the environment changes with a restart"
    with pytest.raises(KeyUnavailable, match="another master key"):
        from_env.unseal(fresh, purpose="p")

    # A key file edited into something that is not a key: the last good keys stay, check says so.
    key_file.write_text("oops\n")
    assert from_files.unseal(fresh, purpose="p") == b"secret"
    with pytest.raises(KeyUnavailable, match="master key files cannot be used"):
        from_files.check()
    write_key(key_file, new)
    from_files.check()


def test_a_sealed_value_is_bound_to_its_purpose() -> None:
    sealer = Sealer(secrets.token_bytes(32))
    sealed = sealer.seal(b"private jwk", purpose="signing_key:k1")
    with pytest.raises(KeyUnavailable, match="failed authentication"):
        sealer.unseal(sealed, purpose="signing_key:k2")
    with pytest.raises(KeyUnavailable):
        sealer.unseal(sealed, purpose="instance_secret:k1")


def test_a_sealed_key_copied_into_another_keys_row_does_not_unseal(
    registry: Registry, open_registry: Callable[[Settings], Registry]
) -> None:
    source, target = current_kid(registry, "ES256"), current_kid(registry, "EdDSA")
    set_sealed(registry, target, sealed_rows(registry)[f"signing_keys:{source}"])
    error = start_up(open_registry(registry.settings))
    assert target in error.message and "check the master key" in error.message


def test_the_master_key_must_be_32_bytes() -> None:
    from idp.errors import ConfigurationError

    for size in (16, 31, 33):
        with pytest.raises(ConfigurationError, match="32 bytes"):
            Sealer(secrets.token_bytes(size))
        with pytest.raises(ConfigurationError, match="32 bytes"):
            Sealer(secrets.token_bytes(32), [secrets.token_bytes(size)])


def test_reseal_moves_everything_under_the_new_master_key_online(
    app: Flask,
    registry: Registry,
    world: World,
    clock: FrozenClock,
    open_registry: Callable[[Settings], Registry],
) -> None:
    agency = Agency.register(app, registry, port=9301)
    person = FlaskPerson(app, "citizen", PASSWORD)
    clock.advance(registry.settings.jwks_max_age)
    before_tokens = agency.sign_in(person, "openid offline_access")
    rotation = registry.keystore.rotate("ES256")  # a retired key is re-sealed too
    old_key = registry.settings.master_key
    assert old_key is not None
    salt = registry.keystore.instance_secret("pairwise_salt")
    before = sealed_rows(registry)
    assert {"instance_secrets:pairwise_salt", "instance_secrets:cookie_signing_key"} <= set(before)
    assert f"signing_keys:{rotation.retired}" in before

    # Step 1 of the runbook: every process gets the new key, and the old one as the previous key.
    new_key = new_master_key()
    both = dataclasses.replace(registry.settings, master_key=new_key, previous_master_key=old_key)
    rotating = open_registry(both)
    during = create_app(registry=rotating, start_schedule=False)  # starts: the old key still unseals
    during.testing = True
    assert all(rotating.sealer.needs_reseal(value) for value in before.values())

    # Step 2: re-seal, online.
    assert rotating.keystore.reseal() == len(before)
    after = sealed_rows(registry)
    assert set(after) == set(before)
    assert all(after[name] != before[name] for name in before), "every row changed"
    assert all(value.split(".")[1] == master_key_id(base64.b64decode(new_key)) for value in after.values())
    assert rotating.keystore.reseal() == 0, "re-sealing is idempotent"
    events = audit_events(registry, "master_key.rotated")  # newest first
    assert [event["detail"]["resealed"] for event in events] == [0, len(before)]
    assert events[1]["detail"]["master_key_id"] == master_key_id(base64.b64decode(new_key))

    # Step 3: the previous key goes; everything still works under the new key alone.
    alone = open_registry(
        dataclasses.replace(registry.settings, master_key=new_key, previous_master_key=None)
    )
    later = create_app(registry=alone, start_schedule=False)
    later.testing = True
    for row in KeyRepository(alone.db).in_states("next", "current", "retired"):
        alone.sealer.unseal(row.private_sealed, purpose=f"signing_key:{row.kid}")
    for alg in SUPPORTED_ALGS:
        token = alone.signer.sign({"iss": "reseal"}, alg=alg)
        assert alone.verifier.verify(token, typ="jwt")[1] == {"iss": "reseal"}
    assert alone.keystore.instance_secret("pairwise_salt") == salt

    again = Agency(later, agency.client_id, agency.secret, agency.redirect_uri)
    after_tokens = again.sign_in(FlaskPerson(later, "citizen", PASSWORD), "openid offline_access")
    assert userinfo_status(later, after_tokens["access_token"]) == 200
    assert userinfo_status(later, before_tokens["access_token"]) == 200, "tokens outlive the re-sealing"
    assert again.refresh(before_tokens["refresh_token"]).status_code == 200
    subject = later.test_client().get(
        "/userinfo", headers={"Authorization": f"Bearer {after_tokens['access_token']}"}
    )
    assert subject.json is not None
    client = registry.clients.active(agency.client_id)
    assert client is not None
    assert subject.json["sub"] == registry.subjects.subject(client, world.citizen_id), (
        "the pairwise salt survived: every agency still sees the same sub"
    )

    # And the old key alone no longer opens anything.
    stale = open_registry(dataclasses.replace(registry.settings, master_key=old_key))
    assert "check the master key" in start_up(stale).message
