"""The lean client_credentials path (idp/http/lean_token.py) against the full Flask + Authlib path.

Two apps over one database: one with the lean path, one without. Every request below goes to both;
they must agree on the status, the error, the headers and the token's claims, and the lean path may
only answer what it fully validated (anything else reaches Authlib, which answers and audits it).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import jwt
import pytest
from flask import Flask

from idp.app import create_app
from idp.clock import FrozenClock
from idp.http.lean_token import LeanClientCredentials
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, Backend, initialised, make_registry, make_settings
from tests.support.audit import audit_events

API = "https://records.example.test/api"
SCOPE = "records:read records:write"


@dataclass
class Pair:
    """The same deployment twice: ``lean`` answers client_credentials itself, ``full`` never."""

    lean: Flask
    full: Flask
    registry: Registry
    other: Registry
    client_id: str
    secret: str
    post_id: str
    post_secret: str
    #: How many token requests the lean path passed on to Flask.
    authlib_calls: list[int]


@pytest.fixture
def pair(tmp_path: Any, backend: Backend, clock: FrozenClock) -> Iterator[Pair]:
    settings = make_settings(tmp_path, backend)
    registry = initialised(settings, clock)
    other = make_registry(dataclasses.replace(settings, lean_token_path=False), clock)
    api = registry.clients.create(
        name="Records API client",
        redirect_uris=[],
        grant_types=("client_credentials",),
        scope=f"openid {SCOPE}",
        resources=[API],
    )
    post = registry.clients.create(
        name="Posting client",
        redirect_uris=[],
        grant_types=("client_credentials",),
        scope=SCOPE,
        auth_method="client_secret_post",
    )
    assert api.client_secret is not None and post.client_secret is not None
    lean = create_app(registry=registry, start_schedule=False)
    full = create_app(registry=other, start_schedule=False)
    calls = [0]
    middleware = lean.wsgi_app
    assert isinstance(middleware, LeanClientCredentials)
    flask_app = middleware._app

    def counting(environ: Any, start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/token":
            calls[0] += 1
        return flask_app(environ, start_response)

    middleware._app = counting
    yield Pair(
        lean, full, registry, other, api.client.client_id, api.client_secret,
        post.client.client_id, post.client_secret, calls,
    )  # fmt: skip
    other.close()
    registry.close()


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def post(app: Flask, body: str, *, authorization: str | None, content_type: str, query: str = "") -> Any:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return app.test_client().post(
        "/token" + (f"?{query}" if query else ""), data=body, headers=headers, content_type=content_type
    )


def claims(response: Any) -> dict[str, Any]:
    token = response.json["access_token"]
    decoded = jwt.decode(token, options={"verify_signature": False})
    return {k: v for k, v in decoded.items() if k not in ("iat", "exp", "jti")}


FORM = "application/x-www-form-urlencoded"

#: (name, body, authorization ("ok", "wrong", "post", a literal header, or None), content type, query,
#: whether the lean path answers it)
CASES: list[tuple[str, str, str | None, str, str, bool]] = [
    ("plain", "grant_type=client_credentials", "ok", FORM, "", True),
    ("one scope", "grant_type=client_credentials&scope=records%3Aread", "ok", FORM, "", True),
    (
        "both scopes",
        "grant_type=client_credentials&scope=records%3Awrite+records%3Aread",
        "ok",
        FORM,
        "",
        True,
    ),
    ("empty scope", "grant_type=client_credentials&scope=", "ok", FORM, "", True),
    ("resource", f"grant_type=client_credentials&resource={quote(API, safe='')}", "ok", FORM, "", True),
    (
        "foreign resource",
        "grant_type=client_credentials&resource=https%3A%2F%2Fevil.test",
        "ok",
        FORM,
        "",
        False,
    ),
    ("personal scope", "grant_type=client_credentials&scope=openid", "ok", FORM, "", False),
    ("unknown scope", "grant_type=client_credentials&scope=records%3Adelete", "ok", FORM, "", False),
    ("wrong secret", "grant_type=client_credentials", "wrong", FORM, "", False),
    ("no credentials", "grant_type=client_credentials", None, FORM, "", False),
    ("not base64", "grant_type=client_credentials", "Basic %%%", FORM, "", False),
    (
        "no colon",
        "grant_type=client_credentials",
        "Basic " + base64.b64encode(b"abc").decode(),
        FORM,
        "",
        False,
    ),
    ("bearer", "grant_type=client_credentials", "Bearer abc", FORM, "", False),
    (
        "repeated",
        "grant_type=client_credentials&scope=records%3Aread&scope=records%3Awrite",
        "ok",
        FORM,
        "",
        False,
    ),
    ("extra parameter", "grant_type=client_credentials&audience=x", "ok", FORM, "", False),
    ("other grant", "grant_type=password&username=a&password=b", "ok", FORM, "", False),
    ("no grant", "scope=records%3Aread", "ok", FORM, "", False),
    ("charset", "grant_type=client_credentials", "ok", FORM + "; charset=utf-8", "", False),
    ("query", "grant_type=client_credentials", "ok", FORM, "scope=records%3Aread", False),
    ("json body", '{"grant_type": "client_credentials"}', "ok", "application/json", "", False),
    ("not ascii", "grant_type=client_credentials&scope=%C3%A9", "ok", FORM, "", False),
    ("post method client", "grant_type=client_credentials", "post", FORM, "", False),
    ("oversized", "grant_type=client_credentials&scope=" + "a" * 3000, "ok", FORM, "", False),
]


def _authorization(kind: str | None, pair: Pair) -> str | None:
    return {
        "ok": basic(pair.client_id, pair.secret),
        "wrong": basic(pair.client_id, pair.secret[:-1] + ("A" if pair.secret[-1] != "A" else "B")),
        "post": basic(pair.post_id, pair.post_secret),
    }.get(kind or "", kind)


@pytest.mark.parametrize(
    ("body", "authorization", "content_type", "query", "answered"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_both_paths_agree(
    pair: Pair, body: str, authorization: str | None, content_type: str, query: str, answered: bool
) -> None:
    header = _authorization(authorization, pair)
    lean = post(pair.lean, body, authorization=header, content_type=content_type, query=query)
    before = pair.authlib_calls[0]
    full = post(pair.full, body, authorization=header, content_type=content_type, query=query)
    assert pair.authlib_calls[0] == before  # the full app has its own server
    assert lean.status_code == full.status_code, (lean.get_data(as_text=True), full.get_data(as_text=True))
    assert (pair.authlib_calls[0] == 0) is answered
    if lean.status_code == 200:
        assert claims(lean) == claims(full)
        assert {k: v for k, v in lean.json.items() if k != "access_token"} == {
            k: v for k, v in full.json.items() if k != "access_token"
        }
    else:
        assert lean.json == full.json
    drop = {"Content-Length", "WWW-Authenticate"}
    assert {k: v for k, v in lean.headers.items() if k not in drop} == {
        k: v for k, v in full.headers.items() if k not in drop
    }


@BOTH_BACKENDS
def test_the_lean_path_issues_the_same_token_and_audits_it(pair: Pair) -> None:
    response = post(
        pair.lean,
        "grant_type=client_credentials",
        authorization=basic(pair.client_id, pair.secret),
        content_type=FORM,
    )
    assert response.status_code == 200 and pair.authlib_calls[0] == 0
    body = response.json
    assert body["token_type"] == "Bearer" and body["scope"] == SCOPE
    assert body["expires_in"] == pair.registry.settings.access_token_ttl
    keys = {k["kid"]: k for k in pair.registry.keystore.jwks()["keys"]}
    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
    verified = jwt.decode(
        body["access_token"],
        jwt.PyJWK(keys[header["kid"]]).key,
        algorithms=["ES256"],
        audience=pair.registry.settings.issuer,
        issuer=pair.registry.settings.issuer,
    )
    assert verified["sub"] == verified["client_id"] == pair.client_id
    assert response.headers["Cache-Control"] == "no-store"
    events = audit_events(pair.registry, "tokens.issued")
    assert events[0]["client_id"] == pair.client_id
    assert events[0]["detail"] == {"grant_type": "client_credentials", "scope": SCOPE}
    # Introspection (the full path) stands behind what the lean path issued.
    introspected = pair.lean.test_client().post(
        "/introspect",
        data={"token": body["access_token"]},
        headers={"Authorization": basic(pair.client_id, pair.secret)},
    )
    assert introspected.json is not None and introspected.json["active"] is True


def test_a_refused_secret_is_audited_by_the_full_path(pair: Pair) -> None:
    response = post(
        pair.lean,
        "grant_type=client_credentials",
        authorization=basic(pair.client_id, "x" * 43),
        content_type=FORM,
    )
    assert response.status_code == 401 and response.json["error"] == "invalid_client"
    assert audit_events(pair.registry, "client.auth_failed")[0]["detail"] == {
        "endpoint": "token",
        "error": "invalid_client",
    }


def test_a_disabled_client_or_a_secret_rotated_without_overlap_stops_at_once(pair: Pair) -> None:
    auth = basic(pair.client_id, pair.secret)
    assert (
        post(pair.lean, "grant_type=client_credentials", authorization=auth, content_type=FORM).status_code
        == 200
    )
    new_secret = pair.registry.clients.rotate_secret(pair.client_id, overlap=timedelta(0)).client_secret
    assert (
        post(pair.lean, "grant_type=client_credentials", authorization=auth, content_type=FORM).status_code
        == 401
    )
    fresh = basic(pair.client_id, new_secret)
    assert (
        post(pair.lean, "grant_type=client_credentials", authorization=fresh, content_type=FORM).status_code
        == 200
    )
    pair.registry.clients.disable(pair.client_id)
    assert (
        post(pair.lean, "grant_type=client_credentials", authorization=fresh, content_type=FORM).status_code
        == 401
    )


def test_a_rotated_secret_works_on_both_paths_until_its_overlap_ends(pair: Pair, clock: FrozenClock) -> None:
    """The lean path and the full path agree: during the overlap both secrets authenticate; after
    it only the new one does, even though the client's cached view was made before it ended."""
    old = basic(pair.client_id, pair.secret)
    rotated = pair.registry.clients.rotate_secret(pair.client_id, overlap=timedelta(hours=1))
    new = basic(pair.client_id, rotated.client_secret)
    for app in (pair.lean, pair.full):
        for auth in (old, new):
            got = post(app, "grant_type=client_credentials", authorization=auth, content_type=FORM)
            assert got.status_code == 200, got.get_data(as_text=True)
    clock.advance(3601)
    for app in (pair.lean, pair.full):
        for auth, status in ((old, 401), (new, 200)):
            got = post(app, "grant_type=client_credentials", authorization=auth, content_type=FORM)
            assert got.status_code == status


