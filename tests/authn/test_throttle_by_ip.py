"""One address spraying many accounts is stopped even though each account stays under its limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from idp.clock import FrozenClock
from idp.errors import AuthenticationFailed, TooManyAttempts
from tests.conftest import PASSWORD, Backend, initialised, make_settings, populate
from tests.support.audit import audit_events

SPRAYER = "198.51.100.7"


def test_password_spraying_from_one_address_is_throttled(
    tmp_path: Path, backend: Backend, clock: FrozenClock
) -> None:
    registry = initialised(make_settings(tmp_path, backend, ip_max_failures=3, signin_max_failures=10), clock)
    try:
        populate(registry)
        for username in ("citizen", "resident", "visitor"):
            with pytest.raises(AuthenticationFailed):
                registry.passwords.authenticate(username, "not the password at all", ip=SPRAYER)
        # The address is spent: even a right password for a fourth account is refused from it...
        with pytest.raises(TooManyAttempts):
            registry.passwords.authenticate("staff", PASSWORD, ip=SPRAYER)
        assert audit_events(registry, "signin.throttled")
        # ...while the same account signs in from another address, and the window ends.
        assert registry.passwords.authenticate("staff", PASSWORD, ip="203.0.113.9").account_id
        clock.advance(registry.settings.signin_throttle_window + 1)
        assert registry.passwords.authenticate("citizen", PASSWORD, ip=SPRAYER).account_id
    finally:
        registry.close()


def test_a_success_does_not_clear_the_address_count(
    tmp_path: Path, backend: Backend, clock: FrozenClock
) -> None:
    registry = initialised(make_settings(tmp_path, backend, ip_max_failures=2), clock)
    try:
        populate(registry)
        with pytest.raises(AuthenticationFailed):
            registry.passwords.authenticate("citizen", "wrong password, long enough", ip=SPRAYER)
        registry.passwords.authenticate("citizen", PASSWORD, ip=SPRAYER)
        with pytest.raises(AuthenticationFailed):
            registry.passwords.authenticate("resident", "wrong password, long enough", ip=SPRAYER)
        with pytest.raises(TooManyAttempts):
            registry.passwords.authenticate("visitor", PASSWORD, ip=SPRAYER)
    finally:
        registry.close()
