"""Recovery codes: ten single-use codes, stored hashed, shown once, regenerable; signing in with one
reaches substantial, is audited, and tells the person how many remain."""

from __future__ import annotations

import hashlib

import pytest
from flask import Flask
from sqlalchemy import text

from idp.clock import FrozenClock
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS
from tests.support.audit import audit_events
from tests.support.mfa import MfaPerson, Rp, add_app_in_account, open_account, recovery_codes_on, submit

SUBSTANTIAL = "urn:hawiya:loa:substantial"


@pytest.fixture
def codes(citizen: MfaPerson, clock: FrozenClock) -> list[str]:
    """The citizen's recovery codes (from adding an app); she is signed out afterwards."""
    add_app_in_account(citizen)
    submit(citizen, citizen.get("/account"), "/signout")
    clock.advance(120)
    assert len(citizen.recovery_codes) == 10
    return list(citizen.recovery_codes)


def _factor_page(person: MfaPerson, rp: Rp, state: str = "s-1") -> object:
    page = person.open_page(rp.url(state), "/signin")
    factor = person.follow(person.sign_in(page))
    assert not isinstance(factor, str) and factor.request.path == "/signin/factor"
    return factor


def test_codes_look_right(codes: list[str]) -> None:
    for code in codes:
        assert len(code) == 14 and code.count("-") == 2
        assert set(code.replace("-", "")) <= set("abcdefghjkmnpqrstuvwxyz23456789")


@BOTH_BACKENDS
def test_sign_in_with_a_recovery_code(
    citizen: MfaPerson, rp: Rp, codes: list[str], registry: Registry
) -> None:
    citizen.answer = lambda: codes[3].upper().replace("-", " ")  # case and separators do not matter
    claims = rp.id_token(citizen.go(rp.url()))
    assert claims["acr"] == SUBSTANTIAL
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    used_page = next(p for p in citizen.pages if 'id="codes-left"' in p.get_data(as_text=True))
    assert "Recovery codes left: 9" in used_page.get_data(as_text=True)
    (used,) = audit_events(registry, "recovery_code.used")
    assert used["detail"] == {"remaining": 9}
    assert audit_events(registry, "factor.succeeded")[0]["detail"]["method"] == "recovery_code"


def test_a_recovery_code_works_once(app: Flask, citizen: MfaPerson, rp: Rp, codes: list[str]) -> None:
    citizen.answer = lambda: codes[0]
    rp.id_token(citizen.go(rp.url()))
    again = MfaPerson(app, "citizen", citizen.password, clock=citizen.clock)
    refused = again.type_code(_factor_page(again, rp), codes[0])  # type: ignore[arg-type]
    assert refused.status_code == 401
    assert "That code is not correct" in refused.get_data(as_text=True)
    # Another one still works, and the count goes down.
    again.answer = lambda: codes[1]
    rp.id_token(again.go(rp.url("s-2")), "s-2")
    assert any("Recovery codes left: 8" in p.get_data(as_text=True) for p in again.pages)
    account = open_account(again).get_data(as_text=True)
    assert "Recovery codes left: 8 of 10" in account


def test_few_codes_left_warns(citizen: MfaPerson, rp: Rp, codes: list[str], app: Flask) -> None:
    for index in range(7):
        person = MfaPerson(app, "citizen", citizen.password, clock=citizen.clock)
        person.answer = lambda index=index: codes[index]  # type: ignore[misc]
        rp.id_token(person.go(rp.url(f"s-{index}")), f"s-{index}")
    last = next(p for p in person.pages if 'id="codes-left"' in p.get_data(as_text=True))
    html = last.get_data(as_text=True)
    assert "Recovery codes left: 3" in html and "running out of recovery codes" in html


def test_new_codes_replace_the_old_ones(
    app: Flask, citizen: MfaPerson, rp: Rp, codes: list[str], registry: Registry
) -> None:
    account = open_account(citizen)
    fresh = submit(citizen, account, "/account/recovery-codes")
    assert fresh.status_code == 200
    new_codes = recovery_codes_on(fresh.get_data(as_text=True))
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)
    assert len(audit_events(registry, "recovery_codes.generated")) == 2
    submit(citizen, citizen.get("/account"), "/signout")
    other = MfaPerson(app, "citizen", citizen.password, clock=citizen.clock)
    assert other.type_code(_factor_page(other, rp), codes[5]).status_code == 401  # type: ignore[arg-type]
    other.answer = lambda: new_codes[5]
    assert rp.id_token(other.go(rp.url("s-2")), "s-2")["acr"] == SUBSTANTIAL


@BOTH_BACKENDS
def test_codes_are_stored_hashed(codes: list[str], registry: Registry) -> None:
    with registry.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT code_hash FROM recovery_codes")).scalars().all()
    assert len(stored) == 10 and len(set(stored)) == 10
    dump = " ".join(stored)
    for code in codes:
        bare = code.replace("-", "")
        assert code not in dump and bare not in dump
        # Keyed (HMAC under an instance secret), so not even a plain SHA-256 of the code matches.
        assert hashlib.sha256(bare.encode()).hexdigest() not in stored


def test_codes_are_not_shown_again(citizen: MfaPerson, codes: list[str]) -> None:
    html = open_account(citizen).get_data(as_text=True)
    assert not any(code in html for code in codes)
    assert "Recovery codes left: 10 of 10" in html
