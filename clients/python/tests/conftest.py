"""Fixtures every test of the library shares: a clock the test moves, an HTTP stand-in, and a
provider (discovery, JWKS, token endpoint) served through it (rp_fakes)."""

from __future__ import annotations

import pytest
from rp_fakes import FakeClock, FakeHttp, Provider


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def http() -> FakeHttp:
    return FakeHttp()


@pytest.fixture
def provider(http: FakeHttp, clock: FakeClock) -> Provider:
    return Provider(http, clock)