@BOTH_BACKENDS
def test_another_process_sees_a_disabled_client_within_a_second(pair: Pair) -> None:
    # ``other`` stands for another gunicorn worker: its own caches, the same database and store.
    auth = basic(pair.client_id, pair.secret)
    assert (
        post(pair.full, "grant_type=client_credentials", authorization=auth, content_type=FORM).status_code
        == 200
    )
    pair.registry.clients.disable(pair.client_id)
    deadline = time.monotonic() + 3
    while (
        post(pair.full, "grant_type=client_credentials", authorization=auth, content_type=FORM).status_code
        == 200
    ):
        assert time.monotonic() < deadline, "the other process kept serving a disabled client"
        time.sleep(0.05)


@BOTH_BACKENDS
def test_another_process_stops_signing_with_a_revoked_key_within_a_second(pair: Pair) -> None:
    auth = basic(pair.client_id, pair.secret)

    def kid_of_next_token() -> str:
        response = post(pair.full, "grant_type=client_credentials", authorization=auth, content_type=FORM)
        return str(jwt.get_unverified_header(response.json["access_token"])["kid"])

    revoked = kid_of_next_token()
    assert revoked == pair.other.keystore.current_kid("ES256")
    pair.registry.keystore.revoke(revoked, reason="test")
    deadline = time.monotonic() + 3
    while kid_of_next_token() == revoked:
        assert time.monotonic() < deadline, "the other process kept signing with a revoked key"
        time.sleep(0.05)
    assert revoked not in {
        k["kid"] for k in json.loads(pair.full.test_client().get("/jwks.json").data)["keys"]
    }
