"""An agency talking to Hawiya's back channel (/token, /revoke, /introspect) through the Flask test
client, and the sign-in in a person's browser that gets it a code.

The agency authenticates as it registered: HTTP Basic with its secret, or (a public client) only its
``client_id`` in the form.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.test import TestResponse

from idp.http.context import SSO_COOKIE
from idp.registry import Registry
from tests.support.flask_person import FlaskPerson, authorize_url, pkce_pair, query_of


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (the tests that need a verified one use jwt_verifiers)."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def sso_handle(person: FlaskPerson) -> str:
    """The SSO session handle in the person's browser (the ``hawiya_sso`` cookie)."""
    cookie = person.browser.get_cookie(SSO_COOKIE, domain="localhost")
    assert cookie is not None, "the browser holds no SSO cookie"
    return cookie.value


def userinfo_status(app: Flask, access_token: str) -> int:
    """The status /userinfo answers for a bearer ``access_token``."""
    return app.test_client().get("/userinfo", headers={"Authorization": f"Bearer {access_token}"}).status_code


@dataclass
class Agency:
    """A registered client, calling Hawiya as its own code would."""

    app: Flask
    client_id: str
    secret: str | None
    redirect_uri: str

    @classmethod
    def register(
        cls,
        app: Flask,
        registry: Registry,
        *,
        port: int,
        grant_types: tuple[str, ...] = ("authorization_code", "refresh_token"),
        scope: str = "openid profile email offline_access",
        auth_method: str = "client_secret_basic",
        resources: tuple[str, ...] = (),
    ) -> Agency:
        """Register a client through the service (as the CLI would)."""
        redirect_uri = f"http://127.0.0.1:{port}/callback"
        new = registry.clients.create(
            name=f"Agency {port}",
            redirect_uris=[redirect_uri] if "authorization_code" in grant_types else [],
            auth_method=auth_method,
            grant_types=grant_types,
            scope=scope,
            resources=resources,
        )
        return cls(app, new.client.client_id, new.client_secret, redirect_uri)

    def post(self, path: str, data: dict[str, str], *, secret: str | None = None) -> TestResponse:
        """POST a form to ``path`` authenticated as this client (``secret`` overrides its own)."""
        secret = secret if secret is not None else self.secret
        if secret is None:
            return self.app.test_client().post(path, data={**data, "client_id": self.client_id})
        return self.app.test_client().post(path, data=data, auth=(self.client_id, secret))

    def request_url(self, scope: str, **extra: str) -> tuple[str, str]:
        """An authorization request of this agency for ``scope``, with PKCE (``extra`` adds or
        replaces parameters); (its URL, its code_verifier)."""
        verifier, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope,
            "state": "st",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        return authorize_url(**params), verifier

    def authorize(self, person: FlaskPerson, scope: str) -> tuple[str, str]:
        """The person signs in (or uses their SSO session) and consents; (code, code_verifier)."""
        url, verifier = self.request_url(scope)
        back = person.go(url)
        assert back.startswith(self.redirect_uri + "?"), back
        return query_of(back)["code"][0], verifier

    def redeem(self, code: str, verifier: str) -> TestResponse:
        """Exchange a code at /token."""
        return self.post(
            "/token",
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": verifier,
            },
        )

    def sign_in(self, person: FlaskPerson, scope: str) -> dict[str, Any]:
        """Authorize and redeem the code; the token response."""
        response = self.redeem(*self.authorize(person, scope))
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.json is not None
        return response.json

    def refresh(self, refresh_token: str, **extra: str) -> TestResponse:
        """Use a refresh token at /token."""
        return self.post("/token", {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra})

    def revoke(self, token: str, hint: str | None = None) -> TestResponse:
        """RFC 7009 revocation."""
        return self.post("/revoke", {"token": token, **({"token_type_hint": hint} if hint else {})})

    def introspect(self, token: str, hint: str | None = None) -> dict[str, Any]:
        """RFC 7662 introspection; the answer (which must be a 200)."""
        response = self.post("/introspect", {"token": token, **({"token_type_hint": hint} if hint else {})})
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.headers["Cache-Control"] == "no-store"
        assert response.json is not None
        return response.json
