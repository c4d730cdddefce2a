"""A password reset evicts whoever held the account: setting a password by any route ends every SSO
session of the person (their agencies are told by back-channel logout), revokes every refresh
family including offline ones with the access tokens they issued, and is audited. Helpdesk cannot
hand out a code for an account with second factors (that needs four-eyes approval, not there yet).
A mailed code proves the address; a code handed over at the counter does not."""

from __future__ import annotations

import pytest

from idp.accounts.activation import ActivationNeedsApproval
from idp.authn.results import AuthResult
from idp.clock import FrozenClock
from idp.oidc.backchannel import QUEUE
from idp.registry import Registry
from idp.settings import LOA_LOW
from tests.cli.test_import_cli import PASSWORD as CLI_PASSWORD
from tests.conftest import BOTH_BACKENDS, World
from tests.support.audit import audit_events
from tests.support.cli import assert_clean_error, new_instance
from tests.support.identity import national_id
from tests.support.tokens import password_grant

NEW_PASSWORD = "a quiet harbour at dawn"


@BOTH_BACKENDS
def test_a_password_reset_leaves_the_attacker_out(registry: Registry, world: World) -> None:
    """Reproduction: the attacker's SSO session, session refresh token and offline refresh token
    all kept working after the person reset their password with a helpdesk code."""
    agency = registry.clients.create(
        name="Agency",
        redirect_uris=["http://127.0.0.1:9/callback"],
        scope="openid profile offline_access",
        backchannel_logout_uri="http://127.0.0.1:9/bcl",
    ).client.client_id
    attacker = AuthResult(world.citizen_id, int(registry.clock.now()), ("pwd",), LOA_LOW)
    handle, session = registry.sessions.start(attacker)
    session = registry.sessions.add_client(handle, session, agency)
    bound = password_grant(registry, world.citizen_id, agency, sid=session.sid, offline=False)
    offline = password_grant(registry, world.citizen_id, agency, sid=session.sid, offline=True)
    bound_token, offline_token = registry.refresh.issue(bound), registry.refresh.issue(offline)
    exp = int(registry.clock.now()) + 300
    registry.ledger.issued_many("offline-access-token", exp, ["family:" + offline.family_id])

    issued = registry.activation_codes.issue(world.citizen_id, actor="helpdesk", send=False)
    registry.activation_codes.use(issued.code, new_password=NEW_PASSWORD)

    assert registry.sessions.find(handle) is None
    assert registry.refresh.consume(bound_token, agency) is None
    assert registry.refresh.consume(offline_token, agency) is None
    assert registry.ledger.is_revoked("offline-access-token")
    job = registry.store.claim(QUEUE, now=registry.clock.now(), lease=60)
    assert job is not None  # the agency is told (back-channel logout queued)
    (evicted,) = audit_events(registry, "account.evicted")
    assert evicted["subject"] == world.citizen_id
    assert evicted["detail"]["via"] == "activation_code" and evicted["detail"]["sessions"] == 1
    assert evicted["detail"]["refresh_families"] == 1  # the offline one (the session took the other)


def test_a_sign_in_waiting_for_its_second_step_is_void_after_a_reset(
    registry: Registry, world: World, clock: FrozenClock
) -> None:
    """Whoever typed the old password and waits at the code (or enrolment) page cannot finish."""
    attacker = AuthResult(world.citizen_id, int(registry.clock.now()), ("pwd",), LOA_LOW)
    handle = registry.pending_signins.start(attacker, "enrol")
    clock.advance(1)
    issued = registry.activation_codes.issue(world.citizen_id, actor="helpdesk", send=False)
    registry.activation_codes.use(issued.code, new_password=NEW_PASSWORD)
    assert registry.pending_signins.find(handle) is None
    clock.advance(1)
    person = registry.pending_signins.start(attacker, "enrol")  # the person's own, after the reset
    assert registry.pending_signins.find(person) is not None


@BOTH_BACKENDS
def test_every_route_that_sets_a_password_evicts(registry: Registry, world: World) -> None:
    handle, _session = registry.sessions.start(
        AuthResult(world.citizen_id, int(registry.clock.now()), ("pwd",), LOA_LOW)
    )
    registry.accounts.set_password(world.citizen_id, NEW_PASSWORD, via="account_page")
    assert registry.sessions.find(handle) is None
    assert registry.passwords.authenticate("citizen", NEW_PASSWORD).account_id == world.citizen_id
    assert [e["detail"]["via"] for e in audit_events(registry, "account.evicted")] == ["account_page"]


def test_helpdesk_may_not_issue_a_code_for_an_account_with_second_factors(
    registry: Registry, world: World
) -> None:
    registry.authenticators.provision_totp(world.citizen_id, label="Phone", actor="test")
    with pytest.raises(ActivationNeedsApproval, match="second factors") as refused:
        registry.activation_codes.issue(world.citizen_id, actor="helpdesk", send=True)
    assert "approval" in refused.value.message
    assert audit_events(registry, "activation_code.issued") == []
    assert audit_events(registry, "activation_code.withheld")[0]["subject"] == world.citizen_id


def test_the_cli_withholds_the_code_in_one_line(tmp_path_factory: pytest.TempPathFactory) -> None:
    hawiya = new_instance(tmp_path_factory.mktemp("withheld"))
    hawiya.ok("init")
    hawiya.ok(
        "users", "create", "--type", "citizen", "--username", "noor", "--national-id", national_id(230),
        "--password-stdin", stdin=CLI_PASSWORD,
    )  # fmt: skip
    registry = hawiya.registry()
    try:
        person = registry.accounts.by_username("noor")
        assert person is not None
        registry.authenticators.provision_totp(person.id, label="Phone", actor="test")
    finally:
        registry.close()
    line = assert_clean_error(hawiya.run("users", "activation-code", "noor"))
    assert "second factors" in line and "approval" in line


@BOTH_BACKENDS
def test_a_mailed_code_proves_the_address_a_counter_code_does_not(registry: Registry) -> None:
    def person(username: str, seed: int) -> str:
        return registry.accounts.create(
            account_type="citizen",
            username=username,
            password=None,
            email=f"{username}@example.org",
            national_id=national_id(seed),
            proofing_level="counter",
        ).id

    mailed, counter = person("mailed", 240), person("counter", 241)
    by_mail = registry.activation_codes.issue(mailed, actor="helpdesk", send=True)
    at_counter = registry.activation_codes.issue(counter, actor="helpdesk", send=False)
    registry.activation_codes.use(by_mail.code, new_password=NEW_PASSWORD)
    registry.activation_codes.use(at_counter.code, new_password=NEW_PASSWORD)
    assert registry.accounts.get(mailed).email_verified is True
    assert registry.accounts.get(counter).email_verified is False
    used = {e["subject"]: e["detail"] for e in audit_events(registry, "activation_code.used")}
    assert used[mailed] == {"delivery": "mail", "email_verified": True}
    assert used[counter] == {"delivery": "counter", "email_verified": False}
