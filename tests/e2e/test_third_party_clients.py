"""Full sign-ins with real third-party relying-party implementations, no mocks.

An agency will not use Hawiya's own RP library only: it may use Authlib's OAuth 2 client (or its
Flask integration) or idpyoidc. Each of them here discovers the live IdP, sends a real
authorization request (state, nonce, PKCE S256), lets a person sign in and consent on Hawiya's real
pages, redeems the code at the token endpoint with its own client authentication, verifies the ID
token its own way and calls userinfo. Then every token is verified once more, independently, with
PyJWT and python-jose against the JWKS published at ``jwks_uri``, each pinned to the one algorithm
the token must use (tests/support/jwt_verifiers.py).
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata
from flask import Flask, jsonify
from idpyoidc.client.defaults import DEFAULT_OIDC_SERVICES
from idpyoidc.client.oauth2.stand_alone_client import StandAloneClient
from idpyoidc.message.oidc import RegistrationResponse
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import KeySet

from tests.conftest import PASSWORD, LiveServer, World
from tests.support.jwt_verifiers import ACR_LOW, AMR_PASSWORD, LEEWAY, IndependentVerifier
from tests.support.person import Person

SCOPE = "openid profile email"
CITIZEN_EMAIL = "fatima@example.org"
CITIZEN_NAME = "Fatima Al-Sabah"


# -- what every flow checks ---------------------------------------------------------------------


def discover(issuer: str) -> dict[str, Any]:
    """The discovery document, validated by Authlib's OpenID Provider metadata rules."""
    response = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
    assert response.status_code == 200
    metadata: dict[str, Any] = response.json()
    OpenIDProviderMetadata(metadata).validate()
    assert metadata["issuer"] == issuer
    assert "S256" in metadata["code_challenge_methods_supported"]
    return metadata


def authorization_response(back: str, *, redirect_uri: str, issuer: str, state: str) -> dict[str, str]:
    """The parameters Hawiya sent back to the agency's redirect_uri, for a successful sign-in."""
    assert back.split("?", 1)[0] == redirect_uri
    params = {key: values[0] for key, values in parse_qs(urlsplit(back).query).items()}
    assert "error" not in params, params
    assert params["state"] == state
    assert params["iss"] == issuer  # RFC 9207 section 2
    assert params["code"]
    return params


def independently_verified(
    verifier: IndependentVerifier,
    world: World,
    *,
    client_id: str,
    id_token: str,
    id_token_alg: str,
    nonce: str,
    access_token: str,
    expires_in: int,
    userinfo: dict[str, Any],
) -> str:
    """Check both tokens with PyJWT and python-jose and tie them to userinfo; return the sub."""
    id_claims = verifier.id_token(
        id_token, alg=id_token_alg, client_id=client_id, nonce=nonce, access_token=access_token
    )
    at_claims = verifier.access_token(access_token, client_id=client_id, expires_in=expires_in)
    sub = id_claims["sub"]
    assert at_claims["sub"] == sub
    assert userinfo["sub"] == sub
    # Same SSO session and the same authentication behind both tokens.
    assert at_claims["sid"] == id_claims["sid"]
    assert at_claims["auth_time"] == id_claims["auth_time"]
    # Pairwise subject (OIDC Core 8.1): the agency never learns the account's internal id.
    assert sub != world.citizen_id
    assert world.citizen_id not in sub
    assert "citizen" not in sub
    return sub


def authlib_validated_id_token(
    metadata: dict[str, Any],
    jwks: dict[str, Any],
    token: dict[str, Any],
    *,
    client_id: str,
    nonce: str,
    alg: str,
) -> CodeIDToken:
    """Authlib's own OIDC Core ID token validation over a joserfc-verified JWS pinned to ``alg``."""
    decoded = joserfc_jwt.decode(token["id_token"], KeySet.import_key_set(jwks), algorithms=[alg])
    assert decoded.header["alg"] == alg
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {
            "iss": {"essential": True, "value": metadata["issuer"]},
            "aud": {"essential": True, "value": client_id},
            "sub": {"essential": True},
            "auth_time": {"essential": True},
            "acr": {"essential": True, "value": ACR_LOW},
            "sid": {"essential": True},
        },
        {"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
    )
    # Checks iss, aud, exp, iat, nonce, azp and at_hash (against the access token it came with).
    claims.validate(leeway=LEEWAY)
    assert claims["amr"] == AMR_PASSWORD
    return claims


