"""What a test needs from the machine (a server, a browser, node): the one policy for when it is
missing. Locally the test skips with the reason; under ``CI=true`` it fails, so a green CI run
never hides a test that did not run."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(message: str) -> NoReturn:
    """Skip (locally) or fail (CI) because ``message`` names something missing on this machine."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"must run in CI: {message}")
    pytest.skip(message)
