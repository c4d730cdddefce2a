"""The signing-key lifecycle (next -> current -> retired -> removed; or revoked), driven through the
services with a frozen clock: publication before use, rotation, revocation and what it takes down,
pruning, the automatic schedule, audit events, and per-client ID token algorithms verified by an
independent library (PyJWT) against the published JWKS."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from werkzeug.test import TestResponse

from idp.app import create_app
from idp.clock import FrozenClock
from idp.errors import InvalidInput, NotFound
from idp.keys.keystore import SUPPORTED_ALGS, Rotation, RotationRefused
from idp.keys.schedule import KeySchedule
from idp.registry import Registry
from idp.storage.repositories.audit import AuditRepository
from tests.conftest import BOTH_BACKENDS, PASSWORD, Backend, World, initialised, make_registry, make_settings
from tests.support.agency import Agency, userinfo_status
from tests.support.audit import audit_events
from tests.support.flask_person import FlaskPerson
from tests.support.keys import PRIVATE_MEMBERS, private_values

OFFLINE = "openid profile email offline_access"
DAY = 24 * 3600


# -- helpers ---------------------------------------------------------------------------------------


def published(app: Flask) -> dict[str, dict[str, Any]]:
    """The JWKS an agency fetches, by kid."""
    response = app.test_client().get("/jwks.json")
    assert response.status_code == 200
    assert response.json is not None
    return {key["kid"]: key for key in response.json["keys"]}


def states(registry: Registry, alg: str) -> dict[str, list[str]]:
    """The kids of ``alg`` in each state."""
    found: dict[str, list[str]] = {}
    for info in registry.keystore.describe():
        if info.alg == alg:
            found.setdefault(info.state, []).append(info.kid)
    return found


def one(registry: Registry, alg: str, state: str) -> str:
    """The single kid of ``alg`` in ``state``."""
    kids = states(registry, alg).get(state, [])
    assert len(kids) == 1, f"{alg} has {kids} in state {state}"
    return kids[0]


def kid_of(token: str) -> str:
    """The kid in a JWS header."""
    return str(jwt.get_unverified_header(token)["kid"])


def assert_refused(response: TestResponse) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json is not None and response.json["error"] == "invalid_grant"


def wait_in(refused: RotationRefused) -> int:
    """The seconds a refusal says to wait."""
    found = re.search(r"rotate again in (\d+) s", refused.message)
    assert found, refused.message
    return int(found.group(1))


def together(attempt: Callable[[], Any], racers: int = 2) -> list[Any]:
    """Run ``attempt`` in ``racers`` threads released at once; each result, or its RotationRefused."""
    barrier = threading.Barrier(racers)

    def run() -> Any:
        barrier.wait(timeout=10)
        try:
            return attempt()
        except RotationRefused as refused:
            return refused

    with ThreadPoolExecutor(racers) as pool:
        futures = [pool.submit(run) for _ in range(racers)]
        return [future.result(timeout=60) for future in futures]


@pytest.fixture
def agency(app: Flask, registry: Registry) -> Agency:
    """A confidential client with refresh tokens and offline_access."""
    return Agency.register(app, registry, port=9201)


@pytest.fixture
def person(app: Flask, world: World) -> FlaskPerson:
    """The citizen at a browser."""
    return FlaskPerson(app, "citizen", PASSWORD)


@pytest.fixture
def custom_registry(
    tmp_path: Path, backend: Backend, clock: FrozenClock
) -> Iterator[Callable[..., Registry]]:
    """Make an initialised registry with settings ``overrides`` (closed at teardown)."""
    made: list[Registry] = []

    def make(**overrides: Any) -> Registry:
        assert backend.name == "embedded" or not made, "one database per test on PostgreSQL"
        folder = tmp_path / f"idp{len(made)}"
        folder.mkdir()
        if backend.name == "embedded":
            overrides.setdefault("database_url", f"sqlite:///{folder / 'hawiya.db'}")
        registry = initialised(make_settings(folder, backend, **overrides), clock)
        made.append(registry)
        return registry

    yield make
    for registry in made:
        registry.close()


# -- publication -----------------------------------------------------------------------------------


def test_init_makes_a_current_and_a_next_key_per_algorithm_all_published_without_private_parts(
    app: Flask, registry: Registry
) -> None:
    for alg in SUPPORTED_ALGS:
        assert {state: len(kids) for state, kids in states(registry, alg).items()} == {
            "current": 1,
            "next": 1,
        }

    keys = published(app)
    assert set(keys) == {info.kid for info in registry.keystore.describe()}
    assert sorted(key["alg"] for key in keys.values()) == sorted(SUPPORTED_ALGS * 2)
    for kid, key in keys.items():
        assert key["use"] == "sig" and key["kid"] == kid
        assert not PRIVATE_MEMBERS & set(key), f"{kid} publishes {PRIVATE_MEMBERS & set(key)}"
        assert key["kty"] == {"ES256": "EC", "RS256": "RSA", "PS256": "RSA", "EdDSA": "OKP"}[key["alg"]]
        jwt.PyJWK(key)  # a well-formed public key an agency's library accepts
    body = app.test_client().get("/jwks.json").get_data(as_text=True)
    assert not any(value in body for value in private_values(registry))


def test_jwks_cache_lifetime_and_rotation_delay_come_from_one_setting(
    custom_registry: Callable[..., Registry], clock: FrozenClock
) -> None:
    registry = custom_registry(jwks_max_age=120)
    app = create_app(registry=registry, start_schedule=False)
    assert app.test_client().get("/jwks.json").headers["Cache-Control"] == "public, max-age=120"

    with pytest.raises(RotationRefused) as refused:
        registry.keystore.rotate("ES256")
    assert "120 s" in refused.value.message
    clock.advance(120)
    assert registry.keystore.rotate("ES256").alg == "ES256"


def test_default_jwks_cache_lifetime_is_the_setting(app: Flask, registry: Registry) -> None:
    response = app.test_client().get("/jwks.json")
    assert response.headers["Cache-Control"] == f"public, max-age={registry.settings.jwks_max_age}"
    assert registry.keystore.jwks_max_age == registry.settings.jwks_max_age


# -- rotation --------------------------------------------------------------------------------------


def test_rotation_waits_one_jwks_cache_lifetime_then_promotes_next_and_retires_current(
    app: Flask, registry: Registry, clock: FrozenClock, agency: Agency, person: FlaskPerson
) -> None:
    keystore = registry.keystore
    max_age = registry.settings.jwks_max_age
    old_current, old_next = one(registry, "ES256", "current"), one(registry, "ES256", "next")

    with pytest.raises(RotationRefused) as refused:
        keystore.rotate("ES256")
    assert old_next in refused.value.message and f"{max_age} s" in refused.value.message
    assert max_age <= wait_in(refused.value) <= max_age + 1
    clock.advance(max_age - 1)
    with pytest.raises(RotationRefused) as refused:
        keystore.rotate("ES256")
    assert 1 <= wait_in(refused.value) <= 2
    # A refusal changes nothing.
    assert states(registry, "ES256") == {"current": [old_current], "next": [old_next]}
    assert audit_events(registry, "signing_key.rotated") == []

    clock.advance(1)
    before = agency.sign_in(person, OFFLINE)
    assert kid_of(before["access_token"]) == old_current

    rotation = keystore.rotate("ES256")
    assert (rotation.alg, rotation.retired, rotation.current) == ("ES256", old_current, old_next)
    assert rotation.next not in (old_current, old_next)
    assert states(registry, "ES256") == {
        "current": [old_next],
        "retired": [old_current],
        "next": [rotation.next],
    }
    assert {old_current, old_next, rotation.next} <= set(published(app)), "the retired key stays published"
    info = {i.kid: i for i in keystore.describe()}
    assert info[old_current].retired_at is not None and info[old_next].activated_at is not None
    assert info[old_next].activated_at > info[old_current].activated_at  # type: ignore[operator]
    # Other algorithms are untouched.
    assert all(len(states(registry, alg)) == 2 for alg in ("RS256", "PS256", "EdDSA"))

    # Tokens signed before the rotation still verify; new ones carry the new kid.
    assert userinfo_status(app, before["access_token"]) == 200
    assert agency.introspect(before["access_token"])["active"] is True
    after = agency.sign_in(person, OFFLINE)
    assert kid_of(after["access_token"]) == old_next
    assert kid_of(after["id_token"]) == old_next
    assert userinfo_status(app, after["access_token"]) == 200
    refreshed = agency.refresh(before["refresh_token"])
    assert refreshed.status_code == 200 and refreshed.json is not None
    assert kid_of(refreshed.json["access_token"]) == old_next

    # The new next key waits its own cache lifetime.
    with pytest.raises(RotationRefused):
        keystore.rotate("ES256")
    rotated = audit_events(registry, "signing_key.rotated")
    assert [event["detail"] for event in rotated] == [
        {"alg": "ES256", "retired": old_current, "current": old_next}
    ]


def test_force_rotates_at_once(app: Flask, registry: Registry) -> None:
    old_current, old_next = one(registry, "RS256", "current"), one(registry, "RS256", "next")
    rotation = registry.keystore.rotate("RS256", force=True)
    assert rotation == Rotation("RS256", old_current, old_next, rotation.next)
    assert registry.keystore.current_kid("RS256") == old_next
    assert {old_current, old_next, rotation.next} <= set(published(app))


def test_rotating_an_unknown_algorithm_is_a_clean_error(registry: Registry) -> None:
    for alg in ("HS256", "none", "es256"):
        with pytest.raises(NotFound, match="unknown algorithm"):
            registry.keystore.rotate(alg, force=True)


@BOTH_BACKENDS
def test_concurrent_rotations_of_one_algorithm_have_exactly_one_winner(
    registry: Registry, clock: FrozenClock
) -> None:
    for _ in range(5):
        clock.advance(registry.settings.jwks_max_age)
        old_current, old_next = one(registry, "ES256", "current"), one(registry, "ES256", "next")
        results = together(lambda: registry.keystore.rotate("ES256"))
        won = [r for r in results if isinstance(r, Rotation)]
        lost = [r for r in results if isinstance(r, RotationRefused)]
        assert len(won) == 1 and len(lost) == 1, results
        assert (won[0].retired, won[0].current) == (old_current, old_next)
        assert one(registry, "ES256", "current") == old_next
        assert old_current in states(registry, "ES256")["retired"]
        assert won[0].next in states(registry, "ES256")["next"]
    assert len(audit_events(registry, "signing_key.rotated")) == 5


def test_a_rotation_racing_right_after_a_promotion_leaves_one_next_key(
    registry: Registry, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worst interleaving, forced: a second process rotates the moment the first has promoted."""
    keystore = registry.keystore
    clock.advance(registry.settings.jwks_max_age)
    repository = keystore._repository
    promote = repository.promote_all
    raced: list[object] = []

    def promote_then_race(*args: Any, **kwargs: Any) -> bool:
        won = promote(*args, **kwargs)
        if not raced:
            try:
                raced.append(keystore.rotate("ES256"))
            except RotationRefused as refused:
                raced.append(refused)
        return won

    monkeypatch.setattr(repository, "promote_all", promote_then_race)
    rotation = keystore.rotate("ES256")
    assert isinstance(raced[0], RotationRefused), raced
    assert states(registry, "ES256") == {
        "current": [rotation.current],
        "retired": [rotation.retired],
        "next": [rotation.next],
    }


