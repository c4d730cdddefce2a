"""A key-rotation drill in real time, against a live IdP on localhost (SECURITY.md, rotation runbook).

While one thread issues tokens through the real protocol (client_credentials for an agency's API
client; a person's code flow, then refresh after refresh), another verifies every token as a
relying party would: a JWKS cache that honours Cache-Control and refetches on an unknown kid at
most once a second, PyJWT pinned to the one algorithm each token must use, and /introspect. Meanwhile
the ES256 key is rotated twice (each next key published for ``jwks_max_age`` first) and the current
one is revoked. Not one token of a standing key may fail; every token of the revoked key must be
refused afterwards, and the relying party must never have to hammer the JWKS.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from idp.app import create_app
from idp.keys.keystore import RotationRefused
from idp.keys.signer import Signer
from idp.registry import Registry
from tests.conftest import (
    BOTH_BACKENDS,
    PASSWORD,
    Backend,
    World,
    free_port,
    initialised,
    make_settings,
    populate,
)
from tests.support.agency import Agency, userinfo_status
from tests.support.flask_person import FlaskPerson, pkce_pair
from tests.support.person import Person

#: How long relying parties may cache the JWKS, and so how long a next key waits before it signs.
MAX_AGE = 1
#: Least time between two JWKS fetches caused by an unknown kid (the relying party's own rule).
REFETCH_INTERVAL = 1.0
API_SCOPE = "records:read"
USER_SCOPE = "openid profile email"
_MAX_AGE = re.compile(r"max-age=(\d+)")


# -- the relying party -------------------------------------------------------------------------------


class RelyingPartyKeys:
    """An RP's JWKS cache: fresh for the response's max-age, counted from when the request left
    (a response is never fresher than its request), refetched early only for an unknown kid, and
    then at most once per ``REFETCH_INTERVAL``."""

    def __init__(self, jwks_uri: str) -> None:
        self._jwks_uri = jwks_uri
        self._keys: dict[str, dict[str, Any]] = {}
        self._fresh_until = 0.0
        self._fetched_at = -REFETCH_INTERVAL
        self.fetches = 0
        #: The kids that made it refetch before the cached JWKS had expired.
        self.refetched_for: list[str] = []
        self._lock = threading.Lock()

    def _fetch(self) -> None:
        sent = time.monotonic()
        response = requests.get(self._jwks_uri, timeout=10)
        response.raise_for_status()
        max_age = _MAX_AGE.search(response.headers.get("Cache-Control", ""))
        self._keys = {key["kid"]: key for key in response.json()["keys"]}
        self._fresh_until = sent + (int(max_age.group(1)) if max_age else 0)
        self._fetched_at = sent
        self.fetches += 1

    def key(self, kid: str) -> dict[str, Any] | None:
        """The published JWK ``kid``, or None when the issuer does not publish it."""
        with self._lock:
            now = time.monotonic()
            if now >= self._fresh_until:
                self._fetch()
            elif kid not in self._keys and now - self._fetched_at >= REFETCH_INTERVAL:
                self.refetched_for.append(kid)
                self._fetch()
            return self._keys.get(kid)


@dataclass(frozen=True)
class Issued:
    """One token thread A received."""

    kind: str  # "api" (client_credentials), "user" (access token for a person), "id" (ID token)
    token: str
    kid: str
    #: Which code flow the token descends from (user and id tokens): its refresh family.
    chain: int | None
    #: When the token request was sent (time.monotonic()).
    requested_at: float


@dataclass(frozen=True)
class Checked:
    """What the relying party found about one token."""

    issued: Issued
    started_at: float
    signature_error: str | None
    #: The introspection answer's ``active`` (None for ID tokens, which are not introspected).
    active: bool | None


@dataclass(frozen=True)
class Client:
    """Credentials of a registered client."""

    client_id: str
    secret: str

    @property
    def auth(self) -> tuple[str, str]:
        """HTTP Basic credentials."""
        return self.client_id, self.secret


def unverified_kid(token: str) -> str:
    """The kid in a JWS header (only to pick the key; the signature is checked with it)."""
    return str(jwt.get_unverified_header(token).get("kid", ""))


# -- the drill ---------------------------------------------------------------------------------------


@dataclass
class Drill:
    """A live IdP with an API client and a person's agency, and what happened to it."""

    url: str
    registry: Registry
    api: Client
    agency: Client
    redirect_uri: str
    issued: queue.Queue[Issued | None] = field(default_factory=queue.Queue)
    all_issued: list[Issued] = field(default_factory=list)
    checks: list[Checked] = field(default_factory=list)
    refresh_refused: int = 0
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def token(self, client: Client, data: dict[str, str]) -> dict[str, Any]:
        """A successful token response (anything else is an error of the drill)."""
        response = requests.post(f"{self.url}/token", data=data, auth=client.auth, timeout=10)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def introspect(self, client: Client, token: str) -> bool:
        """RFC 7662 ``active`` for ``token``, asked by ``client``."""
        response = requests.post(
            f"{self.url}/introspect", data={"token": token}, auth=client.auth, timeout=10
        )
        assert response.status_code == 200, response.text
        return bool(response.json()["active"])

    def userinfo_status(self, access_token: str) -> int:
        """What /userinfo answers for ``access_token``."""
        return requests.get(
            f"{self.url}/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=10
        ).status_code

    def _record(self, kind: str, token: str, chain: int | None, requested_at: float) -> None:
        issued = Issued(kind, token, unverified_kid(token), chain, requested_at)
        self.all_issued.append(issued)
        self.issued.put(issued)

    def _sign_in(self, person: Person, chain: int) -> str:
        """A code flow (the SSO session signs in again without a page); the refresh token."""
        verifier, challenge = pkce_pair()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.agency.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": USER_SCOPE,
                "state": f"drill-{chain}",
                "nonce": f"n-{chain}",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        back = person.go(f"{self.url}/authorize?{query}")
        code = parse_qs(urlsplit(back).query)["code"][0]
        sent = time.monotonic()
        answer = self.token(
            self.agency,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": verifier,
            },
        )
        self._record("user", answer["access_token"], chain, sent)
        self._record("id", answer["id_token"], chain, sent)
        return str(answer["refresh_token"])

    def issue_until_stopped(self) -> None:
        """Thread A: an API token and a person's refreshed token per round, until told to stop."""
        try:
            person = Person(self.url, "citizen", PASSWORD)
            chain = 0
            refresh_token = self._sign_in(person, chain)
            while not self.stop.is_set():
                sent = time.monotonic()
                api = self.token(self.api, {"grant_type": "client_credentials", "scope": API_SCOPE})
                self._record("api", api["access_token"], None, sent)
                sent = time.monotonic()
                response = requests.post(
                    f"{self.url}/token",
                    data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                    auth=self.agency.auth,
                    timeout=10,
                )
                if response.status_code == 400 and response.json()["error"] == "invalid_grant":
                    # The family went down with the revoked key: sign in again, as an agency would.
                    self.refresh_refused += 1
                    chain += 1
                    refresh_token = self._sign_in(person, chain)
                    continue
                assert response.status_code == 200, response.text
                refresh_token = response.json()["refresh_token"]
                self._record("user", response.json()["access_token"], chain, sent)
        except BaseException as exc:  # reported by the main thread
            self.errors.append(exc)
        finally:
            self.issued.put(None)

    def verify_until_done(self, keys: RelyingPartyKeys) -> None:
        """Thread B: every token checked as a relying party would, as soon as it arrives."""
        try:
            while (issued := self.issued.get(timeout=30)) is not None:
                started = time.monotonic()
                error = self._signature_error(keys, issued)
                active = None
                if issued.kind != "id":
                    active = self.introspect(self.api if issued.kind == "api" else self.agency, issued.token)
                self.checks.append(Checked(issued, started, error, active))
        except BaseException as exc:  # reported by the main thread
            self.errors.append(exc)

    def _signature_error(self, keys: RelyingPartyKeys, issued: Issued) -> str | None:
        public = keys.key(issued.kid)
        if public is None:
            return f"kid {issued.kid} is not published"
        alg, audience = ("RS256", self.agency.client_id) if issued.kind == "id" else ("ES256", self.url)
        try:
            jwt.decode(
                issued.token,
                jwt.PyJWK(public).key,
                algorithms=[alg],
                audience=audience,
                issuer=self.url,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.InvalidTokenError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None


@contextmanager
def drill_server(tmp_path: Path, backend: Backend) -> Iterator[Drill]:
    """The IdP on http://localhost:PORT with a real clock and a one-second JWKS lifetime."""
    port = free_port()
    url = f"http://localhost:{port}"
    registry = initialised(make_settings(tmp_path, backend, issuer=url, jwks_max_age=MAX_AGE))
    populate(registry)
    api = registry.clients.create(
        name="Drill API client", redirect_uris=[], grant_types=("client_credentials",), scope=API_SCOPE
    )
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    agency = registry.clients.create(
        name="Drill agency",
        redirect_uris=[redirect_uri],
        grant_types=("authorization_code", "refresh_token"),
        scope=USER_SCOPE,
        id_token_alg="RS256",
    )
    assert api.client_secret is not None and agency.client_secret is not None
    registry.key_admin  # noqa: B018 - built before the threads share the registry
    server = make_server("localhost", port, create_app(registry=registry), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Drill(
            url,
            registry,
            Client(api.client.client_id, api.client_secret),
            Client(agency.client.client_id, agency.client_secret),
            redirect_uri,
        )
    finally:
        server.shutdown()
        thread.join(timeout=5)
        registry.close()


def rotate_when_published(registry: Registry, alg: str) -> tuple[str, str]:
    """Rotate ``alg`` as soon as its next key has been published for a JWKS lifetime: (old, new)."""
    deadline = time.monotonic() + 10 * MAX_AGE
    while True:
        try:
            rotation = registry.keystore.rotate(alg)
        except RotationRefused:
            assert time.monotonic() < deadline, "the next key never became eligible"
            time.sleep(0.05)
            continue
        assert rotation.retired is not None
        return rotation.retired, rotation.current


def wait(seconds: float, drill: Drill) -> None:
    """Let the threads work (and stop early if one of them failed)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until and not drill.errors:
        time.sleep(0.05)


def wait_for_user_token(drill: Drill, kid: str | None, timeout: float = 30.0) -> None:
    """Until a person's token signed by ``kid`` was issued (or a thread failed)."""
    until = time.monotonic() + timeout
    while not any(i.kind == "user" and i.kid == kid for i in drill.all_issued) and not drill.errors:
        assert time.monotonic() < until, f"no person's token was signed by {kid} in {timeout:g} s"
        time.sleep(0.05)


# -- the test ----------------------------------------------------------------------------------------


@pytest.mark.drill
@BOTH_BACKENDS
def test_rotation_drill_rotate_twice_and_revoke_once(tmp_path: Path, backend: Backend) -> None:
    began = time.monotonic()
    with drill_server(tmp_path, backend) as drill:
        keys = RelyingPartyKeys(f"{drill.url}/jwks.json")
        first = drill.registry.keystore.current_kid("ES256")
        issuer = threading.Thread(target=drill.issue_until_stopped, name="drill-issuer")
        verifier = threading.Thread(target=drill.verify_until_done, args=(keys,), name="drill-rp")
        issuer.start()
        verifier.start()
        try:
            # Each phase lasts until the issuer has had a person's token signed in it (a loaded
            # machine can take longer than a fixed pause over the first sign-in).
            wait_for_user_token(drill, first)
            retired_1, current_1 = rotate_when_published(drill.registry, "ES256")
            wait_for_user_token(drill, current_1)
            retired_2, revoked = rotate_when_published(drill.registry, "ES256")
            # The key that takes over at the revocation was published when ``revoked`` began to
            # sign; let relying parties have it for a JWKS lifetime (a planned drill, not a panic).
            wait(MAX_AGE + 0.2, drill)
            revoke_started = time.monotonic()
            drill.registry.key_admin.revoke(revoked, reason="drill")
            revoke_done = time.monotonic()
            successor = drill.registry.keystore.current_kid("ES256")
            wait(1.5, drill)
        finally:
            drill.stop.set()
            issuer.join(timeout=30)
            verifier.join(timeout=30)
        assert not drill.errors, drill.errors
        assert (retired_1, retired_2) == (first, current_1)
        assert successor not in (None, first, current_1, revoked)

        # Every phase of the drill signed tokens: before, between and after the rotations, and after
        # the revocation.
        signed_by = {
            kid: [i for i in drill.all_issued if i.kid == kid] for kid in (first, current_1, revoked)
        }
        assert successor is not None
        signed_by[successor] = [i for i in drill.all_issued if i.kid == successor]
        assert all(signed_by.values()), {kid: len(tokens) for kid, tokens in signed_by.items()}
        assert len(drill.checks) == len(drill.all_issued)
        late = [i for i in signed_by[revoked] if i.requested_at >= revoke_done]
        assert not late, f"{len(late)} tokens signed by the revoked key after its revocation"

        # Not one failure for a token of a standing key: signature (RP) and introspection (IdP).
        # Revoking a key also takes down the refresh families issued alongside its tokens, and with
        # them their access tokens (whatever key signed those): they must be dead once it is done.
        revoked_chains = {i.chain for i in signed_by[revoked] if i.kind == "user"}
        standing = [c for c in drill.checks if c.issued.kid != revoked]
        bad_signatures = [c for c in standing if c.signature_error]
        assert not bad_signatures, bad_signatures[:3]

        def introspection_wrong(check: Checked) -> bool:
            family_revoked = check.issued.kind == "user" and check.issued.chain in revoked_chains
            if check.active is None:
                return False
            if family_revoked and check.started_at >= revoke_done:
                return check.active
            return not check.active and not (family_revoked and check.started_at >= revoke_started)

        wrong = [c for c in standing if introspection_wrong(c)]
        assert not wrong, wrong[:3]

        # After the revocation every token of the revoked key is refused: by introspection, by
        # /userinfo, and by the relying party itself once its cached JWKS has expired.
        wait_until = revoke_done + MAX_AGE + 0.1
        time.sleep(max(0.0, wait_until - time.monotonic()))
        refused = 0
        for issued in signed_by[revoked]:
            client = drill.api if issued.kind == "api" else drill.agency
            assert drill.introspect(client, issued.token) is False, issued
            if issued.kind == "user":
                assert drill.userinfo_status(issued.token) == 401, issued
            assert keys.key(issued.kid) is None, "the RP still trusts the revoked key"
            refused += 1
        # ...while a token of the key that took over works everywhere (the checks above can fail).
        fresh = next(i for i in reversed(signed_by[successor]) if i.kind == "user")
        assert drill.introspect(drill.agency, fresh.token) is True
        assert drill.userinfo_status(fresh.token) == 200

        # The relying party never hammered the JWKS: one fetch per cache lifetime. A token of a
        # standing key never sent it back early (its key was published a cache lifetime before it
        # signed); only the revoked key's tokens may, at most once a second by the RP's own rule.
        elapsed = time.monotonic() - began
        assert [kid for kid in keys.refetched_for if kid != revoked] == []
        assert keys.fetches <= elapsed / MAX_AGE + 2 + len(keys.refetched_for), (keys.fetches, elapsed)

        counts = {kind: sum(1 for i in drill.all_issued if i.kind == kind) for kind in ("api", "user", "id")}
        verified = sum(1 for c in drill.checks if c.signature_error is None)
        print(
            f"\nrotation drill [{backend.name}]: issued={len(drill.all_issued)} "
            f"(api={counts['api']} user={counts['user']} id={counts['id']}), verified={verified}, "
            f"failures_for_standing_keys={len(bad_signatures) + len(wrong)}, "
            f"signed_by_revoked_key={len(signed_by[revoked])}, refused_after_revocation={refused}, "
            f"refresh_refused_after_revocation={drill.refresh_refused}, jwks_fetches={keys.fetches}, "
            f"unknown_kid_refetches={len(keys.refetched_for)}, elapsed={elapsed:.1f}s"
        )


# -- a revocation racing a token response ------------------------------------------------------------


class RevokesRightAfterSigning:
    """A Signer whose first ES256 signature is followed at once by that key's revocation: a
    revocation landing between the signature and the rest of the token response."""

    def __init__(self, inner: Signer, revoke: Callable[[str], object]) -> None:
        self._inner = inner
        self._revoke = revoke
        self.revoked: str | None = None

    def sign(self, claims: Mapping[str, Any], *, alg: str, typ: str = "JWT") -> str:
        """Sign through the real signer; revoke the key that signed the first ES256 token."""
        token = self._inner.sign(claims, alg=alg, typ=typ)
        if alg == "ES256" and self.revoked is None:
            self.revoked = unverified_kid(token)
            self._revoke(self.revoked)
        return token


@BOTH_BACKENDS
def test_a_refresh_token_issued_while_its_key_is_revoked_dies_with_the_key(
    app: Flask, registry: Registry, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "tokens" not in registry.__dict__, "the token issuer was built before the signer was wrapped"
    signer = RevokesRightAfterSigning(
        registry.signer, lambda kid: registry.key_admin.revoke(kid, reason="drill: racing a response")
    )
    monkeypatch.setattr(registry, "signer", signer)
    agency = Agency.register(app, registry, port=9301)

    tokens = agency.sign_in(FlaskPerson(app, "citizen", PASSWORD), "openid profile offline_access")

    assert signer.revoked is not None and unverified_kid(tokens["access_token"]) == signer.revoked
    assert userinfo_status(app, tokens["access_token"]) == 401
    assert agency.introspect(tokens["refresh_token"], "refresh_token") == {"active": False}
    refused = agency.refresh(tokens["refresh_token"])
    assert refused.status_code == 400 and refused.json is not None
    assert refused.json["error"] == "invalid_grant"
