"""Key operations on a service that keeps serving (SECURITY.md, "Key runbook").

- ``hawiya keys rotate-master`` run against the instance folder of an IdP that is serving: the IdP
  follows the key files (old and new master key during the handover), so /token keeps answering
  without a restart, and /readyz proves an unseal and a signature (a wrong key file turns it red).
- ``hawiya keys rotate`` rotates every algorithm or none, reporting each.
- The rotation guard waits for the longest JWKS max-age a serving process publishes, not only for
  the max-age of the process that runs it (a CLI configured shorter would rotate too early).

Each IdP here is an app built in this process from the same instance folder the commands use: a
command changes the files and the database under a running IdP, as on a server.
"""

from __future__ import annotations

import base64
import dataclasses
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from idp.app import create_app
from idp.clock import FrozenClock
from idp.keys.keystore import PUBLICATION_RENEWAL, SUPPORTED_ALGS, RotationRefused
from idp.keys.sealing import master_key_id, previous_key_file
from idp.registry import Registry
from idp.settings import Settings
from idp.storage.repositories.keys import KeyRepository
from tests.conftest import BOTH_BACKENDS, PASSWORD, Backend, make_registry
from tests.support.agency import Agency, userinfo_status
from tests.support.cli import Instance, new_instance, succeeded
from tests.support.flask_person import FlaskPerson
from tests.support.identity import national_id
from tests.support.keys import backdate


@pytest.fixture
def instance(tmp_path: Path, backend: Backend) -> Instance:
    """A deployment initialised by `hawiya init` on the test's backend, its master key in a file."""
    deployment = new_instance(tmp_path)
    deployment.env.update(
        HAWIYA_DATABASE_URL=backend.database_url,
        HAWIYA_EPHEMERAL_URL=backend.ephemeral_url,
        HAWIYA_REDIS_PREFIX=backend.redis_prefix,
    )
    deployment.ok("init")
    return deployment


@pytest.fixture
def serving(instance: Instance, clock: FrozenClock) -> Iterator[tuple[Flask, Registry]]:
    """The IdP of ``instance``, serving (an app of its own in this process, on the test's clock)."""
    registry = make_registry(Settings.from_env(instance.env), clock)
    try:
        app = create_app(registry=registry, start_schedule=False)
        app.testing = True
        yield app, registry
    finally:
        registry.close()


def readyz(app: Flask) -> tuple[int, dict[str, Any]]:
    response = app.test_client().get("/readyz")
    assert response.json is not None
    return response.status_code, response.json["checks"]


def described(instance: Instance) -> list[dict[str, Any]]:
    """Every key of ``instance`` and its state."""
    registry = instance.registry()
    try:
        return [dataclasses.asdict(info) for info in registry.keystore.describe()]
    finally:
        registry.close()


def sealed_under(registry: Registry) -> set[str]:
    """The ids of the master keys the database's sealed values are under."""
    return {value.split(".")[1] for _, _, value in KeyRepository(registry.db).all_sealed()}


# -- the master key, rotated under a running IdP ---------------------------------------------------


@BOTH_BACKENDS
def test_rotate_master_while_serving_keeps_token_working_without_a_restart(
    instance: Instance, serving: tuple[Flask, Registry], clock: FrozenClock
) -> None:
    app, registry = serving
    registry.accounts.create(
        account_type="citizen", username="mariam", password=PASSWORD, national_id=national_id(7)
    )
    agency = Agency.register(app, registry, port=9411)
    person = FlaskPerson(app, "mariam", PASSWORD)
    assert agency.sign_in(person, "openid")["access_token"]
    assert readyz(app)[0] == 200
    old_id = master_key_id(base64.b64decode(instance.master_key_file.read_text()))

    # The operator rotates the master key from a shell on the server (a process of its own), then
    # the signing keys: the keys that sign from now on were sealed under the new master key only.
    output = succeeded(instance.run_process("keys", "rotate-master"))
    assert "re-sealed" in output
    new_id = master_key_id(base64.b64decode(instance.master_key_file.read_text()))
    assert new_id != old_id and sealed_under(registry) == {new_id}
    assert not previous_key_file(instance.master_key_file).exists()
    instance.ok("keys", "rotate", "--force")

    # The IdP that kept running signs with them: no 503 at /token, no restart.
    tokens = agency.sign_in(person, "openid")
    assert userinfo_status(app, tokens["access_token"]) == 200
    assert registry.sealer.key_id == new_id, "what the IdP seals from now on is under the new key"
    clock.advance(10)
    assert readyz(app) == (200, {"database": True, "ephemeral": True, "keys": True})