def assert_citizen_claims(userinfo: dict[str, Any]) -> None:
    """What ``openid profile email`` releases about the citizen, and nothing that correlates."""
    assert userinfo["email"] == CITIZEN_EMAIL
    assert userinfo["email_verified"] is True
    assert userinfo["name"] == CITIZEN_NAME
    assert userinfo["given_name"] == "Fatima"
    assert "preferred_username" not in userinfo
    assert "phone_number" not in userinfo  # phone was not requested


# -- Authlib ------------------------------------------------------------------------------------


def test_authlib_oauth2_session_confidential_client(live_server: LiveServer) -> None:
    """Authlib's requests client: client_secret_basic, state, nonce, PKCE S256, RS256 ID token."""
    world = live_server.world
    metadata = discover(live_server.url)
    verifier = IndependentVerifier(live_server.url)
    nonce = generate_token(32)
    code_verifier = generate_token(64)
    person = Person(live_server.url, "citizen", PASSWORD)

    with OAuth2Session(
        world.confidential_id,
        world.confidential_secret,
        scope=SCOPE,
        redirect_uri=world.redirect_uri,
        token_endpoint_auth_method="client_secret_basic",
        code_challenge_method="S256",
    ) as rp:
        url, state = rp.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce
        )
        assert parse_qs(urlsplit(url).query)["code_challenge_method"] == ["S256"]
        back = person.go(url)
        # First visit: Hawiya asked the person to share profile and email with this agency.
        assert any('name="decision" value="approve"' in page for page in person.pages)
        authorization_response(back, redirect_uri=world.redirect_uri, issuer=live_server.url, state=state)

        token = rp.fetch_token(
            metadata["token_endpoint"], authorization_response=back, state=state, code_verifier=code_verifier
        )
        assert token["token_type"].lower() == "bearer"
        assert set(token["scope"].split()) == set(SCOPE.split())
        id_claims = authlib_validated_id_token(
            metadata, verifier.jwks, token, client_id=world.confidential_id, nonce=nonce, alg="RS256"
        )

        info = rp.get(metadata["userinfo_endpoint"])
        assert info.status_code == 200, info.text
        userinfo = info.json()
        assert_citizen_claims(userinfo)

        # The code is single use: Authlib redeeming it again is refused.
        with pytest.raises(OAuthError) as replay:
            rp.fetch_token(
                metadata["token_endpoint"],
                authorization_response=back,
                state=state,
                code_verifier=code_verifier,
            )
        assert replay.value.error == "invalid_grant"

    sub = independently_verified(
        verifier,
        world,
        client_id=world.confidential_id,
        id_token=token["id_token"],
        id_token_alg="RS256",
        nonce=nonce,
        access_token=token["access_token"],
        expires_in=token["expires_in"],
        userinfo=userinfo,
    )
    assert id_claims["sub"] == sub


