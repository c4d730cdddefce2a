"""Interop: hawiya_rp against a second, independent OpenID Provider, panva's ``oidc-provider``
(the certified Node.js OP, tests/rp/oidc_provider/server.mjs), started on a loopback port.

The same library and the same calls an agency makes against Hawiya: discovery, the authorization
code flow with PKCE S256 (its development login and consent pages driven with ``requests``), the
RFC 9207 ``iss`` check, the code exchange with client_secret_basic, ID token validation, userinfo
with the ``sub`` check, refresh, and the JWKS cache. Run once with ES256 and once with RS256 ID
tokens; the OP publishes one key of each, so the library must pick the signing key by ``kid``.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterator, Mapping
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest
import requests
from hawiya_rp.client import AuthorizationRequest, ClientConfig, OpenIDClient
from hawiya_rp.errors import AuthorizationError, IssuerMismatch, StateMismatch
from hawiya_rp.http import Response, UrllibClient

from tests.support.oidc_provider import RunningOP, run_oidc_provider

#: Redirects one login may take (authorize → login → resume → consent → resume → redirect_uri).
MAX_STEPS = 12


@pytest.fixture(scope="module", params=["ES256", "RS256"])
def op(request: pytest.FixtureRequest) -> Iterator[RunningOP]:
    with run_oidc_provider(signing_alg=request.param) as running:
        yield running


class CountingHttp(UrllibClient):
    """The library's own HTTP client, counting the GETs it makes (to see what the caches spare)."""

    def __init__(self) -> None:
        super().__init__()
        self.gets: list[str] = []

    def get_json(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        self.gets.append(url)
        return super().get_json(url, headers=headers)


def make_client(
    op: RunningOP,
    http: CountingHttp | None = None,
    *,
    scope: str = "openid profile",
    clock: Callable[[], float] = time.time,
) -> OpenIDClient:
    issuer, client_id, client_secret, redirect_uri = op
    config = ClientConfig(
        issuer=issuer,
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        scope=scope,
    )
    return OpenIDClient(config, http=http, clock=clock)


class _Forms(HTMLParser):
    """The forms of one page: action and the named inputs with their values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append((attributes.get("action", ""), {}))
        elif tag == "input" and self.forms and attributes.get("name"):
            self.forms[-1][1][attributes["name"]] = attributes.get("value", "")


def _form(html: str) -> tuple[str, dict[str, str]]:
    parser = _Forms()
    parser.feed(html)
    parser.close()
    assert len(parser.forms) == 1, f"expected one form on the interaction page, found {len(parser.forms)}"
    return parser.forms[0]


def sign_in(authorization_url: str, redirect_uri: str, *, login: str, abort: bool = False) -> dict[str, str]:
    """Drive oidc-provider's development login and consent pages like a browser would, following
    redirects by hand until one points at ``redirect_uri``; return that redirect's query.

    With ``abort`` the user cancels on the login page instead (the OP answers access_denied).
    """
    with requests.Session() as browser:
        url = authorization_url
        response = browser.get(url, allow_redirects=False, timeout=10)
        for _ in range(MAX_STEPS):
            if response.status_code in (302, 303):
                url = urljoin(url, response.headers["Location"])
                if url.startswith(redirect_uri + "?") or url == redirect_uri:
                    return dict(parse_qsl(urlsplit(url).query, strict_parsing=True))
                response = browser.get(url, allow_redirects=False, timeout=10)
                continue
            assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:500]}"
            action, fields = _form(response.text)
            if abort:
                url = urljoin(url, action.rstrip("/") + "/abort")
                response = browser.get(url, allow_redirects=False, timeout=10)
                continue
            if fields.get("prompt") == "login":
                fields.update(login=login, password="any password will do")
            else:
                assert fields.get("prompt") == "consent", fields
            url = urljoin(url, action)
            response = browser.post(url, data=fields, allow_redirects=False, timeout=10)
        raise AssertionError(f"no redirect to {redirect_uri} after {MAX_STEPS} steps (last: {url})")


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_discovery(op: RunningOP) -> None:
    client = make_client(op)

    metadata = client.metadata()

    assert metadata["issuer"] == op.issuer
    assert metadata["authorization_endpoint"] == f"{op.issuer}/auth"
    assert metadata["token_endpoint"] == f"{op.issuer}/token"
    assert metadata["jwks_uri"] == f"{op.issuer}/jwks"
    # What the library relies on: PKCE S256 and the RFC 9207 iss parameter.
    assert "S256" in metadata["code_challenge_methods_supported"]
    assert metadata["authorization_response_iss_parameter_supported"] is True


def test_authorization_request_carries_pkce_state_and_nonce(op: RunningOP) -> None:
    client = make_client(op)

    request = client.authorization_request()

    params = query_of(request.url)
    assert request.url.startswith(f"{op.issuer}/auth?")
    assert params["response_type"] == "code"
    assert params["client_id"] == op.client_id
    assert params["redirect_uri"] == op.redirect_uri
    assert params["scope"].split() == ["openid", "profile"]
    assert params["state"] == request.state
    assert params["nonce"] == request.nonce
    assert params["code_challenge_method"] == "S256"
    digest = hashlib.sha256(request.code_verifier.encode("ascii")).digest()
    assert params["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def test_code_flow_userinfo_and_refresh(op: RunningOP) -> None:
    http = CountingHttp()
    client = make_client(op, http)
    request = client.authorization_request()
    # The request survives the round trip through a session, as in the Flask integration.
    request = AuthorizationRequest.from_dict(request.to_dict())

    query = sign_in(request.url, op.redirect_uri, login="alice")

    assert set(query) == {"code", "state", "iss"}, query
    assert query["state"] == request.state
    assert query["iss"] == op.issuer  # RFC 9207, sent by oidc-provider by default
    tokens = client.complete(query, request)

    assert tokens.sub == "alice"
    assert tokens.claims["iss"] == op.issuer
    assert tokens.claims["aud"] in (op.client_id, [op.client_id])
    assert tokens.claims["nonce"] == request.nonce
    # oidc-provider leaves at_hash out of code-flow ID tokens (optional there, OIDC Core 3.1.3.6).
    assert tokens.access_token and tokens.id_token and tokens.refresh_token
    assert tokens.expires_at is not None

    info = client.userinfo(tokens.access_token, expected_sub=tokens.sub)
    assert info["sub"] == "alice"
    assert info["name"] == "Interop alice"
    assert info["preferred_username"] == "alice"

    refreshed = client.refresh(tokens.refresh_token, previous_claims=tokens.claims)
    assert refreshed.access_token and refreshed.access_token != tokens.access_token
    assert refreshed.sub == "alice"
    # oidc-provider sends an ID token on refresh (with the original nonce; within the same second and
    # under RS256 it is byte for byte the first one); the library validated it (signature, iss, aud,
    # times, the same sub and nonce as before, OIDC Core 12.2) before returning its claims.
    assert refreshed.id_token is not None
    assert refreshed.claims["sub"] == tokens.claims["sub"]
    assert refreshed.claims.get("nonce") == tokens.claims["nonce"]
    assert client.userinfo(refreshed.access_token, expected_sub="alice")["sub"] == "alice"

    # Discovery was fetched once for all of this.
    assert http.gets.count(f"{op.issuer}/.well-known/openid-configuration") == 1


def test_jwks_is_cached_across_validations(op: RunningOP) -> None:
    """oidc-provider's JWKS carries no Cache-Control, so the library's default lifetime applies:
    later validations within it, of the same token or of a new login's, do not fetch the keys
    again, even once the refetch rate limit has passed; after it, the keys are fetched anew."""
    http = CountingHttp()
    offset = 0.0
    client = make_client(op, http, clock=lambda: time.time() + offset)
    jwks_uri = f"{op.issuer}/jwks"
    lifetime = client.jwks.default_max_age  # 300 s; the OP's ID tokens live 600 s

    first_request = client.authorization_request()
    first = client.complete(sign_in(first_request.url, op.redirect_uri, login="bob"), first_request)
    assert http.gets.count(jwks_uri) == 1

    offset = client.jwks.min_refetch + 30  # past the rate limit, well within the lifetime
    again = client.validate_id_token(first.id_token or "", nonce=first_request.nonce)
    assert again["sub"] == "bob"
    second_request = client.authorization_request()
    second = client.complete(sign_in(second_request.url, op.redirect_uri, login="carol"), second_request)
    assert second.sub == "carol"
    assert http.gets.count(jwks_uri) == 1

    offset = lifetime + 10  # stale now: fetched once more, and the token still validates
    assert client.validate_id_token(first.id_token or "", nonce=first_request.nonce)["sub"] == "bob"
    assert http.gets.count(jwks_uri) == 2


def test_mix_up_and_state_mismatch_are_refused(op: RunningOP) -> None:
    client = make_client(op)
    request = client.authorization_request()
    query = sign_in(request.url, op.redirect_uri, login="dave")

    with pytest.raises(IssuerMismatch):
        client.complete({**query, "iss": "http://localhost:1/another-op"}, request)
    without_iss = {key: value for key, value in query.items() if key != "iss"}
    with pytest.raises(IssuerMismatch):
        client.complete(without_iss, request)  # the OP advertises RFC 9207: iss is required
    with pytest.raises(StateMismatch):
        client.complete({**query, "state": "not-the-state-we-sent"}, request)

    # The refusals did not spend the code: the genuine response still completes.
    assert client.complete(query, request).sub == "dave"


def test_user_cancelling_is_an_authorization_error(op: RunningOP) -> None:
    client = make_client(op)
    request = client.authorization_request()

    query = sign_in(request.url, op.redirect_uri, login="erin", abort=True)

    assert query["error"] == "access_denied"
    assert query["iss"] == op.issuer
    with pytest.raises(AuthorizationError) as raised:
        client.complete(query, request)
    assert raised.value.error == "access_denied"


def test_logout_url_is_accepted(op: RunningOP) -> None:
    client = make_client(op)
    request = client.authorization_request()
    tokens = client.complete(sign_in(request.url, op.redirect_uri, login="frank"), request)

    url = client.logout_url(id_token_hint=tokens.id_token, state="after-logout")

    assert url.startswith(f"{op.issuer}/session/end?")
    assert query_of(url)["client_id"] == op.client_id
    with requests.Session() as browser:
        page = browser.get(url, allow_redirects=False, timeout=10)
    # The OP validated the hint and asks the user to confirm (no error page).
    assert page.status_code == 200, page.text[:500]
    assert 'name="logout"' in page.text
