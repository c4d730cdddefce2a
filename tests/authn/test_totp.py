"""TOTP (RFC 6238): enrolment through the account pages, sign-in with a code, the ±1 step window,
replay, throttling, sealing at rest, and malformed input. Codes are real: pyotp computes them at
the test's frozen clock from the key the enrolment page shows."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from flask import Flask
from sqlalchemy import text

from idp.clock import FrozenClock
from idp.errors import KeyUnavailable
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, Backend, make_registry, make_settings
from tests.support.audit import audit_events
from tests.support.mfa import (
    MfaPerson,
    Rp,
    add_app_in_account,
    qr_on,
    secret_on,
    secured_submit,
    submit,
    totp_code,
)

SUBSTANTIAL = "urn:hawiya:loa:substantial"
LOW = "urn:hawiya:loa:low"


def _with_app(person: MfaPerson, clock: FrozenClock) -> None:
    """The person adds an app in their account and signs out; then the clock moves on far enough
    that the steps around now were never used (the enrolment code's step is spent)."""
    add_app_in_account(person)
    submit(person, person.get("/account"), "/signout")
    clock.advance(120)


def _paths(person: MfaPerson) -> list[str]:
    return [page.request.path for page in person.pages]


# -- enrolment -------------------------------------------------------------------------------------


def test_enrolment_page_shows_a_qr_code_and_the_key(citizen: MfaPerson) -> None:
    start = secured_submit(citizen, "/account/totp", label="My phone")
    html = start.get_data(as_text=True)
    secret = secret_on(html)
    assert len(secret) == 32 and base64.b32decode(secret)  # 160 bits, base32
    qr = qr_on(html)
    assert qr.startswith("data:image/svg+xml") and "<svg" in unquote(qr)
    # The page loads nothing from elsewhere: the QR code is drawn by Hawiya, inline.
    assert "chart.googleapis" not in html and "api.qrserver" not in html
    assert 'value="My phone"' in html


def test_the_qr_code_carries_the_otpauth_uri_of_the_key(registry: Registry, world: object) -> None:
    from idp.authn import qr, totp

    account = registry.accounts.by_username("citizen")
    assert account is not None
    enrolment = registry.authenticators.begin_totp(account.id, account_name="citizen")
    uri = urlsplit(enrolment.uri)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert parse_qs(uri.query)["secret"] == [enrolment.secret]
    assert parse_qs(uri.query)["issuer"] == ["Hawiya"]
    # Drawn from that URI (segno is deterministic): the page's picture encodes exactly it.
    assert qr.svg_data_uri(enrolment.uri) == qr.svg_data_uri(
        totp.provisioning_uri(enrolment.secret, account_name="citizen", issuer="Hawiya")
    )


def test_an_unconfirmed_app_does_not_count(citizen: MfaPerson, rp: Rp) -> None:
    start = secured_submit(citizen, "/account/totp", label="Phone")
    assert secret_on(start.get_data(as_text=True))
    account = citizen.get("/account").get_data(as_text=True)
    assert 'id="factors"' not in account and "You have no second factor yet" in account
    submit(citizen, citizen.get("/account"), "/signout")
    citizen.pages.clear()
    claims = rp.id_token(citizen.go(rp.url()))
    assert "/signin/factor" not in _paths(citizen)
    assert (claims["acr"], claims["amr"]) == (LOW, ["pwd"])


def test_a_wrong_first_code_does_not_confirm(citizen: MfaPerson, clock: FrozenClock) -> None:
    start = secured_submit(citizen, "/account/totp", label="Phone")
    html = start.get_data(as_text=True)
    secret = secret_on(html)
    wrong = f"{(int(totp_code(secret, clock)) + 1) % 1_000_000:06d}"
    refused = submit(
        citizen, start, "/account/totp/confirm", authenticator=_hidden(html, "authenticator"), code=wrong
    )
    assert refused.status_code == 401
    page = refused.get_data(as_text=True)
    assert "That code is not correct" in page
    assert secret_on(page) == secret  # the same key, to try again
    assert 'id="factors"' not in citizen.get("/account").get_data(as_text=True)


def _hidden(html: str, name: str) -> str:
    from tests.support.person import hidden_fields

    return hidden_fields(html)[name]


def test_confirming_shows_recovery_codes_once_and_never_the_key_again(
    citizen: MfaPerson, registry: Registry
) -> None:
    done = add_app_in_account(citizen, label="Phone")
    assert done.status_code == 200
    assert len(citizen.recovery_codes) == 10 and len(set(citizen.recovery_codes)) == 10
    assert citizen.secret is not None
    account = citizen.get("/account").get_data(as_text=True)
    assert 'id="factors"' in account and "<strong>Phone</strong>" in account
    assert "Recovery codes left: 10 of 10" in account
    spaced = " ".join(citizen.secret[i : i + 4] for i in range(0, 32, 4))
    assert citizen.secret not in account and spaced not in account
    assert not any(code in account for code in citizen.recovery_codes)
    (added,) = audit_events(registry, "authenticator.added")
    assert added["detail"]["kind"] == "totp"


@BOTH_BACKENDS
def test_the_key_is_sealed_at_rest(
    citizen: MfaPerson, registry: Registry, tmp_path: Path, backend: Backend, clock: FrozenClock
) -> None:
    add_app_in_account(citizen)
    assert citizen.secret is not None
    with registry.db.engine.connect() as conn:
        (sealed,) = conn.execute(text("SELECT secret_sealed FROM authenticators")).scalars().all()
    assert sealed.startswith("v1.") and citizen.secret not in sealed
    assert citizen.secret.lower() not in sealed.lower()
    # Bound to its row: the same sealed value does not open as another authenticator's.
    with pytest.raises(KeyUnavailable):
        registry.sealer.unseal(sealed, purpose="totp:another-row")
    other = base64.b64encode(b"k" * 32).decode()
    stranger = make_registry(make_settings(tmp_path, backend, master_key=other), clock)
    try:
        with pytest.raises(KeyUnavailable):
            stranger.sealer.unseal(sealed, purpose="totp:x")
    finally:
        stranger.close()


# -- sign-in -----------------------------------------------------------------------------------------


@BOTH_BACKENDS
def test_sign_in_with_totp_reaches_substantial(
    citizen: MfaPerson, rp: Rp, clock: FrozenClock, registry: Registry
) -> None:
    _with_app(citizen, clock)
    citizen.pages.clear()
    claims = rp.id_token(citizen.go(rp.url()))
    assert _paths(citizen)[:2] == ["/signin", "/signin/factor"]
    assert claims["acr"] == SUBSTANTIAL
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    succeeded = audit_events(registry, "factor.succeeded")[0]
    assert succeeded["detail"]["method"] == "totp"


@pytest.mark.parametrize("steps", [-1, 1])
def test_one_step_either_side_is_accepted(citizen: MfaPerson, rp: Rp, clock: FrozenClock, steps: int) -> None:
    _with_app(citizen, clock)
    citizen.answer = lambda: totp_code(citizen.secret or "", clock, steps)
    assert rp.id_token(citizen.go(rp.url()))["acr"] == SUBSTANTIAL


def test_arabic_indic_digits_are_read_as_digits(citizen: MfaPerson, rp: Rp, clock: FrozenClock) -> None:
    _with_app(citizen, clock)
    arabic = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
    citizen.answer = lambda: totp_code(citizen.secret or "", clock).translate(arabic)
    assert rp.id_token(citizen.go(rp.url()))["acr"] == SUBSTANTIAL


@pytest.mark.parametrize("steps", [-2, 2, -3, 40])
def test_two_steps_away_is_refused(citizen: MfaPerson, rp: Rp, clock: FrozenClock, steps: int) -> None:
    _with_app(citizen, clock)
    page = citizen.open_page(rp.url(), "/signin")
    factor = citizen.follow(citizen.sign_in(page))
    assert not isinstance(factor, str) and factor.request.path == "/signin/factor"
    refused = citizen.type_code(factor, totp_code(citizen.secret or "", clock, steps))
    assert refused.status_code == 401
    assert "That code is not correct" in refused.get_data(as_text=True)


def test_a_used_code_is_refused(
    app: Flask, citizen: MfaPerson, rp: Rp, clock: FrozenClock, registry: Registry
) -> None:
    _with_app(citizen, clock)
    seen = totp_code(citizen.secret or "", clock)
    citizen.answer = lambda: seen
    assert rp.id_token(citizen.go(rp.url()))["acr"] == SUBSTANTIAL
    # Someone who saw the code over her shoulder tries it in their own browser, at once.
    thief = MfaPerson(app, "citizen", citizen.password, clock=clock)
    page = thief.open_page(rp.url(), "/signin")
    factor = thief.follow(thief.sign_in(page))
    assert not isinstance(factor, str)
    refused = thief.type_code(factor, seen)
    assert refused.status_code == 401
    assert "That code was already used" in refused.get_data(as_text=True)
    failed = audit_events(registry, "factor.failed")[0]
    assert failed["detail"] == {"method": "totp", "reason": "replayed"}


def test_an_older_code_is_refused_after_a_newer_one(
    app: Flask, citizen: MfaPerson, rp: Rp, clock: FrozenClock
) -> None:
    _with_app(citizen, clock)
    secret = citizen.secret or ""
    older = totp_code(secret, clock, -1)
    citizen.answer = lambda: totp_code(secret, clock)
    rp.id_token(citizen.go(rp.url()))
    other = MfaPerson(app, "citizen", citizen.password, clock=clock)
    page = other.open_page(rp.url(), "/signin")
    factor = other.follow(other.sign_in(page))
    assert not isinstance(factor, str)
    assert other.type_code(factor, older).status_code == 401


def test_failed_codes_are_throttled_and_audited(
    citizen: MfaPerson, rp: Rp, clock: FrozenClock, registry: Registry
) -> None:
    _with_app(citizen, clock)
    page = citizen.open_page(rp.url(), "/signin")
    factor = citizen.follow(citizen.sign_in(page))
    assert not isinstance(factor, str)
    limit = registry.settings.factor_max_failures
    right = totp_code(citizen.secret or "", clock)
    wrong = f"{(int(right) + 500_000) % 1_000_000:06d}"
    for _ in range(limit):
        assert citizen.type_code(factor, wrong).status_code == 401
    # Now even the right code is refused, with a clear message, until the window has passed.
    throttled = citizen.type_code(factor, totp_code(citizen.secret or "", clock))
    assert throttled.status_code == 429
    assert "Too many wrong codes" in throttled.get_data(as_text=True)
    assert len(audit_events(registry, "factor.failed")) == limit
    assert len(audit_events(registry, "factor.throttled")) == 1
    clock.advance(registry.settings.factor_throttle_window + 1)
    resumed = citizen.type_code(factor, totp_code(citizen.secret or "", clock))
    # The pending sign-in expired meanwhile (15 minutes): the person starts again, and gets in.
    reached = citizen.follow(resumed)
    assert not isinstance(reached, str)
    assert rp.id_token(citizen.go(rp.url()))["acr"] == SUBSTANTIAL


@pytest.mark.parametrize(
    "typed",
    [
        "",
        " ",
        "12345",
        "1234567",
        "abcdef",
        "١٢٣٤٥",  # five Arabic-Indic digits
        "²³⁴⁵⁶⁷",  # digits to str.isdigit, not to Hawiya
        "12 34 56 78",
        "\x00\x00\x00\x00\x00\x00",
        "'; DROP TABLE authenticators; --",
        "x" * 5000,
        "%ff%fe",
        "\ud7ff" * 6,
    ],
)
def test_malformed_codes_are_refused_without_a_server_error(
    citizen: MfaPerson, rp: Rp, clock: FrozenClock, typed: str
) -> None:
    _with_app(citizen, clock)
    page = citizen.open_page(rp.url(), "/signin")
    factor = citizen.follow(citizen.sign_in(page))
    assert not isinstance(factor, str)
    refused = citizen.type_code(factor, typed)
    assert refused.status_code == 401
    assert "That code is not correct" in refused.get_data(as_text=True)


def test_leaving_the_code_page_leaves_no_session(citizen: MfaPerson, rp: Rp, clock: FrozenClock) -> None:
    _with_app(citizen, clock)
    page = citizen.open_page(rp.url(), "/signin")
    factor = citizen.follow(citizen.sign_in(page))
    assert not isinstance(factor, str) and factor.request.path == "/signin/factor"
    # The password alone signed nobody in: the agency's silent request finds no session.
    silent = citizen.get(rp.url("s-2", prompt="none"))
    assert rp.back(silent.location or "", "s-2")["error"] == "login_required"
    assert "You are signed in" not in citizen.get("/").get_data(as_text=True)