# -- revocation ------------------------------------------------------------------------------------


def test_revoking_the_current_key_withdraws_it_and_what_it_signed_at_once(
    app: Flask, registry: Registry, clock: FrozenClock, agency: Agency, person: FlaskPerson
) -> None:
    keystore = registry.keystore
    clock.advance(registry.settings.jwks_max_age)
    older = agency.sign_in(person, OFFLINE)  # signed by the key that will be retired
    keystore.rotate("ES256")
    victim, successor = one(registry, "ES256", "current"), one(registry, "ES256", "next")
    doomed = [agency.sign_in(person, OFFLINE), agency.sign_in(person, "openid email offline_access")]
    assert all(kid_of(tokens["access_token"]) == victim for tokens in doomed)

    info = registry.key_admin.revoke(victim, reason="key material exposed in a backup", actor="security")
    assert (info.kid, info.state, info.revoke_reason) == (
        victim,
        "revoked",
        "key material exposed in a backup",
    )
    assert info.revoked_at is not None

    keys = published(app)
    assert victim not in keys, "a revoked key leaves the JWKS at once"
    assert one(registry, "ES256", "current") == successor, "the next key signs at once"
    new_next = one(registry, "ES256", "next")
    assert new_next in keys and successor in keys

    for tokens in doomed:
        assert userinfo_status(app, tokens["access_token"]) == 401
        assert agency.introspect(tokens["access_token"])["active"] is False
        assert agency.introspect(tokens["refresh_token"], "refresh_token") == {"active": False}
        assert_refused(agency.refresh(tokens["refresh_token"]))

    # Tokens signed by other keys are unaffected; new ones are signed by the successor.
    assert userinfo_status(app, older["access_token"]) == 200
    survivor = agency.refresh(older["refresh_token"])
    assert survivor.status_code == 200 and survivor.json is not None
    assert kid_of(survivor.json["access_token"]) == successor
    assert userinfo_status(app, survivor.json["access_token"]) == 200
    fresh = agency.sign_in(person, OFFLINE)
    assert kid_of(fresh["access_token"]) == successor
    assert userinfo_status(app, fresh["access_token"]) == 200

    revoked = audit_events(registry, "signing_key.revoked")
    assert [event["detail"] for event in revoked] == [
        {"kid": victim, "alg": "ES256", "was": "current", "reason": "key material exposed in a backup"}
    ]
    families = [e for e in audit_events(registry, "token.revoked") if e["detail"].get("kid") == victim]
    assert len(families) == 1 and families[0]["detail"]["refresh_families"] == 2


