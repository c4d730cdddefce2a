"""Passwords: Argon2id storage, the NIST SP 800-63B-4 policy, and password sign-in that neither
reveals who has an account nor lets anyone guess without limit."""

from __future__ import annotations

import dataclasses
import re
import statistics
import time
import zlib

import pytest
from flask import Flask

from idp.accounts.passwords import PasswordHasher
from idp.app import create_app
from idp.clock import FrozenClock
from idp.errors import AuthenticationFailed, WeakPassword
from idp.registry import Registry
from tests.conftest import PASSWORD, World
from tests.support.audit import audit_events
from tests.support.flask_person import FlaskPerson
from tests.support.identity import national_id
from tests.support.person import hidden_fields

PHC = re.compile(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$")


def stored_hash(registry: Registry, username: str) -> str:
    record = registry.accounts.signin_record(username)
    assert record is not None and record.password_hash is not None
    return record.password_hash


def submit(person: FlaskPerson, username: str, password: str) -> tuple[int, str]:
    """Fill the sign-in page's form; (status, body)."""
    fields = hidden_fields(person.get("/signin").get_data(as_text=True))
    fields.update(username=username, password=password)
    response = person.post("/signin", fields)
    return response.status_code, response.get_data(as_text=True)


# -- storage ---------------------------------------------------------------------------------------


@pytest.mark.real_hashing
def test_passwords_are_stored_as_argon2id_phc_strings(registry: Registry, world: World) -> None:
    phc = stored_hash(registry, "citizen")
    match = PHC.match(phc)
    assert match, phc
    memory, iterations, lanes = (int(g) for g in match.groups())
    assert memory >= 19456
    assert iterations >= 2
    assert lanes == 1
    assert PASSWORD not in phc
    assert registry.hasher.verify(PASSWORD, phc)
    assert not registry.hasher.verify(PASSWORD + "x", phc)


def test_same_password_gets_a_fresh_salt(registry: Registry, world: World) -> None:
    assert stored_hash(registry, "resident") != stored_hash(registry, "visitor")


@pytest.mark.real_hashing
def test_needs_rehash_when_parameters_rise(registry: Registry, world: World) -> None:
    phc = stored_hash(registry, "citizen")
    same = PasswordHasher(memory_kib=19456, iterations=2, lanes=1)
    assert not same.needs_rehash(phc)
    assert PasswordHasher(memory_kib=19456, iterations=3, lanes=1).needs_rehash(phc)
    assert PasswordHasher(memory_kib=2 * 19456, iterations=2, lanes=1).needs_rehash(phc)
    assert same.needs_rehash("$pbkdf2-sha256$29000$abc$def")


@pytest.mark.real_hashing
def test_sign_in_rehashes_when_parameters_rose(registry: Registry, world: World, clock: FrozenClock) -> None:
    old = stored_hash(registry, "citizen")
    stronger = Registry(dataclasses.replace(registry.settings, argon2_iterations=3), clock=clock)
    try:
        app = create_app(registry=stronger)
        app.testing = True
        status, _body = submit(FlaskPerson(app), "citizen", PASSWORD)
        assert status == 302

        new = stored_hash(stronger, "citizen")
        assert new != old
        match = PHC.match(new)
        assert match and match.group(2) == "3"
        assert [e["subject"] for e in audit_events(stronger, "password.rehashed")] == [world.citizen_id]

        # The same password still works, and is not re-hashed a second time.
        status, _body = submit(FlaskPerson(app), "citizen", PASSWORD)
        assert status == 302
        assert stored_hash(stronger, "citizen") == new
        assert len(audit_events(stronger, "password.rehashed")) == 1
    finally:
        stronger.close()


# -- policy ----------------------------------------------------------------------------------------


def _create(registry: Registry, password: str, username: str = "newperson") -> None:
    registry.accounts.create(
        account_type="citizen",
        username=username,
        password=password,
        national_id=national_id(zlib.crc32(username.encode()) % 10**6),
    )


def test_fourteen_characters_are_refused_fifteen_accepted(registry: Registry) -> None:
    fifteen = "k7#Qm2vL9pX4wZa"
    assert len(fifteen) == 15
    with pytest.raises(WeakPassword) as refused:
        _create(registry, fifteen[:14], username="short")
    assert refused.value.code == "password_too_short"
    assert registry.accounts.by_username("short") is None
    _create(registry, fifteen, username="long")
    assert registry.passwords.authenticate("long", fifteen).account_id


def test_spaces_count_and_no_composition_rules(registry: Registry) -> None:
    _create(registry, "all lower case words", username="reader")
    assert registry.passwords.authenticate("reader", "all lower case words").account_id


@pytest.mark.parametrize("password", ["passwordpassword", "PasswordPassword", "123456789987654321"])
def test_common_passwords_are_refused(registry: Registry, password: str) -> None:
    with pytest.raises(WeakPassword) as refused:
        _create(registry, password)
    assert refused.value.code == "password_common"


@pytest.mark.parametrize(
    "password", ["fatima.kw was here 2024", "my FATIMA.KW secret phrase", "xxfatima.kwxxxxxxxxxx"]
)
def test_password_containing_the_username_is_refused(registry: Registry, password: str) -> None:
    with pytest.raises(WeakPassword) as refused:
        _create(registry, password, username="fatima.kw")
    assert refused.value.code == "password_has_username"


def test_long_passwords_are_accepted_up_to_256_characters(registry: Registry) -> None:
    longest = ("a9 z" * 64)[:256]
    with pytest.raises(WeakPassword) as refused:
        _create(registry, longest + "x", username="toolong")
    assert refused.value.code == "password_too_long"
    _create(registry, longest, username="longest")
    assert registry.passwords.authenticate("longest", longest).account_id


@pytest.mark.parametrize(
    ("enrolled", "typed"),
    [
        ("café au lait and croissants", "cafe\u0301 au lait and croissants"),  # composed vs decomposed
        ("ｆｕｌｌｗｉｄｔｈ ｐａｓｓｐｈｒａｓｅ", "fullwidth passphrase"),  # compatibility forms
        ("ﬁnal ﬂight of the evening", "final flight of the evening"),  # ligatures
    ],
)
def test_passwords_are_nfkc_normalised(registry: Registry, enrolled: str, typed: str) -> None:
    _create(registry, enrolled, username="traveller")
    assert registry.passwords.authenticate("traveller", typed).account_id
    assert registry.passwords.authenticate("traveller", enrolled).account_id


# -- sign-in ---------------------------------------------------------------------------------------

_VARIABLE = re.compile(r'(name="(?:csrf_token|username|ceremony)"[^>]*value=")[^"]*"')
_CHALLENGE = re.compile(r'("challenge": ")[^"]*"')


def _comparable(body: str) -> str:
    """The page without the values that legitimately differ: CSRF tokens, the typed username and
    the passkey ceremony (its id and challenge)."""
    return _CHALLENGE.sub(r'\1…"', _VARIABLE.sub(r'\1…"', body))


def test_unknown_user_and_wrong_password_look_the_same(app: Flask, world: World) -> None:
    unknown = submit(FlaskPerson(app), "nobody-here", PASSWORD)
    wrong = submit(FlaskPerson(app), "citizen", "not the right password at all")
    assert unknown[0] == wrong[0] == 401
    assert 'id="signin-error"' in wrong[1]
    assert _comparable(unknown[1]) == _comparable(wrong[1])
    assert "nobody-here" in unknown[1] and "citizen" in wrong[1]  # the form keeps what was typed


@pytest.mark.real_hashing
def test_unknown_user_and_wrong_password_take_similar_time(registry: Registry, world: World) -> None:
    # Both run one Argon2id verification: an unknown username must not answer measurably faster.
    passwords = registry.passwords

    def duration(username: str) -> float:
        start = time.perf_counter()
        with pytest.raises(AuthenticationFailed):
            passwords.authenticate(username, "not the right password at all")
        return time.perf_counter() - start

    duration("nobody-here")  # warm-up: the first unknown user also builds the dummy hash
    unknown, wrong = [], []
    for i in range(4):
        unknown.append(duration(f"nobody-{i}"))
        wrong.append(duration("citizen"))
    fast, slow = sorted([statistics.median(unknown), statistics.median(wrong)])
    assert slow < 3 * fast, (unknown, wrong)
    # And the work is real: a verification costs far more than a database lookup alone.
    assert fast > 0.003


def test_throttling_after_too_many_failures(
    app: Flask, registry: Registry, world: World, clock: FrozenClock
) -> None:
    person = FlaskPerson(app)
    limit = registry.settings.signin_max_failures
    for _ in range(limit):
        status, body = submit(person, "citizen", "not the right password at all")
        assert status == 401
        assert "Too many failed attempts" not in body
    assert audit_events(registry, "signin.throttled") == []

    status, body = submit(person, "citizen", PASSWORD)
    assert status in (401, 429)
    assert "Too many failed attempts" in body
    assert not any(h.startswith("hawiya_sso=") for h in person.get("/").headers.getlist("Set-Cookie"))
    assert len(audit_events(registry, "signin.throttled")) == 1
    assert audit_events(registry, "signin.succeeded") == []

    # The same limit holds from another browser, and whatever the case of the username.
    status, body = submit(FlaskPerson(app), "CITIZEN", PASSWORD)
    assert "Too many failed attempts" in body

    # Once the window has passed, the right password works again.
    clock.advance(registry.settings.signin_throttle_window + 1)
    status, _body = submit(FlaskPerson(app), "citizen", PASSWORD)
    assert status == 302


def test_failures_below_the_limit_do_not_block(app: Flask, registry: Registry, world: World) -> None:
    person = FlaskPerson(app)
    for _ in range(registry.settings.signin_max_failures - 1):
        assert submit(person, "citizen", "not the right password at all")[0] == 401
    assert submit(person, "citizen", PASSWORD)[0] == 302
    # Success resets the count: a full allowance of mistakes is available again.
    for _ in range(registry.settings.signin_max_failures - 1):
        assert submit(person, "citizen", "not the right password at all")[0] == 401
    assert submit(person, "citizen", PASSWORD)[0] == 302