@BOTH_BACKENDS
def test_readyz_turns_red_when_the_master_key_file_no_longer_unseals(
    instance: Instance, serving: tuple[Flask, Registry], clock: FrozenClock
) -> None:
    app, _registry = serving
    right = instance.master_key_file.read_text()
    assert readyz(app)[0] == 200

    # Someone replaces the key file with another (valid) key: the IdP still signs with the keys it
    # holds unsealed, but the next unseal (a rotation, a worker, a restart) would fail.
    instance.master_key_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    assert readyz(app)[0] == 200, "the proof is kept a few seconds: probes stay cheap"
    clock.advance(10)
    status, checks = readyz(app)
    assert status == 503 and checks == {"database": True, "ephemeral": True, "keys": False}

    # A key file that is not a key at all: the last good keys stay in use, and /readyz says so.
    instance.master_key_file.write_text("not a key\n")
    clock.advance(10)
    assert readyz(app)[0] == 503

    instance.master_key_file.write_text(right)
    clock.advance(10)
    assert readyz(app)[0] == 200


# -- all algorithms rotate, or none ----------------------------------------------------------------


@BOTH_BACKENDS
def test_a_rotation_of_every_algorithm_is_one_transaction(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process rotates RS256 between the checks and the promotion: nothing is rotated."""
    registry = instance.registry(HAWIYA_JWKS_MAX_AGE="1")
    try:
        keystore = registry.keystore
        repository = keystore._repository
        promote_all = repository.promote_all
        before = described(instance)

        def another_process_first(promotions: Any, **kwargs: Any) -> bool:
            monkeypatch.setattr(repository, "promote_all", promote_all)
            other = instance.registry()
            try:
                other.keystore.rotate("RS256", force=True)
            finally:
                other.close()
            return promote_all(promotions, **kwargs)

        monkeypatch.setattr(repository, "promote_all", another_process_first)
        with pytest.raises(RotationRefused, match="nothing was rotated"):
            keystore.rotate_all(SUPPORTED_ALGS, force=True)
        after = {info.kid: dataclasses.asdict(info) for info in keystore.describe()}
        for row in before:
            if row["alg"] != "RS256":
                assert after[row["kid"]] == row, "no other algorithm moved"
    finally:
        registry.close()


# -- the rotation guard honours the longest published max-age --------------------------------------


def serve_jwks(settings: Settings, clock: FrozenClock) -> Registry:
    """An IdP on ``settings`` that has served its JWKS once (with its max-age)."""
    server = make_registry(settings, clock)
    app = create_app(registry=server, start_schedule=False)
    response = app.test_client().get("/jwks.json")
    assert response.headers["Cache-Control"] == f"public, max-age={settings.jwks_max_age}"
    return server


@BOTH_BACKENDS
def test_a_cli_with_a_shorter_max_age_waits_for_the_servers(instance: Instance, clock: FrozenClock) -> None:
    settings = Settings.from_env(instance.env)
    server = serve_jwks(dataclasses.replace(settings, jwks_max_age=3600), clock)
    cli = make_registry(dataclasses.replace(settings, jwks_max_age=60), clock)
    try:
        clock.advance(120)  # the next keys are older than the CLI's max-age, younger than the servers'
        with pytest.raises(RotationRefused) as refused:
            cli.keystore.rotate_all(SUPPORTED_ALGS)
        assert len(refused.value.refusals) == len(SUPPORTED_ALGS)
        assert all("cache the JWKS for 3600 s" in line for line in refused.value.refusals)
        assert cli.keystore.rotate_due(older_than_days=0) == [], "nor does the schedule rotate"

        # The server that published 3600 s is gone: its record counts until no relying party can
        # still hold what it served, then the CLI's own max-age rules again.
        clock.advance(3600 + 2 * PUBLICATION_RENEWAL)
        assert cli.keystore.cache_lifetime() == 60
        assert {r.alg for r in cli.keystore.rotate_all(SUPPORTED_ALGS)} == set(SUPPORTED_ALGS)
    finally:
        server.close()
        cli.close()


def test_keys_rotate_from_a_shell_with_a_shorter_max_age_is_refused(instance: Instance) -> None:
    """The same, as the operator meets it: the servers publish 3600 s, the shell says 60 s, and
    the next keys were published two minutes ago."""
    server = serve_jwks(Settings.from_env({**instance.env, "HAWIYA_JWKS_MAX_AGE": "3600"}), FrozenClock())
    try:
        backdate(server, "next", "created_at", timedelta(seconds=120))
    finally:
        server.close()
    before = described(instance)
    result = instance.run("keys", "rotate", HAWIYA_JWKS_MAX_AGE="60")
    assert result.returncode == 2, result.stdout
    assert "cache the JWKS for 3600 s" in result.stderr, result.stderr
    assert described(instance) == before, "nothing rotated"
