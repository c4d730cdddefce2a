"""Staff never get an operator-set password: ``users create --type staff --password-stdin`` is
refused (one clean line, exit 2) except to bootstrap the first admin of a deployment (no active
staff account holding ``admin`` exists yet, and the new account is one). Other staff get
``--no-password`` and an activation code handed over out of band, and enrol their factor after
redeeming it."""

from __future__ import annotations

from pathlib import Path

import pyotp
from sqlalchemy import update

from idp.authn.assurance import password_only
from idp.storage.models import Account
from tests.conftest import PASSWORD
from tests.support.cli import Instance, Result, assert_clean_error, new_instance, succeeded
from tests.support.identity import national_id


def _staff(instance: Instance, username: str, seed: int, *extra: str, password: bool = True) -> Result:
    how = ("--password-stdin",) if password else ("--no-password",)
    return instance.run(
        "users", "create", "--type", "staff", "--username", username, "--agency", "MOI",
        "--national-id", national_id(seed), *extra, *how, stdin=PASSWORD if password else None,
    )  # fmt: skip


def _usernames(instance: Instance) -> list[str]:
    return [user["username"] for user in instance.json("users", "list")]


def test_an_operator_set_staff_password_is_refused_once_an_admin_exists(tmp_path: Path) -> None:
    """Reproduction: an operator created a staff member with a password of their choosing, and
    whoever knew it enrolled the staff member's first factor at /signin/enrol with it alone."""
    instance = new_instance(tmp_path)
    instance.ok("init")
    succeeded(_staff(instance, "amal", 81, "--role", "admin"))  # the first admin: the bootstrap
    line = assert_clean_error(_staff(instance, "newbie", 82, "--role", "helpdesk"))
    assert "--no-password" in line and "first admin" in line
    line = assert_clean_error(_staff(instance, "second", 83, "--role", "admin"))
    assert "--no-password" in line
    assert _usernames(instance) == ["amal"]
    # The way staff are made: no password, an activation code to hand over.
    made = succeeded(_staff(instance, "newbie", 82, "--role", "helpdesk", password=False))
    assert "activation code:" in made
    # Citizens are not affected.
    assert instance.run(
        "users", "create", "--type", "citizen", "--username", "layla", "--national-id", national_id(84),
        "--password-stdin", stdin=PASSWORD,
    ).returncode == 0  # fmt: skip


def test_the_bootstrap_is_only_for_an_admin(tmp_path: Path) -> None:
    instance = new_instance(tmp_path)
    instance.ok("init")
    line = assert_clean_error(_staff(instance, "hana", 85, "--role", "helpdesk"))
    assert "first admin" in line
    assert _usernames(instance) == []


def test_a_suspended_admin_does_not_close_the_bootstrap(tmp_path: Path) -> None:
    instance = new_instance(tmp_path)
    instance.ok("init")
    succeeded(_staff(instance, "amal", 86, "--role", "admin"))
    registry = instance.registry()
    try:
        with registry.db.transaction() as session:
            session.execute(update(Account).where(Account.username == "amal").values(status="suspended"))
    finally:
        registry.close()
    succeeded(_staff(instance, "yousef", 87, "--role", "admin"))


def test_the_first_admin_gets_an_app_key_at_the_terminal_not_on_the_web(tmp_path: Path) -> None:
    """The bootstrap's password was typed at a terminal: the first factor is made there too (a QR
    code, the key, recovery codes: shown once), so no password alone ever binds one on the web."""
    instance = new_instance(tmp_path)
    instance.ok("init")
    shown = succeeded(_staff(instance, "amal", 88, "--role", "admin"))
    assert "authenticator app key" in shown and "recovery codes" in shown
    key = shown.split("authenticator app key", 1)[1].split("recovery codes", 1)[0].split()[-1]
    assert len(key) == 32 and key.isalnum()
    registry = instance.registry()
    try:
        person = registry.accounts.by_username("amal")
        assert person is not None
        assert registry.authenticators.confirmed_kinds(person.id) == {"totp"}
        assert registry.recovery_codes.status(person.id).unused == 10
        assert registry.mfa.next_step(person.id) == "factor"  # the web asks for it; never enrols
        assert (
            registry.mfa.verify(
                password_only(person.id, int(registry.clock.now())),
                pyotp.TOTP(key).at(int(registry.clock.now())),
            ).result.acr
            == "urn:hawiya:loa:substantial"
        )
    finally:
        registry.close()
    other = new_instance(tmp_path / "json")
    other.ok("init")
    as_json = other.json(
        "users", "create", "--type", "staff", "--username", "faisal", "--agency", "MOI",
        "--national-id", national_id(89), "--role", "admin", "--password-stdin", "--json", stdin=PASSWORD,
    )  # fmt: skip
    assert set(as_json) >= {"totp_key", "totp_uri", "recovery_codes"}
    assert as_json["totp_uri"].startswith("otpauth://totp/") and len(as_json["recovery_codes"]) == 10
