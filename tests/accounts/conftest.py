"""Fixtures for the multi-factor tests: the agency of the test world and people at browsers."""

from __future__ import annotations

import pytest
from flask import Flask

from idp.clock import FrozenClock
from tests.conftest import PASSWORD, World
from tests.support.mfa import MfaPerson, Rp


@pytest.fixture
def rp(app: Flask, world: World) -> Rp:
    """The confidential client of the test world."""
    return Rp.of_world(app, world)


@pytest.fixture
def citizen(app: Flask, world: World, clock: FrozenClock) -> MfaPerson:
    """The citizen at a fresh browser (no second factor yet)."""
    return MfaPerson(app, "citizen", PASSWORD, clock=clock)


@pytest.fixture
def staff(app: Flask, world: World, clock: FrozenClock) -> MfaPerson:
    """The staff member at a fresh browser (no second factor yet: must enrol one)."""
    return MfaPerson(app, "staff", PASSWORD, clock=clock)
