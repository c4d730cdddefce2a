"""``hawiya keys``, run as an operator runs it (settings from ``HAWIYA_*``; tests/support/cli.py):
list, rotate, revoke, prune, and master-key rotation for the embedded default (``rotate-master``)
and for a key passed by environment (``reseal`` with ``HAWIYA_PREVIOUS_MASTER_KEY``). Output shows
states and timestamps, never key material; refusals are one clean line and exit status 2."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import shutil
import stat
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from idp.app import create_app
from idp.errors import KeyUnavailable
from idp.keys.keystore import SUPPORTED_ALGS
from idp.keys.sealing import master_key_id, previous_key_file
from idp.registry import Registry
from idp.storage.repositories.keys import KeyRepository
from tests.conftest import PASSWORD
from tests.support.agency import Agency, userinfo_status
from tests.support.audit import audit_events
from tests.support.cli import Instance, Result, assert_clean_error, new_instance, succeeded
from tests.support.flask_person import FlaskPerson
from tests.support.identity import national_id
from tests.support.keys import backdate, leaks

ROW_FIELDS = {
    "kid",
    "alg",
    "state",
    "created_at",
    "activated_at",
    "retired_at",
    "revoked_at",
    "revoke_reason",
}
#: Init seals one private key per (algorithm, current|next) and two instance secrets.
SEALED_AT_INIT = 2 * len(SUPPORTED_ALGS) + 2


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deployment just after `hawiya init` (embedded default: the master key in a file)."""
    folder = tmp_path_factory.mktemp("pristine")
    new_instance(folder).ok("init")
    return folder


def copy_of(pristine: Path, folder: Path) -> Instance:
    """A deployment of its own, as `hawiya init` leaves it (a copy: init generates RSA keys slowly)."""
    shutil.copytree(pristine, folder, dirs_exist_ok=True)
    return new_instance(folder)