def test_revoking_a_retired_key(
    app: Flask, registry: Registry, clock: FrozenClock, agency: Agency, person: FlaskPerson
) -> None:
    clock.advance(registry.settings.jwks_max_age)
    old = agency.sign_in(person, OFFLINE)
    rotation = registry.keystore.rotate("ES256")
    new = agency.sign_in(person, OFFLINE)
    assert rotation.retired == kid_of(old["access_token"])

    registry.key_admin.revoke(rotation.retired, reason="retired key found on a laptop")
    assert rotation.retired not in published(app)
    assert states(registry, "ES256") == {
        "current": [rotation.current],
        "next": [rotation.next],
        "revoked": [rotation.retired],
    }
    assert userinfo_status(app, old["access_token"]) == 401
    assert_refused(agency.refresh(old["refresh_token"]))
    assert userinfo_status(app, new["access_token"]) == 200
    assert agency.refresh(new["refresh_token"]).status_code == 200


def test_revoking_the_next_key_publishes_a_fresh_one_that_waits_its_turn(
    app: Flask, registry: Registry, clock: FrozenClock
) -> None:
    keystore = registry.keystore
    current, upcoming = one(registry, "PS256", "current"), one(registry, "PS256", "next")
    clock.advance(registry.settings.jwks_max_age)

    keystore.revoke(upcoming, reason="generated on a compromised host")
    replacement = one(registry, "PS256", "next")
    assert replacement != upcoming
    assert one(registry, "PS256", "current") == current, "the signing key does not change"
    keys = published(app)
    assert upcoming not in keys and replacement in keys

    # The replacement is newly published: rotation waits for it, then promotes it, never the revoked key.
    with pytest.raises(RotationRefused):
        keystore.rotate("PS256")
    clock.advance(registry.settings.jwks_max_age)
    assert keystore.rotate("PS256").current == replacement


