"""Freshness per factor: what Hawiya asserts (``acr``, ``amr``, ``auth_time``) rests only on the
factors proven within the request's ``max_age`` (OIDC Core 3.1.2.1), each with its own time.

Re-entering the password (``/account/reauth``) refreshes the password's time and nothing else: it
never makes a code typed long ago count as fresh. A request whose level needs a stale factor asks
for that factor again (or, with ``prompt=none``, gets an error), and ``auth_time`` is the oldest
proof the asserted level rests on.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from idp.authn.results import PASSWORD, TOTP, AuthResult, Proof, assess, legacy_proofs
from idp.clock import FrozenClock
from idp.registry import Registry
from idp.settings import LOA_HIGH, LOA_LOW, LOA_SUBSTANTIAL
from tests.conftest import BOTH_BACKENDS, World
from tests.conftest import PASSWORD as SECRET
from tests.support.mfa import MfaPerson, Rp, add_app_in_account, submit

LOW, SUBSTANTIAL, HIGH = LOA_LOW, LOA_SUBSTANTIAL, LOA_HIGH


def _paths(person: MfaPerson) -> list[str]:
    return [page.request.path for page in person.pages]


def _reauthenticate(person: MfaPerson) -> None:
    """Re-enter the password in the account area (``/account/reauth``)."""
    done = submit(person, person.get("/account/reauth"), "/account/reauth", password=SECRET)
    assert done.status_code == 303 and done.location == "/account", done.get_data(as_text=True)[:300]


@pytest.fixture
def with_code(citizen: MfaPerson, rp: Rp, clock: FrozenClock) -> dict[str, Any]:
    """The citizen holds an authenticator app, and signed in at the agency with her password and a
    code (level substantial); ten minutes later she re-entered her password, and a second passed."""
    rp.id_token(citizen.go(rp.url("setup")), "setup")
    add_app_in_account(citizen)
    submit(citizen, citizen.get("/account"), "/signout")
    clock.advance(120)
    first = rp.id_token(citizen.go(rp.url("mfa")), "mfa")
    assert (first["acr"], first["amr"]) == (SUBSTANTIAL, ["pwd", "otp", "mfa"])
    clock.advance(600)
    _reauthenticate(citizen)
    first["reauth_time"] = int(clock.now())
    clock.advance(1)
    citizen.pages.clear()
    return first


@BOTH_BACKENDS
def test_a_reentered_password_does_not_launder_a_stale_code(
    citizen: MfaPerson, rp: Rp, with_code: dict[str, Any]
) -> None:
    """The attack: after the password alone was re-entered, a silent request for a fresh
    substantial got an ID token claiming ``otp`` within max_age. Only the password is fresh."""
    response = citizen.get(rp.url("silent", prompt="none", max_age="3", acr_values=SUBSTANTIAL))
    params = rp.back(response.location or "", "silent")
    assert "code" not in params, params
    assert params["error"] in ("interaction_required", "login_required")


def test_a_stale_code_is_asked_again_and_auth_time_is_the_oldest_fresh_proof(
    citizen: MfaPerson, rp: Rp, with_code: dict[str, Any], clock: FrozenClock
) -> None:
    claims = rp.id_token(citizen.go(rp.url("up", max_age="3", acr_values=SUBSTANTIAL)), "up")
    assert _paths(citizen) == ["/signin/factor"]  # the code again, not the password
    assert (claims["acr"], claims["amr"]) == (SUBSTANTIAL, ["pwd", "otp", "mfa"])
    assert claims["auth_time"] == with_code["reauth_time"]  # the password, older than the new code
    assert claims["sid"] == with_code["sid"]


def test_max_age_alone_reports_only_the_fresh_password(
    citizen: MfaPerson, rp: Rp, with_code: dict[str, Any]
) -> None:
    claims = rp.id_token(citizen.go(rp.url("fresh", max_age="3")), "fresh")
    assert citizen.pages == []  # the password is fresh enough for what was asked
    assert (claims["acr"], claims["amr"]) == (LOW, ["pwd"])
    assert claims["auth_time"] == with_code["reauth_time"]


def test_without_max_age_auth_time_is_the_oldest_proof_asserted(
    citizen: MfaPerson, rp: Rp, with_code: dict[str, Any]
) -> None:
    claims = rp.id_token(citizen.go(rp.url("any")), "any")
    assert (claims["acr"], claims["amr"]) == (SUBSTANTIAL, ["pwd", "otp", "mfa"])
    assert claims["auth_time"] == with_code["auth_time"]  # the code, typed before the re-entry


def test_refresh_tokens_keep_what_the_authorization_asserted(
    citizen: MfaPerson, rp: Rp, with_code: dict[str, Any], registry: Registry
) -> None:
    """The token and refresh paths report what the authorization asserted: the same acr and
    auth_time in every access token of the grant, the ID token's amr as asserted."""
    made = registry.clients.create(
        name="Refreshing agency",
        redirect_uris=["http://127.0.0.1:9060/callback"],
        grant_types=["authorization_code", "refresh_token"],
    )
    assert made.client_secret is not None
    agency = Rp(rp.app, registry, made.client.client_id, made.client_secret, "http://127.0.0.1:9060/callback")
    tokens = agency.tokens(citizen.go(agency.url("fresh", max_age="3")), "fresh")
    assert "refresh_token" in tokens, tokens
    first = agency.claims(tokens["id_token"])
    assert (first["acr"], first["amr"], first["auth_time"]) == (LOW, ["pwd"], with_code["reauth_time"])
    refreshed = agency.refresh(tokens["refresh_token"])
    for value in (tokens["access_token"], refreshed["access_token"]):
        _header, access = registry.verifier.verify(value, typ="at+jwt")
        assert (access["acr"], access["auth_time"]) == (LOW, with_code["reauth_time"])


