"""The service behind the address-of-record check (idp/accounts/first_factor.py), without pages: a
code works once, in its own session, within its time, and is mailed in both languages."""

from __future__ import annotations

import re

import pytest

from idp.accounts.first_factor import CODE_TTL, MAX_SENDS, NoAddressOfRecord
from idp.clock import FrozenClock
from idp.errors import InvalidCode, TooManyAttempts
from idp.registry import Registry
from tests.conftest import World
from tests.support.outbox import body, to


def _code(registry: Registry) -> str:
    mail = body(to(registry.settings.outbox_path, "fatima@example.org")[-1])
    assert "رمز التأكيد" in mail and "Your confirmation code" in mail  # both languages
    found = re.search(r"\b(\d{6})\b", mail)
    assert found
    return found.group(1)


def test_a_code_is_spent_once(registry: Registry, world: World) -> None:
    service = registry.first_factor
    person = registry.accounts.get(world.citizen_id)
    assert service.send(person, "sid-1") == "fatima@example.org"
    code = _code(registry)
    assert not service.confirmed(person.id, "sid-1")
    service.confirm(person.id, "sid-1", code)
    assert service.confirmed(person.id, "sid-1") and not service.confirmed(person.id, "sid-2")
    with pytest.raises(InvalidCode):
        service.confirm(person.id, "sid-1", code)  # consumed: a twin request finds nothing
    service.consume(person.id, "sid-1")
    assert not service.confirmed(person.id, "sid-1")


def test_a_code_is_for_its_session_and_its_time(registry: Registry, world: World, clock: FrozenClock) -> None:
    service = registry.first_factor
    person = registry.accounts.get(world.citizen_id)
    service.send(person, "sid-1")
    code = _code(registry)
    with pytest.raises(InvalidCode):
        service.confirm(person.id, "sid-2", code)
    clock.advance(CODE_TTL + 1)
    with pytest.raises(InvalidCode):
        service.confirm(person.id, "sid-1", code)


def test_mails_are_limited(registry: Registry, world: World) -> None:
    person = registry.accounts.get(world.citizen_id)
    for _ in range(MAX_SENDS):
        registry.first_factor.send(person, "sid-1")
    with pytest.raises(TooManyAttempts):
        registry.first_factor.send(person, "sid-1")


def test_no_verified_address_no_code(registry: Registry, world: World) -> None:
    resident = registry.accounts.by_username("resident")
    assert resident is not None
    with pytest.raises(NoAddressOfRecord):
        registry.first_factor.send(resident, "sid-1")