def test_authlib_oauth2_session_public_client_requires_pkce(live_server: LiveServer) -> None:
    """Authlib's client as a public client (token auth ``none``): PKCE S256 is required and checked."""
    world = live_server.world
    metadata = discover(live_server.url)
    verifier = IndependentVerifier(live_server.url)
    person = Person(live_server.url, "citizen", PASSWORD)

    def public_client(**kwargs: Any) -> OAuth2Session:
        return OAuth2Session(
            world.public_id,
            None,
            scope=SCOPE,
            redirect_uri=world.public_redirect_uri,
            token_endpoint_auth_method="none",
            **kwargs,
        )

    # Without a code challenge, the (verified) redirect_uri gets an invalid_request error.
    with public_client() as rp:
        url, state = rp.create_authorization_url(metadata["authorization_endpoint"], nonce=generate_token(32))
        assert "code_challenge" not in parse_qs(urlsplit(url).query)
        back = person.go(url)
    assert back.split("?", 1)[0] == world.public_redirect_uri
    refused = parse_qs(urlsplit(back).query)
    assert refused["error"] == ["invalid_request"]
    assert refused["state"] == [state]
    assert "code" not in refused

    # With a challenge but the wrong verifier at /token, the code is refused.
    with public_client(code_challenge_method="S256") as rp:
        url, state = rp.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=generate_token(64), nonce=generate_token(32)
        )
        back = person.go(url)
        authorization_response(
            back, redirect_uri=world.public_redirect_uri, issuer=live_server.url, state=state
        )
        with pytest.raises(OAuthError) as wrong:
            rp.fetch_token(
                metadata["token_endpoint"],
                authorization_response=back,
                state=state,
                code_verifier=generate_token(64),
            )
        assert wrong.value.error == "invalid_grant"

    # The real flow: S256 challenge, the matching verifier, no client secret.
    nonce = generate_token(32)
    code_verifier = generate_token(64)
    with public_client(code_challenge_method="S256") as rp:
        url, state = rp.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce
        )
        back = person.go(url)
        authorization_response(
            back, redirect_uri=world.public_redirect_uri, issuer=live_server.url, state=state
        )
        token = rp.fetch_token(
            metadata["token_endpoint"], authorization_response=back, state=state, code_verifier=code_verifier
        )
        # Clients created through Hawiya's services get ES256 ID tokens unless asked otherwise.
        id_claims = authlib_validated_id_token(
            metadata, verifier.jwks, token, client_id=world.public_id, nonce=nonce, alg="ES256"
        )
        info = rp.get(metadata["userinfo_endpoint"])
        assert info.status_code == 200, info.text
        userinfo = info.json()
        assert_citizen_claims(userinfo)

    sub = independently_verified(
        verifier,
        world,
        client_id=world.public_id,
        id_token=token["id_token"],
        id_token_alg="ES256",
        nonce=nonce,
        access_token=token["access_token"],
        expires_in=token["expires_in"],
        userinfo=userinfo,
    )
    assert id_claims["sub"] == sub


def agency_app(issuer: str, world: World) -> Flask:
    """A minimal agency web app built on Authlib's Flask client, as an agency would write it."""
    app = Flask("agency")
    app.secret_key = secrets.token_hex(32)
    oauth = OAuth(app)
    oauth.register(
        "hawiya",
        client_id=world.confidential_id,
        client_secret=world.confidential_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": SCOPE,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic",
        },
    )

    @app.get("/login")
    def login() -> Any:
        return oauth.hawiya.authorize_redirect(world.redirect_uri)

    @app.get("/callback")
    def callback() -> Any:
        token = oauth.hawiya.authorize_access_token(
            claims_options={
                "iss": {"essential": True, "value": issuer},
                "aud": {"essential": True, "value": world.confidential_id},
            },
            leeway=LEEWAY,
        )
        userinfo = oauth.hawiya.userinfo(token=token)
        return jsonify(token=token, id_claims=dict(token["userinfo"]), userinfo=dict(userinfo))

    return app


def test_authlib_flask_client_integration(live_server: LiveServer) -> None:
    """Authlib's Flask integration keeps state, nonce and the PKCE verifier itself and validates
    the ID token (signature from jwks_uri, iss, aud, nonce, at_hash) before the agency sees it."""
    world = live_server.world
    verifier = IndependentVerifier(live_server.url)
    agency = agency_app(live_server.url, world).test_client()
    person = Person(live_server.url, "citizen", PASSWORD)

    start = agency.get("/login")
    assert start.status_code == 302
    authorize_url = start.headers["Location"]
    request_params = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    assert authorize_url.startswith(f"{live_server.url}/authorize?")
    assert request_params["code_challenge_method"] == "S256"

    back = person.go(authorize_url)
    params = authorization_response(
        back, redirect_uri=world.redirect_uri, issuer=live_server.url, state=request_params["state"]
    )
    done = agency.get("/callback", query_string=params)
    assert done.status_code == 200, done.text
    result = done.get_json()
    token = result["token"]
    assert result["id_claims"]["nonce"] == request_params["nonce"]
    assert result["id_claims"]["aud"] == world.confidential_id
    assert_citizen_claims(result["userinfo"])

    independently_verified(
        verifier,
        world,
        client_id=world.confidential_id,
        id_token=token["id_token"],
        id_token_alg="RS256",
        nonce=request_params["nonce"],
        access_token=token["access_token"],
        expires_in=token["expires_in"],
        userinfo=result["userinfo"],
    )


# -- idpyoidc -----------------------------------------------------------------------------------


