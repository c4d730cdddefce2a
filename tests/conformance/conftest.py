"""Fixtures of the conformance mirror: the suite's relying party, in the response mode under test.

Every module gets its own IdP (registry, database, ephemeral store) on both backends. Making one
costs a 3072-bit RSA key generation (about 0.3 s, most of a test's cost); the modules test the
protocol, not key generation (tests/keys does), so here every IdP signs with one RSA key generated
once per run. Its kid, sealing, storage and publication stay each IdP's own.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from flask import Flask
from joserfc.jwk import RSAKey

from idp.clock import FrozenClock
from idp.keys import keystore
from tests.conformance.rp import ConformanceRP
from tests.conftest import World

_GENERATE_RSA_KEY = RSAKey.generate_key
#: cryptography validates an RSA private key each time one is loaded (~0.1 s at 3072 bits), so the
#: keystore's loading of the shared key (when it unseals it to sign) is remembered as well.
_IMPORT_ONCE = cache(keystore._import)


@cache
def _rsa_key(key_size: int) -> RSAKey:
    return _GENERATE_RSA_KEY(key_size, private=True)


def _pooled_rsa_key(
    cls: type[RSAKey],
    key_size: int = 2048,
    parameters: Any = None,
    private: bool = True,
    auto_kid: bool = False,
) -> RSAKey:
    assert private and parameters is None and not auto_kid, "only the keystore's call is pooled"
    return _rsa_key(key_size)


@pytest.fixture(autouse=True)
def _one_rsa_key_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RSAKey, "generate_key", classmethod(_pooled_rsa_key))
    monkeypatch.setattr(keystore, "_import", _IMPORT_ONCE)


@pytest.fixture
def rp(app: Flask, world: World, clock: FrozenClock, response_mode: str) -> ConformanceRP:
    """The suite's client: the world's confidential client (client_secret_basic, RS256)."""
    return ConformanceRP.of(app, world, clock, response_mode)