@pytest.mark.parametrize(
    ("kid", "reason", "error", "says"),
    [
        ("no-such-kid", "compromised", NotFound, "no-such-kid"),
        (None, "", InvalidInput, "reason"),
        (None, "   ", InvalidInput, "reason"),
    ],
)
def test_revocation_errors_are_clean_and_change_nothing(
    registry: Registry, kid: str | None, reason: str, error: type[Exception], says: str
) -> None:
    kid = kid or one(registry, "ES256", "current")
    before = registry.keystore.describe()
    with pytest.raises(error, match=says):
        registry.key_admin.revoke(kid, reason=reason)
    assert registry.keystore.describe() == before
    assert audit_events(registry, "signing_key.revoked") == []


def test_a_revoked_key_cannot_be_revoked_again(registry: Registry) -> None:
    kid = one(registry, "EdDSA", "current")
    registry.keystore.revoke(kid, reason="first")
    with pytest.raises(NotFound, match=kid):
        registry.keystore.revoke(kid, reason="second")
    assert [e["detail"]["reason"] for e in audit_events(registry, "signing_key.revoked")] == ["first"]


# -- per-client ID token algorithms ----------------------------------------------------------------


def pinned_agency(app: Flask, registry: Registry, alg: str, *, port: int) -> Agency:
    """A client that registered ``id_token_signed_response_alg`` = ``alg``."""
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    new = registry.clients.create(
        name=f"Agency pinning {alg}",
        redirect_uris=[redirect_uri],
        grant_types=("authorization_code", "refresh_token"),
        scope=OFFLINE,
        id_token_alg=alg,
    )
    return Agency(app, new.client.client_id, new.client_secret, redirect_uri)