def idpyoidc_client(
    issuer: str,
    *,
    client_id: str,
    client_secret: str | None,
    redirect_uri: str,
    auth_method: str,
    id_token_alg: str,
) -> StandAloneClient:
    """An idpyoidc RP statically registered at Hawiya, with PKCE S256, after dynamic discovery."""
    config: dict[str, Any] = {
        "issuer": issuer,
        "client_id": client_id,
        "redirect_uris": [redirect_uri],
        "client_type": "oidc",
        "preference": {
            "response_types": ["code"],
            "token_endpoint_auth_method": auth_method,
            "id_token_signed_response_alg": id_token_alg,
            "scopes_supported": SCOPE.split(),
        },
        "add_ons": {
            "pkce": {
                "function": "idpyoidc.client.oauth2.add_on.pkce.add_support",
                "kwargs": {"code_challenge_length": 64, "code_challenge_method": "S256"},
            }
        },
    }
    if client_secret is not None:
        config["client_secret"] = client_secret
    client = StandAloneClient(config=config, services=DEFAULT_OIDC_SERVICES)
    # Discovery over http is allowed by idpyoidc for an http issuer (it passes allow_http itself).
    assert client.do_provider_info() == issuer
    client.do_client_registration()
    # What static registration at Hawiya agreed on; idpyoidc pins the ID token's alg from it
    # (``id_token_signed_response_alg`` becomes its ``sigalg`` verify argument).
    client.get_context().registration_response = RegistrationResponse(
        client_id=client_id,
        redirect_uris=[redirect_uri],
        token_endpoint_auth_method=auth_method,
        id_token_signed_response_alg=id_token_alg,
    )
    return client


def run_idpyoidc_flow(
    live_server: LiveServer,
    person: Person,
    *,
    client_id: str,
    client_secret: str | None,
    redirect_uri: str,
    auth_method: str,
    id_token_alg: str,
) -> tuple[dict[str, Any], str, str, int, dict[str, Any], str]:
    """Authorization request, response, token and userinfo through idpyoidc's own services.

    Returns (verified ID token claims, raw ID token, access token, expires_in, userinfo, nonce).
    """
    client = idpyoidc_client(
        live_server.url,
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        auth_method=auth_method,
        id_token_alg=id_token_alg,
    )
    url = client.init_authorization(req_args={"scope": SCOPE})
    request_params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert request_params["code_challenge_method"] == "S256"
    assert request_params["nonce"]

    back = person.go(url)
    params = authorization_response(
        back, redirect_uri=redirect_uri, issuer=live_server.url, state=request_params["state"]
    )
    # idpyoidc parses the response, checks state and the RFC 9207 iss against the discovered issuer.
    parsed = client.finalize_auth(params)
    assert "error" not in parsed, parsed.to_dict()
    state = parsed["state"]

    # The token request (client auth + code_verifier); idpyoidc verifies the ID token against the
    # keys from jwks_uri: signature with the registered alg, iss, aud, azp, exp, iat, and that the
    # nonce belongs to this state.
    tokens = client.get_access_and_id_token(parsed, state=state)
    verified = tokens["id_token"]
    assert verified is not None, "idpyoidc got no verified ID token"
    assert verified.jws_header["alg"] == id_token_alg
    stored = client.get_context().cstate.get_set(state, claim=["id_token", "expires_in"])

    userinfo = client.get_user_info(state=state, access_token=tokens["access_token"])
    assert "error" not in userinfo, userinfo.to_dict()
    return (
        verified.to_dict(),
        stored["id_token"],
        tokens["access_token"],
        int(stored["expires_in"]),
        userinfo.to_dict(),
        request_params["nonce"],
    )


def test_idpyoidc_confidential_client(live_server: LiveServer) -> None:
    """idpyoidc: discovery, PKCE S256, client_secret_basic, its own RS256 ID token verification."""
    world = live_server.world
    verifier = IndependentVerifier(live_server.url)
    person = Person(live_server.url, "citizen", PASSWORD)
    id_claims, id_token, access_token, expires_in, userinfo, nonce = run_idpyoidc_flow(
        live_server,
        person,
        client_id=world.confidential_id,
        client_secret=world.confidential_secret,
        redirect_uri=world.redirect_uri,
        auth_method="client_secret_basic",
        id_token_alg="RS256",
    )
    assert id_claims["nonce"] == nonce
    assert id_claims["acr"] == ACR_LOW
    assert id_claims["amr"] == AMR_PASSWORD
    assert_citizen_claims(userinfo)
    sub = independently_verified(
        verifier,
        world,
        client_id=world.confidential_id,
        id_token=id_token,
        id_token_alg="RS256",
        nonce=nonce,
        access_token=access_token,
        expires_in=expires_in,
        userinfo=userinfo,
    )
    assert id_claims["sub"] == sub