@pytest.fixture(scope="module")
def hawiya(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> Instance:
    """The deployment shared by the list/rotate/revoke/prune tests of this module."""
    return copy_of(pristine, tmp_path_factory.mktemp("keys-cli"))


def key_rows(instance: Instance) -> list[dict[str, Any]]:
    """The keys as the deployment holds them (read in this process: quicker than another run)."""
    registry = instance.registry()
    try:
        return [dataclasses.asdict(info) for info in registry.keystore.describe()]
    finally:
        registry.close()


def by_state(rows: list[dict[str, Any]], alg: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for row in rows:
        if row["alg"] == alg:
            found.setdefault(row["state"], []).append(row["kid"])
    return found


def assert_no_key_material(instance: Instance, *outputs: str) -> None:
    text = "\n".join(outputs)
    assert "PRIVATE" not in text
    registry = instance.registry()
    try:
        assert leaks(text, registry) == []
    finally:
        registry.close()


def assert_every_key_signs(registry: Registry) -> None:
    """The IdP starts, every live key unseals, and each algorithm signs a token that verifies."""
    registry.keystore.check_unsealable()
    for row in KeyRepository(registry.db).in_states("next", "current", "retired"):
        registry.sealer.unseal(row.private_sealed, purpose=f"signing_key:{row.kid}")
    for alg in SUPPORTED_ALGS:
        token = registry.signer.sign({"iss": "cli-test"}, alg=alg)
        assert registry.verifier.verify(token, typ="jwt")[1] == {"iss": "cli-test"}


# -- list ------------------------------------------------------------------------------------------


def test_keys_list_shows_kid_alg_state_and_timestamps_never_key_material(hawiya: Instance) -> None:
    text = hawiya.ok("keys", "list")
    raw = hawiya.ok("keys", "list", "--json")
    rows = json.loads(raw)
    assert rows and all(set(row) == ROW_FIELDS for row in rows)
    assert [row["kid"] for row in rows] == [row["kid"] for row in key_rows(hawiya)]
    for alg in SUPPORTED_ALGS:
        states = by_state(rows, alg)
        assert len(states["current"]) == 1 and len(states["next"]) == 1, (alg, states)
    for row in rows:
        created = datetime.fromisoformat(row["created_at"])
        assert created.tzinfo is not None and created <= datetime.now(created.tzinfo) + timedelta(seconds=5)
        if row["state"] in ("current", "retired"):
            assert datetime.fromisoformat(row["activated_at"]) >= created
        if row["state"] == "next":
            assert row["activated_at"] is None and row["retired_at"] is None
        line = next(line for line in text.splitlines() if line.startswith(row["kid"]))
        assert line.split()[1:3] == [row["alg"], row["state"]]
        assert row["created_at"] in line
    assert_no_key_material(hawiya, text, raw)


# -- rotate ----------------------------------------------------------------------------------------


def test_keys_rotate_is_refused_while_the_next_keys_are_newly_published(hawiya: Instance) -> None:
    before = key_rows(hawiya)
    line = assert_clean_error(hawiya.run("keys", "rotate", "--alg", "PS256"))
    assert "rotate again in" in line and "cache the JWKS for 300 s" in line, line
    lines = refusal_lines(hawiya.run("keys", "rotate"))
    refused = [alg for alg in SUPPORTED_ALGS if any(f" {alg} " in line for line in lines)]
    assert refused == list(SUPPORTED_ALGS), lines
    assert all("cache the JWKS for 300 s" in line for line in lines[:-1])
    assert key_rows(hawiya) == before, "a refused rotation changes nothing"


def test_keys_rotate_succeeds_once_the_next_keys_are_one_cache_lifetime_old(hawiya: Instance) -> None:
    before = key_rows(hawiya)
    time.sleep(1.1)  # the one real wait: HAWIYA_JWKS_MAX_AGE=1 is the shortest cache lifetime
    result = hawiya.run("keys", "rotate", "--json", HAWIYA_JWKS_MAX_AGE="1")
    assert result.returncode == 0, result.stderr
    rotations = {r["alg"]: r for r in json.loads(result.stdout)}
    assert set(rotations) == set(SUPPORTED_ALGS)

    after = key_rows(hawiya)
    for alg, rotation in rotations.items():
        old = by_state(before, alg)
        new = by_state(after, alg)
        assert rotation["current"] == old["next"][0] == new["current"][0]
        assert rotation["retired"] == old["current"][0] and rotation["retired"] in new["retired"]
        assert new["next"] == [rotation["next"]]
    assert_no_key_material(hawiya, result.stdout, result.stderr)

    # The new next keys are newly published: they wait a cache lifetime of their own.
    line = assert_clean_error(hawiya.run("keys", "rotate", "--alg", "ES256", HAWIYA_JWKS_MAX_AGE="60"))
    assert rotations["ES256"]["next"] in line and "rotate again in" in line


def refusal_lines(result: Result) -> list[str]:
    """The lines of a refused ``keys rotate``: one per algorithm refused, then that nothing rotated."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.splitlines()
    assert all(line.startswith("hawiya: error: ") for line in lines), lines
    assert "nothing was rotated" in lines[-1]
    return lines


def age_next_keys(instance: Instance) -> None:
    """Make every next key an hour old (published long before any cache lifetime here)."""
    registry = instance.registry()
    try:
        backdate(registry, "next", "created_at", timedelta(hours=1))
    finally:
        registry.close()


def test_keys_rotate_rotates_every_algorithm_or_none(pristine: Path, tmp_path: Path) -> None:
    instance = copy_of(pristine, tmp_path)
    age_next_keys(instance)
    instance.ok("keys", "rotate", "--alg", "PS256", "--force")  # new next keys for PS256 and RS256
    instance.ok("keys", "rotate", "--alg", "RS256", "--force")
    before = key_rows(instance)

    lines = refusal_lines(instance.run("keys", "rotate"))
    assert len(lines) == 3, lines
    assert "the next PS256 key" in lines[0] and "the next RS256 key" in lines[1], lines
    assert key_rows(instance) == before, "ES256 and EdDSA were not rotated either"

    age_next_keys(instance)
    output = instance.ok("keys", "rotate")
    reported = [line.split(":")[0] for line in output.splitlines()]
    assert sorted(reported) == sorted(SUPPORTED_ALGS), output
    after = key_rows(instance)
    for alg in SUPPORTED_ALGS:
        assert by_state(after, alg)["current"] == by_state(before, alg)["next"], alg


def test_keys_rotate_force_rotates_at_once(hawiya: Instance) -> None:
    before = by_state(key_rows(hawiya), "RS256")
    output = hawiya.ok("keys", "rotate", "--alg", "RS256", "--force")
    after = by_state(key_rows(hawiya), "RS256")
    assert after["current"] == before["next"]
    assert before["current"][0] in after["retired"]
    assert f"RS256: now signing with {before['next'][0]}" in output
    assert_no_key_material(hawiya, output)


def test_keys_rotate_an_unknown_algorithm_is_a_usage_error(hawiya: Instance) -> None:
    result = hawiya.run("keys", "rotate", "--alg", "HS256")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "HS256" in result.stderr and result.stdout == ""


# -- revoke ----------------------------------------------------------------------------------------


def test_keys_revoke_withdraws_a_key_at_once(hawiya: Instance) -> None:
    before = by_state(key_rows(hawiya), "EdDSA")
    victim = before["current"][0]
    output = hawiya.ok("keys", "revoke", victim, "--reason", "found in a public repository")
    assert victim in output and "revoked" in output

    rows = {row["kid"]: row for row in key_rows(hawiya)}
    assert rows[victim]["state"] == "revoked"
    assert rows[victim]["revoke_reason"] == "found in a public repository"
    assert rows[victim]["revoked_at"] is not None
    assert by_state(list(rows.values()), "EdDSA")["current"] == before["next"], "the next key signs at once"

    registry = hawiya.registry()
    try:
        assert victim not in {key["kid"] for key in registry.keystore.jwks()["keys"]}
        [event] = [e for e in audit_events(registry, "signing_key.revoked") if e["detail"]["kid"] == victim]
        assert event["detail"]["reason"] == "found in a public repository"
    finally:
        registry.close()

    line = assert_clean_error(hawiya.run("keys", "revoke", victim, "--reason", "again"))
    assert victim in line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("keys", "revoke", "no-such-kid", "--reason", "compromised"), "no-such-kid"),
        (("keys", "revoke", "KID", "--reason", ""), "reason"),
        (("keys", "revoke", "KID", "--reason", "   "), "reason"),
    ],
)
def test_keys_revoke_refusals_are_one_clean_line(hawiya: Instance, args: tuple[str, ...], says: str) -> None:
    kid = by_state(key_rows(hawiya), "ES256")["current"][0]
    before = key_rows(hawiya)
    line = assert_clean_error(hawiya.run(*(kid if word == "KID" else word for word in args)))
    assert says in line
    assert key_rows(hawiya) == before


def test_keys_revoke_needs_a_reason(hawiya: Instance) -> None:
    kid = by_state(key_rows(hawiya), "ES256")["current"][0]
    result = hawiya.run("keys", "revoke", kid)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--reason" in result.stderr
    assert by_state(key_rows(hawiya), "ES256")["current"] == [kid]


# -- prune -----------------------------------------------------------------------------------------


def test_keys_prune_removes_only_retired_keys_whose_tokens_have_all_expired(hawiya: Instance) -> None:
    hawiya.ok("keys", "rotate", "--alg", "ES256", "--force")  # at least one retired key
    revoked = by_state(key_rows(hawiya), "PS256")["current"][0]  # and one revoked: it must stay
    hawiya.ok("keys", "revoke", revoked, "--reason", "drill")
    retired = [row["kid"] for row in key_rows(hawiya) if row["state"] == "retired"]
    assert retired
    assert hawiya.ok("keys", "prune").strip() == "pruned 0 key(s)", "their tokens may still be live"

    # Let an hour pass for the retired keys (longer than any token lives, plus leeway).
    registry = hawiya.registry()
    try:
        backdate(registry, "retired", "retired_at", timedelta(hours=1))
    finally:
        registry.close()
    before = key_rows(hawiya)
    output = hawiya.ok("keys", "prune")
    assert output.startswith(f"pruned {len(retired)} key(s): ")
    assert set(output.split(": ", 1)[1].strip().split(", ")) == set(retired)
    after = key_rows(hawiya)
    assert [row for row in before if row["kid"] not in retired] == after
    assert {row["state"] for row in after} == {"current", "next", "revoked"}
    assert revoked in {row["kid"] for row in after}
    assert hawiya.ok("keys", "prune").strip() == "pruned 0 key(s)"


# -- master key ------------------------------------------------------------------------------------


def test_rotate_master_makes_a_new_key_file_and_reseals_everything(pristine: Path, tmp_path: Path) -> None:
    instance = copy_of(pristine, tmp_path)
    before = instance.registry()
    try:
        before.accounts.create(
            account_type="citizen", username="mariam", password=PASSWORD, national_id=national_id(7)
        )
    finally:
        before.close()
    old_key = instance.master_key_file.read_text().strip()

    output = succeeded(instance.run_process("keys", "rotate-master"))  # the real entry point
    new_key = instance.master_key_file.read_text().strip()
    assert new_key != old_key
    assert f"re-sealed {SEALED_AT_INIT} value(s)" in output
    assert old_key not in output and new_key not in output
    assert stat.S_IMODE(instance.master_key_file.stat().st_mode) == 0o600
    assert not previous_key_file(instance.master_key_file).exists(), "the old master key is gone"
    assert sorted(path.name for path in instance.master_key_file.parent.iterdir()) == ["master.key"]

    registry = instance.registry()
    try:
        new_id = master_key_id(base64.b64decode(new_key))
        sealed = KeyRepository(registry.db).all_sealed()
        assert len(sealed) == SEALED_AT_INIT and all(value.split(".")[1] == new_id for _, _, value in sealed)
        assert_every_key_signs(registry)
        [event] = audit_events(registry, "master_key.rotated")
        assert event["detail"] == {"resealed": SEALED_AT_INIT, "master_key_id": new_id}

        # A person signs in on the IdP built from the new key alone.
        app = create_app(registry=registry, start_schedule=False)
        app.testing = True
        agency = Agency.register(app, registry, port=9401)
        tokens = agency.sign_in(FlaskPerson(app, "mariam", PASSWORD), "openid")
        assert userinfo_status(app, tokens["access_token"]) == 200
    finally:
        registry.close()

    stale = instance.registry(HAWIYA_MASTER_KEY=old_key)
    try:
        with pytest.raises(KeyUnavailable, match="check the master key"):
            stale.keystore.check_unsealable()
    finally:
        stale.close()


def test_an_interrupted_rotate_master_is_finished_by_reseal(pristine: Path, tmp_path: Path) -> None:
    instance = copy_of(pristine, tmp_path)
    # rotate-master stopped after creating the new key file, before re-sealing (a crash, a kill).
    previous = previous_key_file(instance.master_key_file)
    instance.master_key_file.rename(previous)
    instance.master_key_file.write_text(base64.b64encode(bytes(range(32))).decode() + "\n")

    line = assert_clean_error(instance.run("keys", "rotate-master"))
    assert "unfinished" in line and "keys reseal" in line
    output = instance.ok("keys", "reseal")
    assert f"re-sealed {SEALED_AT_INIT} value(s)" in output
    assert not previous.exists()

    registry = instance.registry()
    try:
        assert_every_key_signs(registry)
        assert registry.keystore.reseal() == 0, "nothing is left under the previous key"
    finally:
        registry.close()


def test_a_master_key_from_the_environment_is_rotated_with_reseal(tmp_path: Path) -> None:
    old_key, new_key = (base64.b64encode(secrets.token_bytes(32)).decode() for _ in range(2))
    instance = new_instance(tmp_path)
    instance.env["HAWIYA_MASTER_KEY"] = old_key
    instance.ok("init")
    assert not instance.master_key_file.exists()

    line = assert_clean_error(instance.run("keys", "rotate-master"))
    assert "HAWIYA_MASTER_KEY" in line and "keys reseal" in line
    assert not instance.master_key_file.exists()

    # The new key alone cannot open what the old one sealed: a clean refusal, nothing changed.
    line = assert_clean_error(instance.run("keys", "reseal", HAWIYA_MASTER_KEY=new_key))
    assert "another master key" in line

    result = instance.run("keys", "reseal", HAWIYA_MASTER_KEY=new_key, HAWIYA_PREVIOUS_MASTER_KEY=old_key)
    assert result.returncode == 0, result.stderr
    assert f"re-sealed {SEALED_AT_INIT} value(s)" in result.stdout
    assert old_key not in result.stdout + result.stderr and new_key not in result.stdout + result.stderr

    fresh = instance.registry(HAWIYA_MASTER_KEY=new_key)
    stale = instance.registry(HAWIYA_MASTER_KEY=old_key)
    try:
        assert_every_key_signs(fresh)
        with pytest.raises(KeyUnavailable, match="check the master key"):
            stale.keystore.check_unsealable()
    finally:
        fresh.close()
        stale.close()
    instance.env["HAWIYA_MASTER_KEY"] = new_key
    assert len(key_rows(instance)) == 2 * len(SUPPORTED_ALGS)