def verify_id_token(
    app: Flask, registry: Registry, token: str, *, alg: str, client_id: str
) -> dict[str, Any]:
    """Verify as an agency would: PyJWT, the key from /jwks.json by kid, only ``alg`` allowed."""
    header = jwt.get_unverified_header(token)
    assert header["alg"] == alg
    key = jwt.PyJWKSet.from_dict({"keys": list(published(app).values())})[header["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=[alg], audience=client_id, issuer=registry.settings.issuer
    )
    return claims


@pytest.mark.parametrize("alg", SUPPORTED_ALGS)
def test_a_client_pinning_an_algorithm_gets_id_tokens_signed_with_it(
    app: Flask, registry: Registry, alg: str, person: FlaskPerson
) -> None:
    client = pinned_agency(app, registry, alg, port=9221)
    tokens = client.sign_in(person, "openid")
    assert kid_of(tokens["id_token"]) == registry.keystore.current_kid(alg)
    claims = verify_id_token(app, registry, tokens["id_token"], alg=alg, client_id=client.client_id)
    assert claims["aud"] == client.client_id
    # An agency pinned to another algorithm refuses the token.
    other = "ES256" if alg != "ES256" else "RS256"
    key = jwt.PyJWKSet.from_dict({"keys": list(published(app).values())})[kid_of(tokens["id_token"])]
    with pytest.raises(jwt.InvalidAlgorithmError):
        jwt.decode(tokens["id_token"], key.key, algorithms=[other], audience=client.client_id)
    # Access tokens stay ES256 whatever the ID token uses.
    assert jwt.get_unverified_header(tokens["access_token"])["alg"] == "ES256"


@pytest.mark.parametrize("alg", ["PS256", "EdDSA"])
def test_a_client_pinning_an_algorithm_always_has_a_current_key_for_it(
    app: Flask, registry: Registry, alg: str, person: FlaskPerson
) -> None:
    client = pinned_agency(app, registry, alg, port=9211)
    for _ in range(3):  # revoke every key that signs, again and again
        registry.keystore.revoke(one(registry, alg, "current"), reason="drill")
        one(registry, alg, "next")
        tokens = client.sign_in(person, "openid")
        assert kid_of(tokens["id_token"]) == one(registry, alg, "current")
        verify_id_token(app, registry, tokens["id_token"], alg=alg, client_id=client.client_id)


def test_an_unsupported_id_token_algorithm_is_refused(registry: Registry) -> None:
    for alg in ("none", "HS256", "RS512"):
        with pytest.raises(InvalidInput):
            registry.clients.create(name="Odd", redirect_uris=["http://127.0.0.1:9231/cb"], id_token_alg=alg)


# -- pruning ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttls", "lifetime"),
    [({}, 600), ({"access_token_ttl": 900, "id_token_ttl": 300}, 900)],
    ids=["id-token-longest", "access-token-longest"],
)
def test_prune_removes_retired_keys_only_once_every_token_they_signed_has_expired(
    custom_registry: Callable[..., Registry], clock: FrozenClock, ttls: dict[str, int], lifetime: int
) -> None:
    registry = custom_registry(**ttls)
    keystore = registry.keystore
    rotation = keystore.rotate("ES256", force=True)
    revoked = one(registry, "EdDSA", "current")
    keystore.revoke(revoked, reason="drill")
    live = {i.kid for i in keystore.describe() if i.state in ("current", "next")}

    clock.advance(lifetime + 60 - 1)
    assert keystore.prune() == []
    assert rotation.retired in {i.kid for i in keystore.describe()}

    clock.advance(2)
    assert keystore.prune() == [rotation.retired]
    remaining = {i.kid: i.state for i in keystore.describe()}
    assert rotation.retired not in remaining
    assert rotation.retired not in {k["kid"] for k in keystore.jwks()["keys"]}
    assert live <= set(remaining), "current and next keys are never pruned"
    assert remaining[revoked] == "revoked", "a revoked key stays on record"
    assert keystore.prune() == []
    assert [e["detail"] for e in audit_events(registry, "signing_key.pruned")] == [{"kid": rotation.retired}]


