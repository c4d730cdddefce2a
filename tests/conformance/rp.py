"""The conformance suite's side of the conversation: a relying party that sends the plan's
authorization requests, reads the answer in the response mode it asked for (a redirect with a query,
or a form_post page), redeems codes and checks every token as the OpenID Foundation's suite does.

ID tokens are verified with PyJWT against the keys Hawiya publishes at its ``jwks_uri`` (found
through discovery), with the algorithm pinned to the one the client registered. Times are checked
against the IdP's injected clock, so the time-based modules move time instead of sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import pytest
from flask import Flask
from werkzeug.test import TestResponse

from idp.clock import FrozenClock
from tests.conftest import PASSWORD, World
from tests.support.flask_person import AuthorizationResponse, FlaskPerson

#: The issuer of the test settings (idp.settings.Settings' default).
ISSUER = "http://localhost:8000"
#: The plan runs once with the default (query) response mode and once with form_post. A module whose
#: result is an authorization response (a code, an error, its parameters) runs in each mode; one
#: whose result is something else (a token, userinfo, a page, metadata) runs in the default mode.
RESPONSE_MODES = ("query", "form_post")
EACH_RESPONSE_MODE = pytest.mark.parametrize("response_mode", RESPONSE_MODES)
DEFAULT_RESPONSE_MODE = pytest.mark.parametrize("response_mode", RESPONSE_MODES[:1])
#: Members of a private JWK that must never be published.
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def person(app: Flask) -> FlaskPerson:
    """The citizen, at a fresh browser."""
    return FlaskPerson(app, "citizen", PASSWORD)


def path_of(url: str) -> str:
    """The path (and query) of one of Hawiya's endpoint URLs, for the Flask test client."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == ISSUER, f"{url} is not served by {ISSUER}"
    return parts.path + (f"?{parts.query}" if parts.query else "")


def at_hash(access_token: str) -> str:
    """OIDC Core 3.1.3.6 for RS256/ES256: base64url of the left half of SHA-256."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """An unsecured JWT (``alg: none``), as the suite builds unsigned request objects."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'oauth-authz-req+jwt'})}.{part(claims)}."


def signed_in_again(browser: FlaskPerson, since: int) -> bool:
    """True when the sign-in page was shown among the pages after the first ``since``."""
    return any(page.request.path == "/signin" for page in browser.pages[since:])


@dataclass(frozen=True)
class Flow:
    """One completed authorization: the request, the response, the tokens and the ID token's claims."""

    request: dict[str, str]
    response: AuthorizationResponse
    tokens: dict[str, Any]
    id_token: dict[str, Any]

    @property
    def access_token(self) -> str:
        """The access token of the token response."""
        return str(self.tokens["access_token"])


