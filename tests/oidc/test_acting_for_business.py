"""Acting on behalf of an organisation (the ``business`` scope): after sign-in the person says
which organisation they act for (or the agency's ``org_hint`` names it), and the choice travels in
the code, the refresh family, the access token (``org_id``), the ID token and userinfo
(``organisation``). Only usable memberships count: not a suspended organisation's, not an expired
role's, not one removed meanwhile, and the token endpoint and userinfo look again."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from flask import Flask
from werkzeug.test import TestResponse

from idp.accounts.organisations import Org
from idp.clock import FrozenClock
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, PASSWORD, World
from tests.support.agency import Agency, jwt_claims, userinfo_status
from tests.support.flask_person import FlaskPerson, authorize_url, pkce_pair, query_of
from tests.support.person import hidden_fields

BUSINESS = "openid profile business"
PICKER = "/authorize/organisation"
_CHOICE = re.compile(r'<input type="radio" name="organisation" id="org-[^"]+" value="([^"]+)"')
_CHECKED = re.compile(r'<input type="radio" name="organisation" id="org-[^"]+" value="([^"]+)" checked')
#: What the consent page says the business scope shares.
BUSINESS_WORDS = "The organisation you act for and your role in it"


# -- the person, the agency and the organisations ----------------------------------------------------


class ActingPerson(FlaskPerson):
    """A person who also answers the organisation picker: chooses ``choice`` (an organisation
    id) or, with ``choice="cancel"``, cancels. Every picker page is kept in ``pickers``."""

    def __init__(self, app: Flask, username: str, *, choice: str | None = None) -> None:
        super().__init__(app, username, PASSWORD)
        self.choice = choice
        self.pickers: list[str] = []

    def _next_step(self, reached: TestResponse, html: str, consent: str) -> TestResponse | None:
        if reached.request.path == PICKER and reached.status_code == 200:
            self.pickers.append(html)
            assert self.choice is not None, "the organisation picker was not expected here"
            fields = hidden_fields(html)
            if self.choice == "cancel":
                fields["decision"] = "cancel"
            else:
                fields.update(decision="choose", organisation=self.choice)
            return self.post(PICKER, fields)
        return super()._next_step(reached, html, consent)

    def visited(self, path: str) -> bool:
        """True when a page at ``path`` was shown."""
        return any(page.request.path == path for page in self.pages)


@dataclass
class BusinessAgency(Agency):
    """An agency registered for the business scope, sending requests with any extra parameters."""

    verifiers: dict[str, str] = field(default_factory=dict)
    issuer: str = ""

    def url(self, state: str = "st", scope: str = BUSINESS, **extra: str) -> str:
        verifier, challenge = pkce_pair()
        self.verifiers[state] = verifier
        return authorize_url(
            response_type="code",
            client_id=self.client_id,
            redirect_uri=self.redirect_uri,
            scope=scope,
            state=state,
            nonce="n-" + state,
            code_challenge=challenge,
            code_challenge_method="S256",
            **extra,
        )

    def back(self, location: str, state: str = "st") -> dict[str, str]:
        """What reached the agency's redirect URI (with ``state`` and ``iss`` checked)."""
        assert location.split("?", 1)[0] == self.redirect_uri, location
        params = {key: values[0] for key, values in query_of(location).items()}
        assert params.get("state") == state and params.get("iss") == self.issuer, params
        return params

    def code_response(self, location: str, state: str = "st") -> TestResponse:
        """Redeem the code that came back in ``location``."""
        params = self.back(location, state)
        assert "code" in params, params
        return self.redeem(params["code"], self.verifiers[state])

    def tokens(self, location: str, state: str = "st") -> dict[str, Any]:
        response = self.code_response(location, state)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.json is not None
        return response.json

    def userinfo(self, tokens: dict[str, Any]) -> dict[str, Any]:
        response = self.app.test_client().get(
            "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.json is not None
        return response.json

    def id_token(self, tokens: dict[str, Any], state: str = "st") -> dict[str, Any]:
        """The ID token's claims, verified by PyJWT against the published JWKS (not Hawiya's code)."""
        jwks = self.app.test_client().get("/jwks.json").json
        assert jwks is not None
        header = jwt.get_unverified_header(tokens["id_token"])
        key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
        claims: dict[str, Any] = jwt.decode(
            tokens["id_token"],
            key.key,
            algorithms=["ES256"],
            audience=self.client_id,
            issuer=self.issuer,
            leeway=600,  # the test clock may have been moved forward
        )
        assert claims["nonce"] == "n-" + state
        return claims

    @classmethod
    def create(cls, app: Flask, registry: Registry, *, port: int, scope: str) -> BusinessAgency:
        """A confidential client (code + refresh) registered for ``scope``."""
        plain = Agency.register(app, registry, port=port, scope=scope)
        return cls(app, plain.client_id, plain.secret, plain.redirect_uri, issuer=registry.settings.issuer)


@pytest.fixture
def agency(app: Flask, registry: Registry) -> BusinessAgency:
    return BusinessAgency.create(app, registry, port=9401, scope="openid profile business offline_access")


@dataclass
class Orgs:
    """The citizen is signatory of ``gulf`` (owned by the resident), owner of ``desert``, employee
    of ``closed`` (suspended) and of ``lapsing`` (for a minute); ``other`` is the resident's only."""

    gulf: Org
    desert: Org
    closed: Org
    lapsing: Org
    other: Org
    citizen: str
    resident: str


@pytest.fixture
def orgs(registry: Registry, world: World) -> Orgs:
    organisations = registry.organisations
    resident = registry.accounts.by_username("resident")
    assert resident is not None

    def org(number: str, name: str, name_ar: str | None = None) -> Org:
        return organisations.create(registration_number=number, name=name, name_ar=name_ar, actor="test")

    def grant(o: Org, account_id: str, role: str, expires_at: datetime | None = None) -> None:
        organisations.grant(o.id, account_id, role, by=None, operator="test", expires_at=expires_at)

    gulf = org("CR-100200", "Gulf Trading", "الخليج للتجارة")
    desert = org("CR-300400", "Desert Foods")
    closed = org("CR-500600", "Closed Contracting")
    lapsing = org("CR-700800", "Lapsing Logistics")
    other = org("CR-900100", "Other Holdings")
    grant(gulf, resident.id, "owner")
    grant(gulf, world.citizen_id, "signatory")
    grant(desert, world.citizen_id, "owner")
    grant(closed, world.citizen_id, "employee")
    soon = datetime.fromtimestamp(registry.clock.now(), UTC) + timedelta(seconds=60)
    grant(lapsing, world.citizen_id, "employee", expires_at=soon)
    grant(other, resident.id, "owner")
    organisations.suspend(closed.id, actor="test")
    return Orgs(gulf, desert, closed, lapsing, other, world.citizen_id, resident.id)


def gulf_claim(orgs: Orgs, role: str = "signatory") -> dict[str, str]:
    return {
        "id": orgs.gulf.id,
        "registration_number": "CR-100200",
        "name": "Gulf Trading",
        "name#ar": "الخليج للتجارة",
        "role": role,
    }


def choices_on(html: str) -> list[str]:
    return _CHOICE.findall(html)


def assert_refused(response: TestResponse, error: str = "invalid_grant") -> None:
    """A 400 from /token with ``error`` and no tokens in it."""
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json is not None and "access_token" not in response.json
    assert response.json["error"] == error, response.json


def signed_in(app: Flask, agency: BusinessAgency, orgs: Orgs, *, scope: str = BUSINESS) -> dict[str, Any]:
    """The citizen chose Gulf Trading (picker, then consent); the token response."""
    person = ActingPerson(app, "citizen", choice=orgs.gulf.id)
    return agency.tokens(person.go(agency.url(scope=scope)))


# -- choosing, and what the agency learns ------------------------------------------------------------


@BOTH_BACKENDS
def test_the_person_chooses_among_usable_memberships_and_every_token_carries_the_choice(
    app: Flask, registry: Registry, agency: BusinessAgency, orgs: Orgs, clock: FrozenClock
) -> None:
    clock.advance(120)  # the role in Lapsing Logistics has lapsed
    person = ActingPerson(app, "citizen", choice=orgs.gulf.id)
    location = person.go(agency.url())

    [picker] = person.pickers
    offered = choices_on(picker)
    assert sorted(offered) == sorted([orgs.gulf.id, orgs.desert.id]), "suspended and expired roles offered"
    assert "Gulf Trading" in picker and "CR-100200" in picker and "Authorised signatory" in picker
    assert "Desert Foods" in picker and "Owner" in picker
    assert "Closed Contracting" not in picker and "Lapsing Logistics" not in picker
    assert "Other Holdings" not in picker
    # The picker comes after sign-in and before consent, and the consent page names the scope.
    paths = [page.request.path for page in person.pages]
    assert paths.index("/signin") < paths.index(PICKER) < paths.index("/consent")
    consent = next(p for p in person.pages if p.request.path == "/consent").get_data(as_text=True)
    assert BUSINESS_WORDS in consent

    tokens = agency.tokens(location)
    assert agency.id_token(tokens)["organisation"] == gulf_claim(orgs)
    assert jwt_claims(tokens["access_token"])["org_id"] == orgs.gulf.id
    info = agency.userinfo(tokens)
    assert info["organisation"] == gulf_claim(orgs)
    assert info["name#ar"] == "فاطمة الصباح"


def test_the_next_sign_in_asks_again_and_may_choose_another_organisation(
    app: Flask, agency: BusinessAgency, orgs: Orgs
) -> None:
    person = ActingPerson(app, "citizen", choice=orgs.gulf.id)
    agency.tokens(person.go(agency.url()))
    person.choice = orgs.desert.id
    person.pages.clear()
    tokens = agency.tokens(person.go(agency.url("again")), "again")
    assert len(person.pickers) == 2 and not person.visited("/consent")  # consent is remembered
    desert = {
        "id": orgs.desert.id,
        "registration_number": "CR-300400",
        "name": "Desert Foods",
        "role": "owner",
    }
    assert agency.id_token(tokens, "again")["organisation"] == desert  # no Arabic name: no name#ar
    assert agency.userinfo(tokens)["organisation"] == desert
    assert jwt_claims(tokens["access_token"])["org_id"] == orgs.desert.id


def test_an_org_hint_skips_the_picker(app: Flask, agency: BusinessAgency, orgs: Orgs) -> None:
    person = ActingPerson(app, "citizen")  # no choice: a picker would fail the test
    tokens = agency.tokens(person.go(agency.url(org_hint="CR-100200")))
    assert person.pickers == []
    assert agency.id_token(tokens)["organisation"] == gulf_claim(orgs)

    # A lower-case registration number is still the organisation's number.
    lower = agency.tokens(person.go(agency.url("lower", org_hint="cr-300400")), "lower")
    assert agency.userinfo(lower)["organisation"]["id"] == orgs.desert.id

    # By id too, and silently (prompt=none) once signed in and consented.
    location = person.get(agency.url("silent", org_hint=orgs.gulf.id, prompt="none")).location
    assert location is not None
    silent = agency.tokens(location, "silent")
    assert agency.userinfo(silent)["organisation"] == gulf_claim(orgs)
    assert person.pickers == []


def test_a_hint_the_person_cannot_act_for_shows_the_picker(
    app: Flask, agency: BusinessAgency, orgs: Orgs, clock: FrozenClock
) -> None:
    clock.advance(120)  # the role in Lapsing Logistics has lapsed
    person = ActingPerson(app, "citizen", choice=orgs.gulf.id)
    hints = {
        "not a member": "CR-900100",
        "suspended": "CR-500600",
        "expired": "CR-700800",
        "unknown": "CR-000000",
        "suspended, by id": orgs.closed.id,
    }
    for n, (why, hint) in enumerate(hints.items()):
        tokens = agency.tokens(person.go(agency.url(f"s{n}", org_hint=hint)), f"s{n}")
        assert len(person.pickers) == n + 1, f"{why}: no picker"
        assert sorted(choices_on(person.pickers[-1])) == sorted([orgs.gulf.id, orgs.desert.id]), why
        assert agency.userinfo(tokens)["organisation"] == gulf_claim(orgs), why


# -- when no organisation can be chosen -----------------------------------------------------------------


def test_no_usable_membership_is_access_denied_at_the_agency(
    app: Flask, registry: Registry, agency: BusinessAgency, orgs: Orgs
) -> None:
    # The visitor holds no role; the citizen is left with the suspended organisation's only.
    organisations = registry.organisations
    organisations.remove(orgs.gulf.id, orgs.citizen, by=None, operator="test")
    organisations.remove(orgs.lapsing.id, orgs.citizen, by=None, operator="test")
    organisations.grant(orgs.desert.id, orgs.resident, "owner", by=None, operator="test")
    organisations.remove(orgs.desert.id, orgs.citizen, by=None, operator="test")
    for username in ("visitor", "citizen"):
        person = ActingPerson(app, username)
        params = agency.back(person.go(agency.url()))
        assert params["error"] == "access_denied" and "code" not in params, username
        assert person.pickers == [] and not person.visited("/consent"), username


def test_prompt_none_without_a_usable_hint_is_interaction_required(
    app: Flask, agency: BusinessAgency, orgs: Orgs
) -> None:
    person = ActingPerson(app, "citizen", choice=orgs.gulf.id)
    agency.tokens(person.go(agency.url()))  # signed in, consented
    for state, extra in (("none", {}), ("bad-hint", {"org_hint": "CR-900100"})):
        response = person.get(agency.url(state, prompt="none", **extra))
        assert response.status_code == 302 and response.location is not None
        params = agency.back(response.location, state)
        assert params["error"] == "interaction_required" and "code" not in params


def test_cancelling_on_the_picker_is_access_denied(app: Flask, agency: BusinessAgency, orgs: Orgs) -> None:
    person = ActingPerson(app, "citizen", choice="cancel")
    params = agency.back(person.go(agency.url()))
    assert params["error"] == "access_denied" and "code" not in params
    assert len(person.pickers) == 1 and not person.visited("/consent")


def test_choosing_an_organisation_the_person_cannot_act_for_is_refused_on_the_page(
    app: Flask, agency: BusinessAgency, orgs: Orgs
) -> None:
    person = ActingPerson(app, "citizen")
    page = person.follow(person.sign_in(person.open_page(agency.url(), "/signin")), stop_at=PICKER)
    assert not isinstance(page, str) and page.request.path == PICKER
    fields = hidden_fields(page.get_data(as_text=True))
    for forged in (orgs.other.id, orgs.closed.id, "CR-900100", "x" * 500):
        refused = person.post(PICKER, {**fields, "decision": "choose", "organisation": forged})
        assert refused.status_code == 400
        assert "You cannot act for that organisation now" in refused.get_data(as_text=True)
    chosen = person.post(PICKER, {**fields, "decision": "choose", "organisation": orgs.gulf.id})
    consent = person.follow(chosen)
    assert not isinstance(consent, str) and consent.request.path == "/consent"
    location = person.follow(person.decide(consent, "approve"))
    assert isinstance(location, str)
    tokens = agency.tokens(location)
    assert agency.userinfo(tokens)["organisation"] == gulf_claim(orgs)


# -- the membership ends after the choice ------------------------------------------------------------


def test_a_membership_that_ended_before_the_code_is_redeemed_is_invalid_grant(
    app: Flask, registry: Registry, agency: BusinessAgency, orgs: Orgs, clock: FrozenClock
) -> None:
    clock.advance(55)  # the role in Lapsing Logistics has five seconds left
    person = ActingPerson(app, "citizen")
    locations = {}
    for org in (orgs.gulf, orgs.desert, orgs.lapsing):
        person.choice = org.id
        locations[org.name] = person.go(agency.url(org.name))
    registry.organisations.remove(orgs.gulf.id, orgs.citizen, by=None, operator="test")
    registry.organisations.suspend(orgs.desert.id, actor="test")
    clock.advance(10)  # the lapsing role has expired; the codes (60 s) have not
    for name, location in locations.items():
        assert_refused(agency.code_response(location, name))


@BOTH_BACKENDS
def test_a_refresh_after_the_membership_ended_is_refused_and_kills_the_family(
    app: Flask, registry: Registry, agency: BusinessAgency, orgs: Orgs
) -> None:
    first = signed_in(app, agency, orgs, scope=BUSINESS + " offline_access")
    second = agency.refresh(first["refresh_token"])
    assert second.status_code == 200, second.get_data(as_text=True)
    assert second.json is not None
    newer = second.json
    assert jwt_claims(newer["access_token"])["org_id"] == orgs.gulf.id
    assert agency.userinfo(newer)["organisation"] == gulf_claim(orgs)

    registry.organisations.remove(orgs.gulf.id, orgs.citizen, by=None, operator="test")
    assert_refused(agency.refresh(newer["refresh_token"]))

    # Giving the role back does not revive the family: it was revoked, with its access tokens.
    registry.organisations.grant(orgs.gulf.id, orgs.citizen, "signatory", by=None, operator="test")
    assert_refused(agency.refresh(newer["refresh_token"]))
    assert agency.introspect(newer["refresh_token"], "refresh_token") == {"active": False}
    assert [userinfo_status(app, t["access_token"]) for t in (first, newer)] == [401, 401]


def test_a_refresh_for_an_organisation_the_person_no_longer_acts_for_is_invalid_grant(
    app: Flask, registry: Registry, agency: BusinessAgency, orgs: Orgs
) -> None:
    person = ActingPerson(app, "citizen", choice=orgs.gulf.id)
    offline = BUSINESS + " offline_access"
    removed = agency.tokens(person.go(agency.url("gulf", scope=offline)), "gulf")
    person.choice = orgs.desert.id
    suspended = agency.tokens(person.go(agency.url("desert", scope=offline)), "desert")
    registry.organisations.remove(orgs.gulf.id, orgs.citizen, by=None, operator="test")
    registry.organisations.suspend(orgs.desert.id, actor="test")
    # RFC 6749 5.2: a refresh token no longer valid (its family is revoked because the membership
    # ended) is invalid_grant, not a malformed request (invalid_request).
    for tokens in (removed, suspended):
        assert_refused(agency.refresh(tokens["refresh_token"]), "invalid_grant")

    # The families stay revoked when the role comes back or the organisation is reactivated.
    registry.organisations.grant(orgs.gulf.id, orgs.citizen, "signatory", by=None, operator="test")
    registry.organisations.reactivate(orgs.desert.id, actor="test")
    for tokens in (removed, suspended):
        assert_refused(agency.refresh(tokens["refresh_token"]))
        assert userinfo_status(app, tokens["access_token"]) == 401


def test_a_refresh_keeps_the_organisation_and_its_current_role(
    app: Flask, registry: Registry, agency: BusinessAgency, orgs: Orgs
) -> None:
    tokens = signed_in(app, agency, orgs, scope=BUSINESS + " offline_access")
    registry.organisations.grant(orgs.gulf.id, orgs.citizen, "employee", by=None, operator="test")
    response = agency.refresh(tokens["refresh_token"])
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json is not None
    assert jwt_claims(response.json["access_token"])["org_id"] == orgs.gulf.id
    assert agency.userinfo(response.json)["organisation"] == gulf_claim(orgs, "employee")


def test_userinfo_stops_naming_the_organisation_once_the_membership_ends(
    app: Flask, registry: Registry, agency: BusinessAgency, orgs: Orgs
) -> None:
    person = ActingPerson(app, "citizen", choice=orgs.gulf.id)
    removed = agency.tokens(person.go(agency.url("gulf")), "gulf")
    person.choice = orgs.desert.id
    suspended = agency.tokens(person.go(agency.url("desert")), "desert")
    assert agency.userinfo(removed)["organisation"] == gulf_claim(orgs)
    assert agency.userinfo(suspended)["organisation"]["id"] == orgs.desert.id

    registry.organisations.remove(orgs.gulf.id, orgs.citizen, by=None, operator="test")
    registry.organisations.suspend(orgs.desert.id, actor="test")
    for tokens in (removed, suspended):
        info = agency.userinfo(tokens)
        assert "organisation" not in info
        assert info["name"] == "Fatima Al-Sabah"  # the rest of the answer is unchanged


def test_without_the_business_scope_there_is_no_picker_and_no_organisation(
    app: Flask, agency: BusinessAgency, orgs: Orgs
) -> None:
    person = ActingPerson(app, "citizen")
    tokens = agency.tokens(person.go(agency.url(scope="openid profile", org_hint="CR-100200")))
    assert person.pickers == []
    assert "organisation" not in agency.id_token(tokens)
    assert "org_id" not in jwt_claims(tokens["access_token"])
    assert "organisation" not in agency.userinfo(tokens)


def test_a_client_not_registered_for_business_learns_no_organisation(
    app: Flask, registry: Registry, orgs: Orgs
) -> None:
    # The business scope is granted at registration: a client without it that asks for it anyway
    # is told invalid_scope (RFC 6749 4.1.2.1) before anyone signs in; no picker, no organisation.
    plain = BusinessAgency.create(app, registry, port=9402, scope="openid profile offline_access")
    person = ActingPerson(app, "citizen")
    answer = plain.back(person.go(plain.url(org_hint="CR-100200")))
    assert answer["error"] == "invalid_scope" and "business" in answer["error_description"]
    assert "code" not in answer and not person.pickers
    tokens = plain.tokens(person.go(plain.url(scope="openid profile offline_access", org_hint="CR-100200")))
    assert "organisation" not in plain.id_token(tokens), "ID token names an organisation"
    assert "org_id" not in jwt_claims(tokens["access_token"]), "access token carries org_id"
    assert "organisation" not in plain.userinfo(tokens)
    visitor = ActingPerson(app, "visitor")
    assert "code" in plain.back(visitor.go(plain.url("visitor", scope="openid profile")), "visitor")
