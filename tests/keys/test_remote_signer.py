"""The out-of-process signer (idp/keys/remote.py): the HSM/KMS seam, proven with a signing service on
a loopback port.

The IdP below never holds a private key in its own process: its ``RemoteSigner`` asks a
``SigningService`` (standing in for an HSM or KMS) for every signature. Relying parties verify what
it issues against /jwks.json as usual; the service refuses callers without the shared secret and
requests it cannot sign; and when it is down, token requests get a clean protocol error and nothing
is lost (verification of issued tokens stays in process, on the published keys).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests
from werkzeug.serving import make_server

from idp.app import create_app
from idp.errors import KeyUnavailable
from idp.keys.remote import RemoteSigner, SigningService
from tests.conftest import (
    BOTH_BACKENDS,
    PASSWORD,
    Backend,
    RemoteSigningRegistry,
    World,
    free_port,
    initialised,
    make_settings,
    populate,
)
from tests.support.flask_person import pkce_pair
from tests.support.person import Person

API_SCOPE = "records:read"


@dataclass
class RemoteIdP:
    """An IdP on http://localhost:PORT that signs through its own signing service."""

    url: str
    registry: RemoteSigningRegistry
    world: World
    api: tuple[str, str]
    agency: tuple[str, str]
    agency_redirect: str
    #: The PKCE code_verifier of the last sign-in.
    verifier: str = ""

    @property
    def service(self) -> SigningService:
        """The signing service (the stand-in HSM)."""
        return self.registry.signing_service

    def token(self, auth: tuple[str, str], data: dict[str, str]) -> requests.Response:
        """POST /token as a client."""
        return requests.post(f"{self.url}/token", data=data, auth=auth, timeout=10)

    def sign_in(self, client_id: str, redirect_uri: str, scope: str) -> str:
        """The citizen signs in and consents on the real pages; the authorization code."""
        self.verifier, challenge = pkce_pair()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": scope,
                "state": "st",
                "nonce": "n",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        back = Person(self.url, "citizen", PASSWORD).go(f"{self.url}/authorize?{query}")
        return parse_qs(urlsplit(back).query)["code"][0]

    def redeem(self, auth: tuple[str, str], code: str, redirect_uri: str) -> dict[str, Any]:
        """Exchange the code (with the verifier of the last sign-in); the token response."""
        response = self.token(
            auth,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": self.verifier,
            },
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer


@pytest.fixture
def remote_idp(tmp_path: Path, backend: Backend) -> Iterator[RemoteIdP]:
    """The IdP served on a real socket, signing out of process whatever HAWIYA_TEST_SIGNER says."""
    port = free_port()
    url = f"http://localhost:{port}"
    registry = initialised(make_settings(tmp_path, backend, issuer=url), remote_signer=True)
    assert isinstance(registry, RemoteSigningRegistry)
    world = populate(registry)
    api = registry.clients.create(
        name="API client", redirect_uris=[], grant_types=("client_credentials",), scope=API_SCOPE
    )
    agency_redirect = f"http://127.0.0.1:{free_port()}/callback"
    agency = registry.clients.create(
        name="Agency with refresh tokens",
        redirect_uris=[agency_redirect],
        grant_types=("authorization_code", "refresh_token"),
        scope="openid profile email",
    )
    assert api.client_secret is not None and agency.client_secret is not None
    server = make_server("localhost", port, create_app(registry=registry), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RemoteIdP(
            url,
            registry,
            world,
            (api.client.client_id, api.client_secret),
            (agency.client.client_id, agency.client_secret),
            agency_redirect,
        )
    finally:
        server.shutdown()
        thread.join(timeout=5)
        registry.close()


def verified(idp: RemoteIdP, token: str, *, alg: str, audience: str) -> dict[str, Any]:
    """``token`` verified with PyJWT (pinned to ``alg``) against the JWKS an agency fetches."""
    keys = requests.get(f"{idp.url}/jwks.json", timeout=10).json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    public = next(key for key in keys if key["kid"] == kid)
    claims: dict[str, Any] = jwt.decode(
        token, jwt.PyJWK(public).key, algorithms=[alg], audience=audience, issuer=idp.url
    )
    return claims


def service_status(service: SigningService, raw_request: bytes) -> int:
    """The HTTP status the signing service answers to ``raw_request`` (bytes on the wire)."""
    host, port = urlsplit(service.url).hostname, urlsplit(service.url).port
    assert host is not None and port is not None
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(raw_request)
        head = conn.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/"), f"no HTTP answer: {head!r}"
    return int(head.split()[1])


# -- it signs, out of process ----------------------------------------------------------------------


@BOTH_BACKENDS
def test_every_token_is_signed_by_the_service_and_verifies_against_the_published_jwks(
    remote_idp: RemoteIdP, monkeypatch: pytest.MonkeyPatch
) -> None:
    idp, world = remote_idp, remote_idp.world

    def unsealed_in_the_idp(alg: str) -> Any:
        raise AssertionError(f"the IdP process unsealed a {alg} signing key")

    # The IdP's own key store may publish keys but never hands one out for signing.
    monkeypatch.setattr(idp.registry.keystore, "signing_key", unsealed_in_the_idp)
    before = idp.service.signatures

    api = idp.token(idp.api, {"grant_type": "client_credentials", "scope": API_SCOPE})
    assert api.status_code == 200, api.text
    code = idp.sign_in(world.confidential_id, world.redirect_uri, "openid profile email")
    person = idp.redeem((world.confidential_id, world.confidential_secret), code, world.redirect_uri)

    current = idp.registry.keystore.current_kid
    api_claims = verified(idp, api.json()["access_token"], alg="ES256", audience=idp.url)
    assert api_claims["client_id"] == idp.api[0] and api_claims["scope"] == API_SCOPE
    assert jwt.get_unverified_header(person["access_token"])["kid"] == current("ES256")
    assert (
        verified(idp, person["access_token"], alg="ES256", audience=idp.url)["client_id"]
        == world.confidential_id
    )
    id_claims = verified(idp, person["id_token"], alg="RS256", audience=world.confidential_id)
    assert id_claims["nonce"] == "n"
    assert jwt.get_unverified_header(person["id_token"])["kid"] == current("RS256")
    info = requests.get(
        f"{idp.url}/userinfo", headers={"Authorization": f"Bearer {person['access_token']}"}, timeout=10
    )
    assert info.status_code == 200 and info.json()["email"] == "fatima@example.org"

    # Three signatures (the API token, the person's access and ID tokens), all made by the service.
    assert idp.service.signatures - before == 3


# -- the service guards its door -------------------------------------------------------------------


def test_the_signing_service_refuses_strangers_and_bodies_it_cannot_sign(remote_idp: RemoteIdP) -> None:
    service, secret = remote_idp.service, remote_idp.registry.settings.signer_secret
    assert secret
    sign_url = f"{service.url}/sign"
    good = {"alg": "ES256", "typ": "JWT", "claims": {"sub": "x"}}

    def post(body: Any, *, token: str | None = secret, path: str = "/sign", raw: bytes | None = None) -> int:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else json.dumps(body).encode()
        return requests.post(f"{service.url}{path}", data=data, headers=headers, timeout=5).status_code

    for stranger in (None, "", secret + "x", secret[:-1], "Basic " + secret):
        assert post(good, token=stranger) == 401, stranger
    for unsignable in (
        {"alg": "none", "claims": {"sub": "x"}},
        {"alg": "HS256", "claims": {"sub": "x"}},
        {"alg": "ES256"},
        {"alg": "ES256", "claims": "not an object"},
        {"claims": {"sub": "x"}},
        ["ES256", {"sub": "x"}],
        "ES256",
    ):
        assert post(unsignable) == 400, unsignable
    assert post(None, raw=b"{not json") == 400
    assert post(None, raw=b"\xff\xfe") == 400
    assert post(None, raw=b"") == 400
    assert post(good, path="/sign/../keys") == 400
    head = f"POST /sign HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\n"
    assert service_status(service, f"{head}Content-Length: abc\r\n\r\n".encode()) == 400
    assert service_status(service, f"{head}Content-Length: -5\r\n\r\n".encode()) == 400
    assert service_status(service, f"{head}Content-Length: 10000000\r\n\r\n".encode()) == 400
    assert service.signatures == 0, "a refused request was signed"

    # Refusals say nothing about why beyond a code; the one good request is signed.
    refused = requests.post(sign_url, json=good, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert refused.json() == {"error": "unauthorized"}
    signed = requests.post(sign_url, json=good, headers={"Authorization": f"Bearer {secret}"}, timeout=5)
    assert signed.status_code == 200
    signed_kid = jwt.get_unverified_header(signed.json()["token"])["kid"]
    assert signed_kid == remote_idp.registry.keystore.current_kid("ES256")
    assert service.signatures == 1

    # RemoteSigner turns a refusal into KeyUnavailable, never an HTTP library's exception.
    fetches = remote_idp.registry.operator_fetches
    with pytest.raises(KeyUnavailable):
        RemoteSigner(service.url, secret="wrong", outbound=fetches).sign({"sub": "x"}, alg="ES256")
    with pytest.raises(KeyUnavailable):
        RemoteSigner(service.url, secret=secret, outbound=fetches).sign({"sub": "x"}, alg="HS256")


# -- the service is down ---------------------------------------------------------------------------


@BOTH_BACKENDS
def test_while_the_service_is_down_token_requests_get_a_clean_503_and_nothing_is_lost(
    remote_idp: RemoteIdP,
) -> None:
    idp = remote_idp
    code = idp.sign_in(idp.agency[0], idp.agency_redirect, "openid profile email")
    tokens = idp.redeem(idp.agency, code, idp.agency_redirect)
    service, secret = idp.service, idp.registry.settings.signer_secret
    assert secret
    port = urlsplit(service.url).port
    service.stop()

    with pytest.raises(KeyUnavailable):
        RemoteSigner(service.url, secret=secret, outbound=idp.registry.operator_fetches).sign(
            {"sub": "x"}, alg="ES256"
        )
    for grant, auth in (
        ({"grant_type": "client_credentials", "scope": API_SCOPE}, idp.api),
        ({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, idp.agency),
    ):
        response = idp.token(auth, grant)
        assert response.status_code == 503, response.text
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Retry-After"].isdigit()
        assert response.json()["error"] == "temporarily_unavailable"
        assert "Traceback" not in response.text and "signing_key" not in response.text

    # What is already issued keeps working: verification stays in process, on the published keys.
    info = requests.get(
        f"{idp.url}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10
    )
    assert info.status_code == 200
    assert requests.get(f"{idp.url}/jwks.json", timeout=10).status_code == 200

    # Back up on the same address: the refresh token the failed request presented still works
    # (nothing was issued for it, so the retry is not mistaken for a stolen token's reuse).
    again = SigningService(idp.registry.signing_backend.signer, secret=secret, port=port or 0).start()
    try:
        retried = idp.token(
            idp.agency, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        )
        assert retried.status_code == 200, retried.text
        assert verified(idp, retried.json()["access_token"], alg="ES256", audience=idp.url)
        assert again.signatures == 1
    finally:
        again.stop()