# -- the automatic schedule ------------------------------------------------------------------------


def test_the_schedule_rotates_keys_older_than_the_setting_when_their_next_key_is_ready(
    registry: Registry, clock: FrozenClock
) -> None:
    keystore = registry.keystore
    schedule = KeySchedule(keystore, rotation_days=30)
    first = {alg: keystore.current_kid(alg) for alg in SUPPORTED_ALGS}

    assert schedule.tick() == 0
    clock.advance(30 * DAY - 60)
    assert schedule.tick() == 0
    assert {alg: keystore.current_kid(alg) for alg in SUPPORTED_ALGS} == first

    clock.advance(60)
    assert schedule.tick() == len(SUPPORTED_ALGS)
    second = {alg: keystore.current_kid(alg) for alg in SUPPORTED_ALGS}
    assert all(second[alg] != first[alg] for alg in SUPPORTED_ALGS)
    assert schedule.tick() == 0, "the new current keys are young"

    # 30 days on, ES256's next key is brand new (its predecessor was revoked): ES256 waits for it.
    clock.advance(30 * DAY)
    keystore.revoke(one(registry, "ES256", "next"), reason="drill")
    assert schedule.tick() == len(SUPPORTED_ALGS) - 1
    assert keystore.current_kid("ES256") == second["ES256"]
    clock.advance(registry.settings.jwks_max_age)
    assert schedule.tick() == 1
    assert keystore.current_kid("ES256") != second["ES256"]

    # The tick also prunes: the keys retired 30 days ago are gone, the ones retired now stay.
    described = keystore.describe()
    assert not {info.kid for info in described} & set(first.values())
    assert {info.kid for info in described if info.state == "retired"} == set(second.values())


