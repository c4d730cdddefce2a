"""Races on single-use credentials, on both backends (SQLite + embedded store, PostgreSQL + Redis).

Codes and refresh tokens are consumed atomically, a replayed code revokes what it issued
and a reused refresh token revokes its family. Two concurrent uses of one credential are one use and
one replay: exactly one wins, and the loser's attempt revokes what the winner got (RFC 6749 4.1.2,
RFC 9700 4.14.2), whichever order the two requests' steps interleave in.

Threads meet at a Barrier so both attempts start together: first against the services, many rounds,
then through /token on a live server with two HTTP clients. The last tests force the worst
interleavings deterministically (the loser's whole request inside the winner's), so the outcome does
not depend on luck.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask

from idp.oidc.refresh import RefreshGrant
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, PASSWORD, LiveServer, World
from tests.support.agency import Agency, userinfo_status
from tests.support.audit import audit_events
from tests.support.flask_person import FlaskPerson, pkce_pair
from tests.support.person import Person

T = TypeVar("T")

#: Rounds of each service-level race.
ROUNDS = 20
#: Rounds of each race through HTTP on the live server.
HTTP_ROUNDS = 8
OFFLINE = "openid email offline_access"


def together(attempt: Callable[[], T], racers: int = 2) -> list[T]:
    """Run ``attempt`` in ``racers`` threads released at the same instant; their results."""
    barrier = threading.Barrier(racers)

    def run() -> T:
        barrier.wait(timeout=10)
        return attempt()

    with ThreadPoolExecutor(racers) as pool:
        futures = [pool.submit(run) for _ in range(racers)]
        return [future.result(timeout=60) for future in futures]


# -- against the services ------------------------------------------------------------------------


def _refresh_token(registry: Registry, world: World) -> str:
    return registry.refresh.issue(
        RefreshGrant(
            family_id=registry.refresh.new_family(),
            client_id=world.confidential_id,
            account_id=world.citizen_id,
            sid=None,
            scope=OFFLINE,
            auth_time=int(registry.clock.now()),
            acr="urn:hawiya:loa:low",
            amr=("pwd",),
            offline=True,
        )
    )


@BOTH_BACKENDS
def test_concurrent_refresh_consumes_have_exactly_one_winner(registry: Registry, world: World) -> None:
    for round_ in range(ROUNDS):
        token = _refresh_token(registry, world)
        results = together(lambda token=token: registry.refresh.consume(token, world.confidential_id))
        winners = [grant for grant in results if grant is not None]
        assert len(winners) == 1, f"round {round_}: {len(winners)} winners"
        assert winners[0].client_id == world.confidential_id
    # Each loser presented a spent token: a reuse, audited.
    assert len(audit_events(registry, "refresh_token.reused")) == ROUNDS


def _code(registry: Registry, world: World) -> str:
    code = secrets.token_urlsafe(32)
    registry.codes.save(
        code,
        client_id=world.confidential_id,
        account_id=world.citizen_id,
        redirect_uri=world.redirect_uri,
        scope="openid",
        nonce=None,
        auth_time=int(registry.clock.now()),
        acr="urn:hawiya:loa:low",
        amr=("pwd",),
        sid=None,
        code_challenge=None,
        code_challenge_method=None,
    )
    return code


@BOTH_BACKENDS
def test_concurrent_code_redemptions_have_exactly_one_winner(registry: Registry, world: World) -> None:
    for round_ in range(ROUNDS):
        code = _code(registry, world)
        results = together(
            lambda code=code: registry.codes.consume(code, world.confidential_id, world.redirect_uri)
        )
        assert sum(record is not None for record in results) == 1, f"round {round_}"
        assert registry.codes.was_spent(code)
        # The loser's attempt is a replay (it must revoke what the winner got), so it is audited.
        assert len(audit_events(registry, "code.replayed")) == round_ + 1, f"round {round_}"


# -- through HTTP on a live server ---------------------------------------------------------------


@pytest.fixture
def live_agency(live_server: LiveServer) -> Iterator[tuple[LiveServer, str, str, Person]]:
    """A refresh-capable confidential client on the live server, and the citizen signed in to it."""
    new = live_server.world.registry.clients.create(
        name="Racing Agency",
        redirect_uris=["http://127.0.0.1:9201/callback"],
        grant_types=["authorization_code", "refresh_token"],
        scope="openid email offline_access",
    )
    assert new.client_secret is not None
    yield live_server, new.client.client_id, new.client_secret, Person(live_server.url, "citizen", PASSWORD)


def _http_tokens(server: LiveServer, client_id: str, secret: str, person: Person) -> tuple[str, str]:
    """A fresh code for the racing agency (the person's SSO session and consent make it quick)."""
    verifier, challenge = pkce_pair()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": "http://127.0.0.1:9201/callback",
            "scope": OFFLINE,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    back = person.go(f"{server.url}/authorize?{query}")
    return parse_qs(urlsplit(back).query)["code"][0], verifier


def _post_token(server: LiveServer, client_id: str, secret: str, data: dict[str, str]) -> requests.Response:
    return requests.post(f"{server.url}/token", data=data, auth=(client_id, secret), timeout=30)


def _userinfo(server: LiveServer, access_token: str) -> int:
    return requests.get(
        f"{server.url}/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=30
    ).status_code


def _one_winner(responses: list[requests.Response], round_: int) -> dict[str, Any]:
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 400], f"round {round_}: {[r.text for r in responses]}"
    loser = next(r for r in responses if r.status_code == 400)
    assert loser.json()["error"] == "invalid_grant"
    winner: dict[str, Any] = next(r for r in responses if r.status_code == 200).json()
    return winner


