"""Fixtures of the conformance mirror: the suite's relying party, in the response mode under test.

Every module gets its own IdP (registry, database, ephemeral store) on both backends; signing keys
come from the test key pool (tests/conftest.py).
"""

from __future__ import annotations

import pytest
from flask import Flask

from idp.clock import FrozenClock
from tests.conformance.rp import ConformanceRP
from tests.conftest import World


@pytest.fixture
def rp(app: Flask, world: World, clock: FrozenClock, response_mode: str) -> ConformanceRP:
    """The suite's client: the world's confidential client (client_secret_basic, RS256)."""
    return ConformanceRP.of(app, world, clock, response_mode)
