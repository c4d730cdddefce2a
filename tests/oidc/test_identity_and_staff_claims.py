"""The ``identity`` and ``staff`` scopes, ``name#ar``, and pairwise subjects by sector.

``identity`` releases what the national register (or a passport) vouches for and how it was
verified; ``staff`` releases a staff member's agency, department and roles, to a client of the same
agency only, whatever the scope or the ``claims`` parameter asks. A claim may also be asked for
alone (OIDC Core 5.5), with the person's consent. Subjects are pairwise by sector (OIDC Core 8.1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import jwt
import pytest
from flask import Flask

from idp.registry import Registry
from tests.conftest import PASSWORD, World
from tests.support.flask_person import FlaskPerson, authorize_url, pkce_pair, query_of
from tests.support.identity import national_id
from tests.support.mfa import MfaPerson

IDENTITY_WORDS = (
    "Your identity number or passport, nationality, date of birth, and how your identity was verified"
)
STAFF_WORDS = "Your agency, department and roles"
STAFF_CLAIMS = {"agency", "department", "roles"}
MOH = "Ministry of Health"


@dataclass
class Service:
    """A registered client: builds requests, redeems codes, verifies ID tokens (PyJWT), asks userinfo."""

    app: Flask
    issuer: str
    client_id: str
    secret: str
    redirect_uri: str
    _verifier: str = ""

    @classmethod
    def register(
        cls,
        app: Flask,
        registry: Registry,
        *,
        port: int,
        scope: str,
        agency: str | None = None,
        sector: str | None = None,
        host: str = "127.0.0.1",
    ) -> Service:
        redirect_uri = f"http://{host}:{port}/callback"
        new = registry.clients.create(
            name=f"Service {port}",
            agency=agency,
            redirect_uris=[redirect_uri],
            scope=scope,
            sector_identifier=sector,
        )
        assert new.client_secret is not None
        return cls(app, registry.settings.issuer, new.client.client_id, new.client_secret, redirect_uri)

    def sign_in(self, person: FlaskPerson, scope: str, *, consent: str = "approve", **extra: str) -> str:
        """Send the person through an authorization request; where Hawiya sent them back."""
        self._verifier, challenge = pkce_pair()
        return person.go(
            authorize_url(
                response_type="code",
                client_id=self.client_id,
                redirect_uri=self.redirect_uri,
                scope=scope,
                state="st",
                nonce="n-st",
                code_challenge=challenge,
                code_challenge_method="S256",
                **extra,
            ),
            consent=consent,
        )

    def tokens(self, location: str) -> dict[str, Any]:
        assert location.split("?", 1)[0] == self.redirect_uri, location
        params = query_of(location)
        assert "code" in params, params
        response = self.app.test_client().post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": params["code"][0],
                "redirect_uri": self.redirect_uri,
                "code_verifier": self._verifier,
            },
            auth=(self.client_id, self.secret),
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.json is not None
        return response.json

    def id_token(self, tokens: dict[str, Any]) -> dict[str, Any]:
        """The ID token's claims, verified by PyJWT against the published JWKS."""
        jwks = self.app.test_client().get("/jwks.json").json
        assert jwks is not None
        kid = jwt.get_unverified_header(tokens["id_token"])["kid"]
        claims: dict[str, Any] = jwt.decode(
            tokens["id_token"],
            jwt.PyJWKSet.from_dict(jwks)[kid].key,
            algorithms=["ES256"],
            audience=self.client_id,
            issuer=self.issuer,
            leeway=60,
        )
        assert claims["nonce"] == "n-st"
        return claims

    def userinfo(self, tokens: dict[str, Any]) -> dict[str, Any]:
        response = self.app.test_client().get(
            "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.json is not None
        return response.json

    def flow(self, person: FlaskPerson, scope: str, **extra: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """A whole sign-in; (verified ID token claims, userinfo)."""
        tokens = self.tokens(self.sign_in(person, scope, **extra))
        return self.id_token(tokens), self.userinfo(tokens)


def consent_pages(person: FlaskPerson) -> list[str]:
    return [page.get_data(as_text=True) for page in person.pages if page.request.path == "/consent"]


@pytest.fixture
def identity_service(app: Flask, registry: Registry) -> Service:
    return Service.register(app, registry, port=9501, scope="openid profile identity")


# -- identity --------------------------------------------------------------------------------------


def test_the_identity_scope_releases_the_citizen_s_register_identity(
    app: Flask, world: World, identity_service: Service
) -> None:
    person = FlaskPerson(app, "citizen", PASSWORD)
    id_claims, info = identity_service.flow(person, "openid profile identity")

    [consent] = consent_pages(person)
    assert IDENTITY_WORDS in consent and "Your name, date of birth and language" in consent
    assert info["national_id"] == national_id(1)
    assert info["nationality"] == "KW"
    assert info["proofing_level"] == "counter"
    assert "passport_number" not in info and "birthdate" not in info  # none on record
    assert info["name"] == "Fatima Al-Sabah" and info["name#ar"] == "فاطمة الصباح"
    # Scope claims go to userinfo; the ID token carries them only when asked for (OIDC Core 5.5).
    assert not {"national_id", "nationality", "proofing_level", "name#ar"} & set(id_claims)


def test_the_identity_scope_releases_the_birthdate_and_proofing_without_profile(
    app: Flask, registry: Registry, world: World, identity_service: Service
) -> None:
    registry.accounts.create(
        account_type="citizen",
        username="ahmad",
        password=PASSWORD,
        name="Ahmad Al-Ali",
        birthdate=date(1990, 4, 1),
        national_id=national_id(21),
        nationality="KW",
        proofing_level="document_check",
    )
    _id_claims, info = identity_service.flow(FlaskPerson(app, "ahmad", PASSWORD), "openid identity")
    assert info["birthdate"] == "1990-04-01"
    assert info["proofing_level"] == "document_check"
    assert info["national_id"] == national_id(21)
    assert "name" not in info and "name#ar" not in info  # profile was not asked for


def test_a_visitor_is_identified_by_passport(app: Flask, world: World, identity_service: Service) -> None:
    _id_claims, info = identity_service.flow(FlaskPerson(app, "visitor", PASSWORD), "openid identity")
    assert info["passport_number"] == "X1234567"
    assert info["nationality"] == "DE"
    assert info["proofing_level"] == "self_asserted"
    assert "national_id" not in info


def test_a_single_identity_claim_may_be_asked_for_with_consent(
    app: Flask, world: World, identity_service: Service
) -> None:
    person = FlaskPerson(app, "citizen", PASSWORD)
    claims = json.dumps({"userinfo": {"national_id": None}, "id_token": {"nationality": {"essential": True}}})
    id_claims, info = identity_service.flow(person, "openid", claims=claims)

    [consent] = consent_pages(person)
    assert "Your identity number or passport number" in consent
    assert "Your nationality" in consent
    assert IDENTITY_WORDS not in consent  # the claims, not the whole scope
    assert info["national_id"] == national_id(1)
    assert not {"nationality", "proofing_level", "name"} & set(info)
    assert id_claims["nationality"] == "KW" and "national_id" not in id_claims

    # Refused: nothing is released and the agency hears access_denied.
    again = FlaskPerson(app, "visitor", PASSWORD)
    back = identity_service.sign_in(again, "openid", claims=claims, consent="deny")
    assert query_of(back)["error"] == ["access_denied"]


def test_an_identity_claim_is_not_released_to_a_client_not_registered_for_identity(
    app: Flask, registry: Registry, world: World
) -> None:
    # The identity scope is granted to a client at registration; asking for its claims one by one
    # with the claims parameter must not get round that (else any client gets national ids).
    plain = Service.register(app, registry, port=9502, scope="openid profile")
    person = FlaskPerson(app, "citizen", PASSWORD)
    claims = json.dumps({"userinfo": {"national_id": None}, "id_token": {"national_id": None}})
    id_claims, info = plain.flow(person, "openid profile", claims=claims)
    assert "national_id" not in info, "a client not registered for identity received national_id"
    assert "national_id" not in id_claims
    assert all("Your identity number" not in page for page in consent_pages(person))


# -- staff -----------------------------------------------------------------------------------------


def test_staff_claims_go_to_the_staff_member_s_own_agency_only(
    app: Flask, registry: Registry, staff: MfaPerson
) -> None:
    own = Service.register(app, registry, port=9511, scope="openid staff", agency=MOH)
    other = Service.register(app, registry, port=9512, scope="openid staff", agency="Ministry of Interior")
    none = Service.register(app, registry, port=9513, scope="openid staff")
    ask = json.dumps({"userinfo": {"agency": None, "roles": None}, "id_token": {"roles": None}})

    id_claims, info = own.flow(staff, "openid staff", claims=ask)
    assert STAFF_WORDS in consent_pages(staff)[-1]
    assert info["agency"] == MOH and info["roles"] == ["helpdesk"]
    assert "department" not in info  # none on record
    assert id_claims["roles"] == ["helpdesk"]

    for service in (other, none):
        # Granted scope and claims asked for by name: still nothing about the staff member's work.
        id_claims, info = service.flow(staff, "openid staff", claims=ask)
        assert not STAFF_CLAIMS & set(info), service.client_id
        assert not STAFF_CLAIMS & set(id_claims), service.client_id
        assert info["sub"] == id_claims["sub"]


def test_staff_claims_are_never_about_a_person_who_is_not_staff(
    app: Flask, registry: Registry, world: World
) -> None:
    own = Service.register(app, registry, port=9514, scope="openid staff identity", agency=MOH)
    _id_claims, info = own.flow(FlaskPerson(app, "citizen", PASSWORD), "openid staff identity")
    assert not STAFF_CLAIMS & set(info)
    assert info["national_id"] == national_id(1)


# -- discovery -------------------------------------------------------------------------------------


def test_discovery_lists_the_new_scopes_and_claims(app: Flask) -> None:
    metadata = app.test_client().get("/.well-known/openid-configuration").json
    assert metadata is not None
    assert {"identity", "staff", "business"} <= set(metadata["scopes_supported"])
    assert {
        "name#ar",
        "national_id",
        "passport_number",
        "nationality",
        "birthdate",
        "proofing_level",
        "agency",
        "department",
        "roles",
        "organisation",
    } <= set(metadata["claims_supported"])
    assert "preferred_username" not in metadata["claims_supported"]
    assert len(metadata["claims_supported"]) == len(set(metadata["claims_supported"]))


# -- pairwise subjects -----------------------------------------------------------------------------


def test_one_sector_shares_a_subject_and_different_sectors_do_not(
    app: Flask, registry: Registry, world: World
) -> None:
    health_web = Service.register(app, registry, port=9521, scope="openid", sector="health.gov.kw")
    health_app = Service.register(
        app, registry, port=9522, scope="openid", sector="health.gov.kw", host="localhost"
    )
    interior = Service.register(app, registry, port=9523, scope="openid", sector="moi.gov.kw")
    person = FlaskPerson(app, "citizen", PASSWORD)
    subjects = {}
    for name, service in (("health_web", health_web), ("health_app", health_app), ("interior", interior)):
        id_claims, info = service.flow(person, "openid")
        assert info["sub"] == id_claims["sub"]  # userinfo resolves the pairwise subject back
        subjects[name] = id_claims["sub"]
    assert subjects["health_web"] == subjects["health_app"]
    assert subjects["interior"] != subjects["health_web"]
    assert world.citizen_id not in subjects.values()

    # Another person in the same sector has another subject.
    other, _ = health_web.flow(FlaskPerson(app, "resident", PASSWORD), "openid")
    assert other["sub"] != subjects["health_web"]