@BOTH_BACKENDS
def test_concurrent_refreshes_over_http_one_wins_and_the_family_dies(
    live_agency: tuple[LiveServer, str, str, Person],
) -> None:
    server, client_id, secret, person = live_agency
    redirect = "http://127.0.0.1:9201/callback"
    for round_ in range(HTTP_ROUNDS):
        code, verifier = _http_tokens(server, client_id, secret, person)
        tokens = _post_token(
            server,
            client_id,
            secret,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect,
                "code_verifier": verifier,
            },
        ).json()
        form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        winner = _one_winner(together(lambda form=form: _post_token(server, client_id, secret, form)), round_)
        # The loser presented a spent token: a reuse, so the family dies, the winner's new tokens too.
        again = _post_token(
            server,
            client_id,
            secret,
            {"grant_type": "refresh_token", "refresh_token": winner["refresh_token"]},
        )
        assert again.status_code == 400, f"round {round_}: the winner's new refresh token still works"
        assert _userinfo(server, winner["access_token"]) == 401, f"round {round_}"
        assert _userinfo(server, tokens["access_token"]) == 401, f"round {round_}"


@BOTH_BACKENDS
def test_concurrent_code_redemptions_over_http_one_wins_and_the_replay_revokes_it(
    live_agency: tuple[LiveServer, str, str, Person],
) -> None:
    server, client_id, secret, person = live_agency
    redirect = "http://127.0.0.1:9201/callback"
    for round_ in range(HTTP_ROUNDS):
        code, verifier = _http_tokens(server, client_id, secret, person)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "code_verifier": verifier,
        }
        winner = _one_winner(together(lambda form=form: _post_token(server, client_id, secret, form)), round_)
        assert _userinfo(server, winner["access_token"]) == 401, f"round {round_}: the replay left it alive"
        again = _post_token(
            server,
            client_id,
            secret,
            {"grant_type": "refresh_token", "refresh_token": winner["refresh_token"]},
        )
        assert again.status_code == 400, f"round {round_}: the code's refresh token survived the replay"


# -- the worst interleavings, forced -------------------------------------------------------------


@pytest.fixture
def agency(app: Flask, registry: Registry, world: World) -> Agency:
    """A refresh-capable confidential client (in-process)."""
    return Agency.register(app, registry, port=9202)


def test_a_reuse_landing_before_the_winner_records_its_tokens_still_kills_them(
    app: Flask, registry: Registry, agency: Agency, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = agency.sign_in(FlaskPerson(app, "citizen", PASSWORD), OFFLINE)
    issue = registry.refresh.issue
    losers: list[int] = []

    def loser_first(*args: Any, **kwargs: Any) -> str:
        if not losers:  # the winner has consumed the token but recorded nothing yet
            losers.append(agency.refresh(tokens["refresh_token"]).status_code)
        return issue(*args, **kwargs)

    monkeypatch.setattr(registry.refresh, "issue", loser_first)
    winner = agency.refresh(tokens["refresh_token"])
    assert losers == [400]
    assert winner.status_code == 200 and winner.json is not None
    monkeypatch.undo()
    assert agency.refresh(winner.json["refresh_token"]).status_code == 400
    assert userinfo_status(app, winner.json["access_token"]) == 401


@pytest.mark.parametrize("moment", ["after_take", "before_tokens"])
def test_a_code_replay_landing_inside_the_winning_redemption_still_revokes_it(
    app: Flask, registry: Registry, agency: Agency, monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    code, verifier = agency.authorize(FlaskPerson(app, "citizen", PASSWORD), OFFLINE)
    losers: list[int] = []

    def replay() -> None:
        if not losers:
            losers.append(agency.redeem(code, verifier).status_code)

    if moment == "after_take":  # the winner took the code and has not marked it spent yet
        take = registry.store.take

        def take_then_replay(key: str) -> bytes | None:
            value = take(key)
            if key.startswith("code:") and value is not None:
                replay()
            return value

        monkeypatch.setattr(registry.store, "take", take_then_replay)
    else:  # the winner holds the code's record and is about to mint its tokens
        mint = registry.tokens.access_token

        def replay_then_mint(**kwargs: Any) -> Any:
            replay()
            return mint(**kwargs)

        monkeypatch.setattr(registry.tokens, "access_token", replay_then_mint)

    winner = agency.redeem(code, verifier)
    monkeypatch.undo()
    assert losers == [400]
    assert winner.status_code == 200 and winner.json is not None
    assert len(audit_events(registry, "code.replayed")) == 1
    assert userinfo_status(app, winner.json["access_token"]) == 401
    assert agency.refresh(winner.json["refresh_token"]).status_code == 400
