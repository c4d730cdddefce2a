"""``hawiya clients high-assurance-report``: the clients whose minimum level is high, and how many of
their users (a consent, or a usable refresh token) no longer hold a factor that reaches it. The
people and their keys are made through Hawiya's real pages (a key that only *says* it is hardware,
and an attested security key); the command runs against the same deployment, on both backends."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from idp.clock import FrozenClock
from idp.oidc.consent import ConsentRequest
from idp.oidc.refresh import RefreshGrant, RefreshTokens
from idp.registry import Registry
from idp.settings import LOA_HIGH, LOA_SUBSTANTIAL, Settings
from tests.conftest import BOTH_BACKENDS, PASSWORD, Backend, World, make_settings
from tests.support.authenticator import Attestation, SoftAuthenticator
from tests.support.cli import Instance, new_instance
from tests.support.mfa import (
    MfaPerson,
    add_app_in_account,
    add_passkey_in_account,
    add_security_key_in_account,
    verify_address,
)

AAGUID = uuid.UUID("6d44ba9b-f6ec-2e49-b930-0c8fe920cb73").bytes


@pytest.fixture
def maker() -> Attestation:
    """The attestation CA of the agency's security key model (the operator's PEM root)."""
    return Attestation.issued_by_new_ca("Agency Key Maker CA", aaguid=AAGUID)


@pytest.fixture
def settings(tmp_path: Path, backend: Backend, maker: Attestation) -> Settings:
    """The operator trusts ``maker``'s root for high-assurance security keys."""
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(maker.ca_pem())
    return make_settings(tmp_path, backend, attestation_trust_anchors=str(anchors))


def _instance(tmp_path: Path, settings: Settings) -> Instance:
    """``hawiya`` pointed at the test's deployment."""
    instance = new_instance(tmp_path / "cli")
    instance.env.update(
        HAWIYA_INSTANCE_PATH=str(settings.instance_path),
        HAWIYA_DATABASE_URL=settings.database_url,
        HAWIYA_EPHEMERAL_URL=settings.ephemeral_url,
        HAWIYA_REDIS_PREFIX=settings.redis_prefix,
        HAWIYA_MASTER_KEY=settings.master_key or "",
        HAWIYA_ATTESTATION_TRUST_ANCHORS=settings.attestation_trust_anchors,
    )
    return instance


def _key(registry: Registry, **kwargs: Any) -> SoftAuthenticator:
    return SoftAuthenticator(
        rp_id=registry.settings.rp_id, origin=registry.settings.webauthn_origin, **kwargs
    )


def _uses(registry: Registry, account_id: str, client_id: str) -> None:
    """The person allowed the client their profile (what the consent page records)."""
    registry.consents.grant(account_id, client_id, ConsentRequest(frozenset({"profile"}), frozenset()))


def _holds_refresh_token(refresh: RefreshTokens, account_id: str, client_id: str) -> None:
    refresh.issue(
        RefreshGrant(
            family_id=refresh.new_family(),
            client_id=client_id,
            account_id=account_id,
            sid=None,
            scope="openid offline_access",
            auth_time=0,
            acr=LOA_SUBSTANTIAL,
            amr=("pwd", "otp", "mfa"),
            offline=True,
        )
    )


@BOTH_BACKENDS
def test_the_report_counts_who_can_no_longer_reach_high(
    app: Flask,
    registry: Registry,
    world: World,
    clock: FrozenClock,
    maker: Attestation,
    tmp_path: Path,
    settings: Settings,
) -> None:
    land = registry.clients.create(
        name="Land Registry", redirect_uris=["https://land.example/cb"], min_acr=LOA_HIGH, client_id="land"
    ).client.client_id
    registry.clients.create(
        name="Tax Authority", redirect_uris=["https://tax.example/cb"], min_acr=LOA_HIGH, client_id="tax"
    )
    registry.clients.create(
        name="Library", redirect_uris=["https://library.example/cb"], min_acr=LOA_SUBSTANTIAL, client_id="lib"
    )
    people = {p.username: p.id for p in registry.accounts.list()}
    # The citizen's key says BE=0 and UV (high before the change); nothing proves it: lost high.
    citizen = MfaPerson(app, "citizen", PASSWORD, clock=clock)
    add_passkey_in_account(citizen, _key(registry))
    _uses(registry, people["citizen"], land)
    # The resident added a security key for high-assurance services: still high.
    verify_address(registry, "resident", "ravi@example.org")  # a first factor is confirmed by mail
    resident = MfaPerson(app, "resident", PASSWORD, clock=clock)
    key = _key(registry, aaguid=AAGUID, attestation=maker)
    assert add_security_key_in_account(resident, key).status_code == 200
    _uses(registry, people["resident"], land)
    # The visitor has an authenticator app only (never high), and the land registry holds a
    # refresh token for them, no consent.
    verify_address(registry, "visitor", "anna@example.net")
    visitor = MfaPerson(app, "visitor", PASSWORD, clock=clock)
    add_app_in_account(visitor)
    _holds_refresh_token(registry.refresh, people["visitor"], land)
    # The staff member gave the ministry (no minimum) a consent: not the report's business.
    _uses(registry, people["staff"], world.confidential_id)

    rows = registry.high_assurance_report.clients()
    assert [(r.client_id, r.users, r.without_high, r.lost_high) for r in rows] == [
        ("land", 3, 2, 1),
        ("tax", 0, 0, 0),
    ]

    hawiya = _instance(tmp_path, settings)
    reported = json.loads(hawiya.ok("clients", "high-assurance-report", "--json"))
    assert reported == [
        {
            "client_id": "land",
            "name": "Land Registry",
            "agency": None,
            "status": "active",
            "users": 3,
            "without_high": 2,
            "lost_high": 1,
        },
        {
            "client_id": "tax",
            "name": "Tax Authority",
            "agency": None,
            "status": "active",
            "users": 0,
            "without_high": 0,
            "lost_high": 0,
        },
    ]
    table = hawiya.ok("clients", "high-assurance-report").splitlines()
    assert table[0].split() == ["CLIENT", "STATUS", "USERS", "WITHOUT", "HIGH", "LOST", "HIGH", "NAME"]
    assert table[1].split() == ["land", "active", "3", "2", "1", "Land", "Registry"]
    assert table[2].split() == ["tax", "active", "0", "0", "0", "Tax", "Authority"]


def test_the_report_says_when_no_client_requires_high(
    tmp_path: Path, registry: Registry, settings: Settings
) -> None:
    hawiya = _instance(tmp_path, settings)
    assert hawiya.ok("clients", "high-assurance-report") == "no client requires urn:hawiya:loa:high\n"
    assert json.loads(hawiya.ok("clients", "high-assurance-report", "--json")) == []