def test_idpyoidc_public_client(live_server: LiveServer) -> None:
    """idpyoidc as a public client (token auth ``none``, PKCE S256, ES256 ID token)."""
    world = live_server.world
    verifier = IndependentVerifier(live_server.url)
    person = Person(live_server.url, "citizen", PASSWORD)
    id_claims, id_token, access_token, expires_in, userinfo, nonce = run_idpyoidc_flow(
        live_server,
        person,
        client_id=world.public_id,
        client_secret=None,
        redirect_uri=world.public_redirect_uri,
        auth_method="none",
        id_token_alg="ES256",
    )
    assert id_claims["nonce"] == nonce
    assert_citizen_claims(userinfo)
    sub = independently_verified(
        verifier,
        world,
        client_id=world.public_id,
        id_token=id_token,
        id_token_alg="ES256",
        nonce=nonce,
        access_token=access_token,
        expires_in=expires_in,
        userinfo=userinfo,
    )
    assert id_claims["sub"] == sub


# -- acting for a business ----------------------------------------------------------------------


def test_authlib_client_reads_the_organisation_a_person_acts_for(live_server: LiveServer) -> None:
    """Authlib's client asks for ``openid business`` with ``org_hint`` (the registration number):
    no picker, and the verified ID token and userinfo both name the organisation and the role."""
    world = live_server.world
    registry = world.registry
    org = registry.organisations.create(
        registration_number="CR-424242", name="Gulf Trading", name_ar="الخليج للتجارة", actor="test"
    )
    registry.organisations.grant(org.id, world.citizen_id, "signatory", by=None, operator="test")
    redirect_uri = "http://127.0.0.1:9041/callback"
    client = registry.clients.create(
        name="Chamber of Commerce",
        redirect_uris=[redirect_uri],
        scope="openid business",
        id_token_alg="RS256",
        auth_method="client_secret_basic",
    )
    expected = {
        "id": org.id,
        "registration_number": "CR-424242",
        "name": "Gulf Trading",
        "name#ar": "الخليج للتجارة",
        "role": "signatory",
    }
    metadata = discover(live_server.url)
    assert "business" in metadata["scopes_supported"] and "organisation" in metadata["claims_supported"]
    verifier = IndependentVerifier(live_server.url)
    nonce = generate_token(32)
    code_verifier = generate_token(64)
    person = Person(live_server.url, "citizen", PASSWORD)

    with OAuth2Session(
        client.client.client_id,
        client.client_secret,
        scope="openid business",
        redirect_uri=redirect_uri,
        token_endpoint_auth_method="client_secret_basic",
        code_challenge_method="S256",
    ) as rp:
        url, state = rp.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce, org_hint="CR-424242"
        )
        assert parse_qs(urlsplit(url).query)["org_hint"] == ["CR-424242"]
        back = person.go(url)  # sign-in and consent only: the hint named a usable organisation
        assert any('name="decision" value="approve"' in page for page in person.pages)
        assert not any('name="organisation"' in page for page in person.pages)
        authorization_response(back, redirect_uri=redirect_uri, issuer=live_server.url, state=state)
        token = rp.fetch_token(
            metadata["token_endpoint"], authorization_response=back, state=state, code_verifier=code_verifier
        )
        id_token = authlib_validated_id_token(
            metadata, verifier.jwks, token, client_id=client.client.client_id, nonce=nonce, alg="RS256"
        )
        info = rp.get(metadata["userinfo_endpoint"])
        assert info.status_code == 200, info.text
        userinfo = info.json()

    assert id_token["organisation"] == expected
    assert userinfo["organisation"] == expected
    id_claims = verifier.id_token(
        token["id_token"],
        alg="RS256",
        client_id=client.client.client_id,
        nonce=nonce,
        access_token=token["access_token"],
    )
    assert id_claims["organisation"] == expected  # PyJWT and python-jose read the same claim
    at_claims = verifier.access_token(
        token["access_token"], client_id=client.client.client_id, expires_in=token["expires_in"]
    )
    assert at_claims["org_id"] == org.id
    assert userinfo["sub"] == id_claims["sub"] == at_claims["sub"]