def test_rotate_due_takes_fractional_days(registry: Registry, clock: FrozenClock) -> None:
    clock.advance(DAY / 2 - 1)
    assert registry.keystore.rotate_due(older_than_days=0.5) == []
    clock.advance(1)
    rotated = registry.keystore.rotate_due(older_than_days=0.5)
    assert sorted(r.alg for r in rotated) == sorted(SUPPORTED_ALGS)


def test_the_server_runs_the_schedule_only_when_configured(
    custom_registry: Callable[..., Registry],
) -> None:
    off = create_app(registry=custom_registry())
    assert "hawiya.key_schedule" not in off.extensions
    on = create_app(registry=custom_registry(key_rotation_days=30))
    schedule = on.extensions["hawiya.key_schedule"]
    try:
        assert isinstance(schedule, KeySchedule)
    finally:
        schedule.stop()


# -- audit and secrecy -----------------------------------------------------------------------------


def test_every_change_is_audited_and_no_key_material_reaches_the_audit_trail_or_the_log(
    app: Flask,
    registry: Registry,
    clock: FrozenClock,
    agency: Agency,
    person: FlaskPerson,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="idp")
    keystore = registry.keystore
    secrets_seen = private_values(registry)

    agency.sign_in(person, OFFLINE)
    keystore.rotate("ES256", force=True)
    pinned_agency(app, registry, "EdDSA", port=9241).sign_in(person, "openid")
    registry.key_admin.revoke(one(registry, "RS256", "current"), reason="drill")
    clock.advance(registry.settings.jwks_max_age)
    KeySchedule(keystore, rotation_days=0.001).tick()
    secrets_seen |= private_values(registry)
    clock.advance(3600)
    keystore.prune()
    new_master = dataclasses.replace(
        registry.settings,
        master_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        previous_master_key=registry.settings.master_key,
    )
    rotated = make_registry(new_master, clock)
    try:
        assert rotated.keystore.reseal() > 0
        secrets_seen |= private_values(rotated)
    finally:
        rotated.close()

    for event in (
        "signing_key.created",
        "signing_key.rotated",
        "signing_key.revoked",
        "signing_key.pruned",
        "master_key.rotated",
    ):
        assert audit_events(registry, event), f"no {event} event"
    trail = json.dumps([(r.event, r.detail) for r in AuditRepository(registry.db).recent(limit=1000)])
    assert len(secrets_seen) >= 4 * len(SUPPORTED_ALGS)
    assert not [value for value in secrets_seen if value in trail]
    assert caplog.records, "nothing was logged: the check below would prove nothing"
    logged = caplog.text
    assert not [value for value in secrets_seen if value in logged]
    assert "PRIVATE" not in logged


# -- key generation --------------------------------------------------------------------------------


@pytest.mark.real_keygen
def test_new_keys_are_rsa_3072_p256_and_ed25519(registry: Registry) -> None:
    keystore = registry.keystore
    keystore.rotate("PS256", force=True)
    expected = {"RS256": ("RSA", 3072), "PS256": ("RSA", 3072), "ES256": ("EC", "P-256")}
    expected["EdDSA"] = ("OKP", "Ed25519")
    moduli = set()
    for key in keystore.jwks()["keys"]:
        kty, size = expected[key["alg"]]
        assert key["kty"] == kty
        if kty == "RSA":
            modulus = jwt.PyJWK(key).key.key_size
            assert modulus == size, f"{key['kid']} is {modulus}-bit"
            moduli.add(key["n"])
        else:
            assert key["crv"] == size
    assert len(moduli) == 5, "every RSA key is its own"
    jwks = {key["kid"]: key for key in keystore.jwks()["keys"]}
    for alg in SUPPORTED_ALGS:  # each private half belongs to its published public half
        kid, private = keystore.signing_key(alg)
        public = private.as_dict(private=False)
        assert {name: jwks[kid][name] for name in public} == public
        token = registry.signer.sign({"iss": "x"}, alg=alg)
        assert kid_of(token) == kid
        assert registry.verifier.verify(token, typ="jwt")[1] == {"iss": "x"}
