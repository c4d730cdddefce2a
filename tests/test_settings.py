"""Settings bounds come from the field definitions: every numeric setting declares the values it
may take (``bounded``), so none can be forgotten and none can switch a protection off.
Reproduction: ``HAWIYA_SIGNIN_THROTTLE_WINDOW=0`` and ``HAWIYA_SIGNIN_MAX_FAILURES=0`` were
accepted by a hand-written list of checks and turned sign-in throttling off."""

from __future__ import annotations

import dataclasses

import pytest

from idp.errors import ConfigurationError
from idp.settings import Settings

NUMERIC = [spec for spec in dataclasses.fields(Settings) if spec.type in ("int", "float")]


def test_every_numeric_setting_declares_its_bounds() -> None:
    assert NUMERIC, "Settings has numeric fields"
    undeclared = [spec.name for spec in NUMERIC if "bounds" not in spec.metadata]
    assert not undeclared, f"declare these with bounded(): {undeclared}"


@pytest.mark.parametrize("name", ["signin_throttle_window", "signin_max_failures"])
def test_throttling_cannot_be_switched_off(name: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({f"HAWIYA_{name.upper()}": "0"})
    assert f"HAWIYA_{name.upper()} must be between 1 and" in str(refused.value)


@pytest.mark.parametrize("spec", NUMERIC, ids=[spec.name for spec in NUMERIC])
def test_each_numeric_setting_refuses_values_outside_its_bounds(spec: dataclasses.Field[object]) -> None:
    least, most = spec.metadata["bounds"]
    step = 1 if spec.type == "int" else 0.0001
    for outside in (least - step, most + step):
        raw = str(int(outside)) if spec.type == "int" else repr(outside)
        with pytest.raises(ConfigurationError, match=f"HAWIYA_{spec.name.upper()} must be between"):
            Settings.from_env({f"HAWIYA_{spec.name.upper()}": raw})
    assert least <= spec.default <= most  # type: ignore[operator]


def test_the_defaults_are_valid() -> None:
    assert Settings.from_env({}).signin_throttle_window == 900


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"HAWIYA_PASSWORD_MIN_LENGTH": "15", "HAWIYA_PASSWORD_MIN_LENGTH_MFA": "16"}, "LENGTH_MFA"),
        ({"HAWIYA_OUTBOUND_DEADLINE": "1", "HAWIYA_CLIENT_JWKS_WAIT": "2"}, "CLIENT_JWKS_WAIT"),
        ({"HAWIYA_CLIENT_JWKS_MIN_TTL": "600", "HAWIYA_CLIENT_JWKS_TTL": "60"}, "CLIENT_JWKS_MIN_TTL"),
        ({"HAWIYA_CLIENT_JWKS_BACKOFF": "700", "HAWIYA_CLIENT_JWKS_BACKOFF_MAX": "600"}, "JWKS_BACKOFF"),
    ],
)
def test_settings_that_depend_on_each_other_are_checked_together(env: dict[str, str], says: str) -> None:
    """Each value within its own bounds, the pair still contradictory: refused, naming the setting."""
    with pytest.raises(ConfigurationError, match=says):
        Settings.from_env(env)