class ConformanceRP:
    """One registered client, driven as the suite drives it, in one response mode."""

    def __init__(
        self,
        app: Flask,
        clock: FrozenClock,
        *,
        client_id: str,
        secret: str | None,
        redirect_uri: str,
        response_mode: str,
        auth_method: str = "client_secret_basic",
        alg: str = "RS256",
        assertion: Callable[[], str] | None = None,
    ) -> None:
        assert response_mode in RESPONSE_MODES
        self.app = app
        self.clock = clock
        self.client_id = client_id
        self.secret = secret
        self.redirect_uri = redirect_uri
        self.response_mode = response_mode
        self.auth_method = auth_method
        self.alg = alg
        self._assertion = assertion
        self.http = app.test_client()

    @classmethod
    def of(cls, app: Flask, world: World, clock: FrozenClock, response_mode: str) -> ConformanceRP:
        """The world's confidential client (client_secret_basic, RS256 ID tokens), exempt from PKCE:
        the plan's modules send none, as the OpenID Foundation's suite does."""
        world.registry.clients.update(world.confidential_id, pkce_exempt=True)
        return cls(
            app,
            clock,
            client_id=world.confidential_id,
            secret=world.confidential_secret,
            redirect_uri=world.redirect_uri,
            response_mode=response_mode,
        )

    # -- the authorization request and its response ---------------------------------------------

    def request(self, **params: str | None) -> dict[str, str]:
        """The plan's default request (code flow, scope openid, state and nonce), with ``params``
        applied; a parameter given as None is left out."""
        base: dict[str, str | None] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid",
            "state": secrets.token_urlsafe(12),
            "nonce": secrets.token_urlsafe(12),
        }
        if self.response_mode == "form_post":
            base["response_mode"] = "form_post"
        base.update(params)
        return {key: value for key, value in base.items() if value is not None}

    @staticmethod
    def url(request: dict[str, str]) -> str:
        """``/authorize`` with ``request`` in the query, in the order given."""
        return "/authorize?" + urlencode(request)

    def _delivered(self, response: AuthorizationResponse, request: dict[str, str]) -> dict[str, str]:
        """Check where and how the response arrived (mode, redirect_uri, iss, state); its parameters."""
        redirect_uri = request.get("redirect_uri", self.redirect_uri)
        assert response.mode == self.response_mode, f"answered by {response.mode}, asked {self.response_mode}"
        if response.mode == "query":
            separator = "&" if "?" in redirect_uri else "?"
            assert response.uri.startswith(redirect_uri + separator), f"{response.uri} is not {redirect_uri}"
            assert "#" not in response.uri, "a code flow response never uses the fragment"
        else:
            assert response.uri == redirect_uri, f"the form posts to {response.uri}, not {redirect_uri}"
        repeated = [name for name, values in response.params.items() if len(values) != 1]
        assert not repeated, f"repeated response parameters {repeated}"
        params = {name: values[0] for name, values in response.params.items()}
        # RFC 9207: every authorization response, success or error, names its issuer.
        assert params.get("iss") == ISSUER, f"iss={params.get('iss')!r}"
        if "state" in request:
            assert params.get("state") == request["state"], f"state={params.get('state')!r}"
        else:
            assert "state" not in params
        return params

    def expect_code(self, response: AuthorizationResponse, request: dict[str, str]) -> str:
        """A successful response to ``request``; its code."""
        params = self._delivered(response, request)
        assert "error" not in params, f"error {params.get('error')}: {params.get('error_description')}"
        assert params.get("code"), f"no code in {params}"
        return params["code"]

    def expect_error(
        self, response: AuthorizationResponse, request: dict[str, str], *errors: str
    ) -> dict[str, str]:
        """An error response to ``request`` with one of ``errors``; its parameters."""
        params = self._delivered(response, request)
        assert params.get("error") in errors, f"error={params.get('error')!r}, expected one of {errors}"
        assert "code" not in params
        return params

    # -- the token endpoint ---------------------------------------------------------------------

    def token_request(self, data: dict[str, str], *, client_id: str | None = None) -> TestResponse:
        """POST ``data`` to /token, authenticated the way the client registered."""
        if self.auth_method == "client_secret_basic":
            assert self.secret is not None
            return self.http.post("/token", data=data, auth=(client_id or self.client_id, self.secret))
        if self.auth_method == "client_secret_post":
            assert self.secret is not None
            form = {**data, "client_id": client_id or self.client_id, "client_secret": self.secret}
            return self.http.post("/token", data=form)
        assert self.auth_method == "private_key_jwt" and self._assertion is not None
        form = {
            **data,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": self._assertion(),
        }
        return self.http.post("/token", data=form)

    def redeem(
        self, code: str, *, verifier: str | None = None, redirect_uri: str | None = None
    ) -> TestResponse:
        """Exchange ``code`` at /token."""
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri or self.redirect_uri,
        }
        if verifier is not None:
            data["code_verifier"] = verifier
        return self.token_request(data)

    def tokens(self, response: TestResponse) -> dict[str, Any]:
        """A successful token response (RFC 6749 5.1, OIDC Core 3.1.3.3)."""
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "application/json"
        assert response.headers.get("Cache-Control") == "no-store"
        body = response.json
        assert isinstance(body, dict)
        assert str(body.get("token_type", "")).lower() == "bearer", body
        assert isinstance(body.get("access_token"), str) and body["access_token"]
        assert isinstance(body.get("expires_in"), int) and body["expires_in"] > 0
        return body

    def expect_token_error(self, response: TestResponse, error: str) -> None:
        """A token endpoint error (RFC 6749 5.2) that issues nothing."""
        assert response.status_code == 400, response.get_data(as_text=True)
        body = response.json
        assert isinstance(body, dict) and body.get("error") == error, body
        assert "access_token" not in body and "id_token" not in body and "refresh_token" not in body

    # -- ID tokens ------------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        """The discovery document."""
        response = self.http.get("/.well-known/openid-configuration")
        assert response.status_code == 200
        document = response.json
        assert isinstance(document, dict)
        return document

    def jwks(self) -> dict[str, Any]:
        """The key set published at the discovery document's ``jwks_uri``."""
        response = self.http.get(path_of(self.discovery()["jwks_uri"]))
        assert response.status_code == 200
        keys = response.json
        assert isinstance(keys, dict) and isinstance(keys.get("keys"), list)
        return keys

    def signing_jwk(self, token: str) -> dict[str, Any]:
        """The published key the token's header names (by ``kid``), checked against the pinned alg."""
        header = jwt.get_unverified_header(token)
        assert header.get("alg") == self.alg, f"signed with {header.get('alg')!r}, registered {self.alg}"
        kid = header.get("kid")
        assert isinstance(kid, str) and kid, "the ID token header names no kid"
        matching = [key for key in self.jwks()["keys"] if key.get("kid") == kid]
        assert len(matching) == 1, f"{len(matching)} published keys have kid {kid!r}"
        jwk = matching[0]
        assert jwk.get("alg") == self.alg and jwk.get("use", "sig") == "sig", jwk
        return jwk

    def verify_id_token(
        self,
        token: str,
        *,
        nonce: str | None,
        access_token: str | None,
    ) -> dict[str, Any]:
        """OIDC Core 3.1.3.7: signature (pinned alg, key by kid from jwks_uri), iss, aud, azp, exp,
        iat, nonce, at_hash, auth_time. The claims."""
        key = jwt.PyJWK(self.signing_jwk(token), algorithm=self.alg).key
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[self.alg],
            audience=self.client_id,
            issuer=ISSUER,
            # Times are checked below against the IdP's (frozen) clock rather than the wall clock.
            options={
                "require": ["iss", "sub", "aud", "exp", "iat", "auth_time"],
                "verify_exp": False,
                "verify_iat": False,
            },
        )
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        assert self.client_id in audiences
        if len(audiences) > 1 or "azp" in claims:
            assert claims.get("azp") == self.client_id, f"azp={claims.get('azp')!r}"
        assert isinstance(claims["sub"], str) and 0 < len(claims["sub"]) <= 255
        now = self.clock.now()
        iat, exp, auth_time = claims["iat"], claims["exp"], claims["auth_time"]
        assert all(isinstance(t, int) for t in (iat, exp, auth_time)), claims
        assert iat <= now < exp, f"now={now} is outside iat={iat}..exp={exp}"
        assert auth_time <= iat, f"auth_time={auth_time} is after iat={iat}"
        if nonce is None:
            assert "nonce" not in claims, f"nonce={claims['nonce']!r} though none was sent"
        else:
            assert claims.get("nonce") == nonce, f"nonce={claims.get('nonce')!r}, sent {nonce!r}"
        if access_token is not None:
            assert claims.get("at_hash") == at_hash(access_token), f"at_hash={claims.get('at_hash')!r}"
        return claims

    # -- UserInfo -------------------------------------------------------------------------------

    def userinfo(self, access_token: str, *, how: str = "get") -> TestResponse:
        """Call UserInfo: ``get`` or ``post`` with a Bearer header, or ``body`` (form parameter)."""
        bearer = {"Authorization": f"Bearer {access_token}"}
        if how == "get":
            return self.http.get("/userinfo", headers=bearer)
        if how == "post":
            return self.http.post("/userinfo", headers=bearer)
        assert how == "body"
        return self.http.post("/userinfo", data={"access_token": access_token})

    def userinfo_claims(self, flow: Flow, *, how: str = "get") -> dict[str, Any]:
        """UserInfo for ``flow``'s access token; its ``sub`` must be the ID token's (OIDC Core 5.3.2)."""
        response = self.userinfo(flow.access_token, how=how)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "application/json"
        claims = response.json
        assert isinstance(claims, dict)
        assert claims.get("sub") == flow.id_token["sub"], "userinfo sub differs from the ID token's"
        return claims

    # -- the whole flow -------------------------------------------------------------------------

    def flow(
        self,
        browser: FlaskPerson,
        *,
        post: bool = False,
        verifier: str | None = None,
        **params: str | None,
    ) -> Flow:
        """Authorize (GET, or POST with ``post``), redeem the code, verify the ID token."""
        request = self.request(**params)
        if post:
            response = browser.authorize("/authorize", form=request)
        else:
            response = browser.authorize(self.url(request))
        code = self.expect_code(response, request)
        tokens = self.tokens(self.redeem(code, verifier=verifier))
        assert isinstance(tokens.get("id_token"), str), "no ID token for an openid request"
        claims = self.verify_id_token(
            tokens["id_token"], nonce=request.get("nonce"), access_token=tokens["access_token"]
        )
        return Flow(request, response, tokens, claims)


def assert_error_page(response: TestResponse) -> None:
    """A 400 page for the person: no redirect, and no form_post form to the unverified address."""
    assert response.status_code == 400, response.status_code
    assert response.mimetype == "text/html"
    assert "Location" not in response.headers
    html = response.get_data(as_text=True)
    assert "<html" in html and 'id="response"' not in html
