"""What operators see of TOTP: ``hawiya demo`` gives the demo staff member a key (printed, and kept in
instance/demo.json) so staff sign-in works in ``make run``; and master-key rotation re-seals TOTP
secrets, so nobody loses their second factor when the old master key goes."""

from __future__ import annotations

import json
from pathlib import Path

import pyotp
from flask import Flask

from idp.app import create_app
from idp.clock import FrozenClock
from idp.settings import Settings
from tests.conftest import make_registry
from tests.support.cli import new_instance, succeeded
from tests.support.mfa import MfaPerson, Rp


def _hawiya(folder: Path, *args: str) -> str:
    return new_instance(folder).ok(*args)


def _settings(folder: Path) -> Settings:
    return Settings(
        instance_path=folder / "instance",
        master_key_file=folder / "keys" / "master.key",
        database_url=f"sqlite:///{folder / 'hawiya.db'}",
    )


def test_demo_staff_signs_in_with_the_printed_key(tmp_path: Path) -> None:
    _hawiya(tmp_path, "init")
    out = succeeded(new_instance(tmp_path).run_process("demo"))  # the real entry point
    saved = json.loads((tmp_path / "instance" / "demo.json").read_text())
    key = saved["totp"]["staff"]
    assert f"staff     TOTP key {key}" in out
    assert f"otpauth://totp/Hawiya:staff?secret={key}" in out
    # A second run keeps the same key (the account already has it) and prints it again.
    assert f"TOTP key {key}" in _hawiya(tmp_path, "demo")

    clock = FrozenClock()
    registry = make_registry(_settings(tmp_path), clock)
    try:
        app: Flask = create_app(registry=registry, start_schedule=False)
        client = registry.clients.show("demo-confidential")
        rp = Rp(
            app, registry, client.client_id, saved["clients"]["demo-confidential"], client.redirect_uris[0]
        )
        staff = MfaPerson(app, "staff", saved["people"]["staff"], clock=clock, secret=key)
        claims = rp.id_token(staff.go(rp.url(scope="openid")))
        assert [page.request.path for page in staff.pages][:2] == ["/signin", "/signin/factor"]
        assert claims["acr"] == "urn:hawiya:loa:substantial"
    finally:
        registry.close()


def test_master_key_rotation_reseals_totp_secrets(tmp_path: Path) -> None:
    _hawiya(tmp_path, "init")
    _hawiya(tmp_path, "demo")
    key = json.loads((tmp_path / "instance" / "demo.json").read_text())["totp"]["staff"]
    old_master = (tmp_path / "keys" / "master.key").read_text()
    out = _hawiya(tmp_path, "keys", "rotate-master")
    assert "re-sealed" in out
    assert (tmp_path / "keys" / "master.key").read_text() != old_master
    assert not (tmp_path / "keys" / "master.key.previous").exists()

    clock = FrozenClock()
    registry = make_registry(_settings(tmp_path), clock)
    try:
        staff = registry.accounts.by_username("staff")
        assert staff is not None
        # Only the new master key exists now, and the staff member's code still checks.
        assert registry.authenticators.verify_totp(staff.id, pyotp.TOTP(key).at(int(clock.now())))
        assert registry.authenticators.reseal() == 0  # nothing left under the old key
    finally:
        registry.close()


def test_clients_can_be_registered_with_a_minimum_level(tmp_path: Path) -> None:
    _hawiya(tmp_path, "init")
    out = _hawiya(
        tmp_path,
        "clients",
        "create",
        "--name",
        "Tax Authority",
        "--redirect-uri",
        "https://tax.example/callback",
        "--min-acr",
        "urn:hawiya:loa:substantial",
        "--json",
    )
    assert json.loads(out)["min_acr"] == "urn:hawiya:loa:substantial"