def test_reauthentication_refreshes_only_the_password(
    with_code: dict[str, Any], registry: Registry, world: World
) -> None:
    (session,) = registry.sessions.sessions_of(world.citizen_id)
    times = {proof.factor: proof.at for proof in session.proofs}
    assert times[PASSWORD] == with_code["reauth_time"]
    assert times[TOTP] == with_code["auth_time"]


# -- the rules, on their own -------------------------------------------------------------------------


def _proof(factor: str, at: int, level: str, amr: tuple[str, ...], *, needs_password: bool = False) -> Proof:
    return Proof(factor=factor, at=at, level=level, amr=amr, needs_password=needs_password)


PWD = _proof("pwd", 100, LOW, ("pwd",))
CODE = _proof("totp", 110, SUBSTANTIAL, ("otp",), needs_password=True)
KEY = _proof("webauthn", 200, HIGH, ("hwk", "user", "pin"))
PLAIN_KEY = _proof("webauthn", 120, SUBSTANTIAL, ("hwk", "user"), needs_password=True)


@pytest.mark.parametrize(
    ("proofs", "since", "expected"),
    [
        ((PWD,), None, (LOW, ("pwd",), 100)),
        ((PWD, CODE), None, (SUBSTANTIAL, ("pwd", "otp", "mfa"), 100)),
        ((PWD, CODE), 105, None),  # a code alone proves nothing
        ((PWD, CODE, KEY), None, (HIGH, ("pwd", "otp", "mfa", "hwk", "user", "pin"), 100)),
        ((PWD, CODE, KEY), 150, (HIGH, ("hwk", "user", "pin", "mfa"), 200)),
        ((PWD, PLAIN_KEY), None, (SUBSTANTIAL, ("pwd", "hwk", "user", "mfa"), 100)),
        ((KEY,), 201, None),
    ],
    ids=["password", "password+code", "code-alone", "all", "key-alone", "plain-key", "nothing-fresh"],
)
def test_assess(
    proofs: tuple[Proof, ...], since: float | None, expected: tuple[str, tuple[str, ...], int] | None
) -> None:
    found = assess("a", proofs, fresh_since=since)
    if expected is None:
        assert found is None
    else:
        assert found is not None and (found.acr, found.amr, found.auth_time) == expected


@pytest.mark.parametrize(
    ("amr", "acr"),
    [
        (("pwd",), LOW),
        (("pwd", "otp", "mfa"), SUBSTANTIAL),
        (("hwk", "user", "pin", "mfa"), HIGH),
        (("pwd", "hwk", "user", "mfa"), SUBSTANTIAL),
        (("pwd", "otp", "mfa", "hwk", "user", "pin"), HIGH),
    ],
)
def test_an_old_shaped_result_keeps_its_meaning(amr: tuple[str, ...], acr: str) -> None:
    """A result (or stored session) from before proofs had times: every factor it lists was proven
    at its single ``auth_time``, and together they reach its ``acr``."""
    proofs = legacy_proofs(amr, acr, 500)
    assert {proof.at for proof in proofs} == {500}
    found = assess("a", proofs)
    assert found is not None and (found.acr, found.auth_time) == (acr, 500)
    assert set(found.amr) == set(amr)
    assert AuthResult("a", 500, amr, acr).proven == proofs


@BOTH_BACKENDS
def test_a_session_stored_in_the_old_shape_is_still_read(registry: Registry, world: World) -> None:
    """Sessions stored before this release (one ``auth_time``, ``amr`` and ``acr``) still work: every
    factor they list counts as proven at that time."""
    now = int(registry.clock.now())
    handle = "an-old-cookie-handle"
    digest = hashlib.sha256(handle.encode()).hexdigest()
    old = {
        "sid": "old-sid",
        "account_id": world.citizen_id,
        "auth_time": now - 30,
        "amr": ["pwd", "otp", "mfa"],
        "acr": SUBSTANTIAL,
        "created_at": now - 30,
        "last_seen": now - 10,
        "clients": [],
        "user_agent": "",
        "ip": None,
    }
    registry.store.put("sso:" + digest, json.dumps(old).encode(), 3600)
    registry.store.put("sso-sid:old-sid", digest.encode(), 3600)
    session = registry.sessions.find(handle)
    assert session is not None and session.sid == "old-sid"
    assert (session.acr, session.auth_time) == (SUBSTANTIAL, now - 30)
    assert session.assess(now - 40) is not None and session.assess(now - 20) is None
    again = registry.sessions.find(handle)  # stored back in the new shape
    assert again is not None and again.proofs == session.proofs
