"""The first real sign-in, through a real socket, with the flow played by a person."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from tests.conftest import PASSWORD, LiveServer
from tests.support.person import Person


def test_code_flow_with_pkce_and_sso(live_server: LiveServer) -> None:
    world = live_server.world
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    person = Person(live_server.url, "citizen", PASSWORD)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": world.confidential_id,
            "redirect_uri": world.redirect_uri,
            "scope": "openid profile email",
            "state": "s-1",
            "nonce": "n-1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    back = person.go(f"{live_server.url}/authorize?{query}")
    params = parse_qs(urlsplit(back).query)
    assert back.startswith(world.redirect_uri)
    assert params["state"] == ["s-1"]
    assert params["iss"] == [live_server.url]
    token = requests.post(
        f"{live_server.url}/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "redirect_uri": world.redirect_uri,
            "code_verifier": verifier,
        },
        auth=(world.confidential_id, world.confidential_secret),
        timeout=10,
    )
    assert token.status_code == 200, token.text
    info = requests.get(
        f"{live_server.url}/userinfo",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=10,
    )
    assert info.json()["email"] == "fatima@example.org"

    # A second client in the same browser: no new sign-in (SSO); its consent page only.
    verifier2 = secrets.token_urlsafe(48)
    challenge2 = base64.urlsafe_b64encode(hashlib.sha256(verifier2.encode()).digest()).decode().rstrip("=")
    pages_before = len(person.pages)
    query2 = urlencode(
        {
            "response_type": "code",
            "client_id": world.public_id,
            "redirect_uri": world.public_redirect_uri,
            "scope": "openid",
            "state": "s-2",
            "code_challenge": challenge2,
            "code_challenge_method": "S256",
        }
    )
    back2 = person.go(f"{live_server.url}/authorize?{query2}")
    assert "code" in parse_qs(urlsplit(back2).query)
    assert not any('name="password"' in page for page in person.pages[pages_before:])
