"""A client's minimum proofing level: how well the person's identity was proven (self_asserted <
document_check < counter), enforced at authorization like the minimum acr but separately from it:
signing in more strongly never makes up for an identity that was not proven."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from idp.accounts.identity import PROOFING_LEVELS, proofing_meets
from idp.clock import FrozenClock
from idp.errors import InvalidInput
from idp.registry import Registry
from tests.conftest import PASSWORD, World
from tests.support.cli import new_instance
from tests.support.identity import national_id
from tests.support.mfa import MfaPerson, Rp

REDIRECT = "http://127.0.0.1:9071/callback"


def _service(app: Flask, registry: Registry, min_proofing: str | None) -> Rp:
    new = registry.clients.create(name="Land Registry", redirect_uris=[REDIRECT], min_proofing=min_proofing)
    assert new.client_secret is not None and new.client.min_proofing == min_proofing
    return Rp(app, registry, new.client.client_id, new.client_secret, REDIRECT)


def _person(registry: Registry, username: str, proofing_level: str, seed: int) -> None:
    registry.accounts.create(
        account_type="citizen",
        username=username,
        password=PASSWORD,
        national_id=national_id(seed),
        proofing_level=proofing_level,
    )


def test_the_levels_are_ordered_weakest_first() -> None:
    assert PROOFING_LEVELS == ("self_asserted", "document_check", "counter")
    assert proofing_meets("counter", "document_check")
    assert proofing_meets("document_check", "document_check")
    assert not proofing_meets("document_check", "counter")
    assert not proofing_meets("self_asserted", "document_check")
    assert proofing_meets("self_asserted", None)


def test_a_person_proven_well_enough_gets_a_code(
    app: Flask, registry: Registry, world: World, clock: FrozenClock
) -> None:
    land = _service(app, registry, "document_check")
    # The world's citizen was proven at a service counter: stronger than a document check.
    claims = land.id_token(MfaPerson(app, "citizen", PASSWORD, clock=clock).go(land.url()))
    assert claims["acr"] == "urn:hawiya:loa:low"


@pytest.mark.parametrize("level", ["self_asserted", "document_check"])
def test_a_person_proven_less_is_refused_with_its_own_description(
    app: Flask, registry: Registry, world: World, clock: FrozenClock, level: str
) -> None:
    land = _service(app, registry, "counter")
    _person(registry, "weakly", level, 61)
    params = land.back(MfaPerson(app, "weakly", PASSWORD, clock=clock).go(land.url()))
    assert "code" not in params
    assert params["error"] == "unmet_authentication_requirements"
    assert "identity is not proven" in params["error_description"]
    assert "counter" in params["error_description"]


def test_the_same_person_reaches_a_client_without_a_minimum(
    app: Flask, registry: Registry, world: World, clock: FrozenClock
) -> None:
    open_service = _service(app, registry, None)
    _person(registry, "selfmade", "self_asserted", 62)
    assert "sub" in open_service.id_token(
        MfaPerson(app, "selfmade", PASSWORD, clock=clock).go(open_service.url())
    )


def test_an_unknown_minimum_is_refused(registry: Registry) -> None:
    with pytest.raises(InvalidInput, match="minimum proofing level"):
        registry.clients.create(name="X", redirect_uris=[REDIRECT], min_proofing="notarised")


def test_the_cli_registers_a_minimum_proofing_level(tmp_path: Path) -> None:
    instance = new_instance(tmp_path)
    instance.ok("init")
    created = instance.json(
        "clients", "create", "--name", "Courts", "--redirect-uri", "https://courts.example/cb",
        "--min-proofing", "counter",
    )  # fmt: skip
    assert created["min_proofing"] == "counter"
    assert instance.json("clients", "show", created["client_id"])["min_proofing"] == "counter"
    refused = instance.run(
        "clients", "create", "--name", "Courts", "--redirect-uri", "https://courts.example/cb",
        "--min-proofing", "notarised",
    )  # fmt: skip
    assert refused.returncode == 2 and "notarised" in refused.stderr
