"""Back-channel logout tokens (Back-Channel Logout 1.0 2.6): accepted once, refused when they are
not logout tokens or were already received."""

from __future__ import annotations

import pytest
from hawiya_rp import ClientConfig, LogoutToken, LogoutTokenError, MemoryReplayCache, OpenIDClient
from rp_fakes import CLIENT_ID, ISSUER, REDIRECT_URI, FakeClock, FakeHttp, Provider, unsigned

EVENT = "http://schemas.openid.net/event/backchannel-logout"


@pytest.fixture
def provider(clock: FakeClock) -> Provider:
    return Provider(FakeHttp(), clock)


@pytest.fixture
def rp(provider: Provider, clock: FakeClock) -> OpenIDClient:
    config = ClientConfig(issuer=ISSUER, client_id=CLIENT_ID, redirect_uri=REDIRECT_URI)
    return OpenIDClient(config, provider.http, clock)


def refused(rp: OpenIDClient, token: str, reason: str) -> None:
    with pytest.raises(LogoutTokenError) as caught:
        rp.validate_logout_token(token)
    assert caught.value.reason == reason, caught.value


def test_a_logout_token_is_accepted_once(rp: OpenIDClient, provider: Provider) -> None:
    token = provider.logout_token()
    accepted = rp.validate_logout_token(token)
    assert accepted == LogoutToken(
        sub="pairwise-subject-1", sid="sso-session-1", jti=accepted.jti, iat=int(provider.clock())
    )
    refused(rp, token, "replayed")


def test_sid_alone_or_sub_alone_is_enough(rp: OpenIDClient, provider: Provider) -> None:
    assert rp.validate_logout_token(provider.logout_token(sub=None)).sub is None
    assert rp.validate_logout_token(provider.logout_token(sid=None)).sid is None


def test_neither_sub_nor_sid_is_refused(rp: OpenIDClient, provider: Provider) -> None:
    refused(rp, provider.logout_token(sub=None, sid=None), "missing_claim")


def test_a_nonce_is_refused(rp: OpenIDClient, provider: Provider) -> None:
    """An ID token (which has a nonce) must never pass for a logout token."""
    refused(rp, provider.logout_token(nonce="n-1"), "nonce_present")


def test_an_id_token_is_not_a_logout_token(rp: OpenIDClient, provider: Provider) -> None:
    refused(rp, provider.id_token(jti="j-1"), "missing_event")


def test_no_events_is_refused(rp: OpenIDClient, provider: Provider) -> None:
    refused(rp, provider.logout_token(events=None), "missing_event")


@pytest.mark.parametrize(
    "events",
    [
        {"http://schemas.openid.net/event/other": {}},
        {EVENT: "yes"},
        {EVENT: True},
        {EVENT: []},
    ],
)
def test_the_wrong_event_is_refused(rp: OpenIDClient, provider: Provider, events: object) -> None:
    refused(rp, provider.logout_token(events=events), "wrong_event")


def test_events_not_an_object_is_refused(rp: OpenIDClient, provider: Provider) -> None:
    refused(rp, provider.logout_token(events=[EVENT]), "missing_event")


def test_no_jti_is_refused(rp: OpenIDClient, provider: Provider) -> None:
    refused(rp, provider.logout_token(jti=None), "missing_claim")


def test_a_replay_is_refused_even_after_the_first_was_long_processed(
    rp: OpenIDClient, provider: Provider, clock: FakeClock
) -> None:
    token = provider.logout_token()
    rp.validate_logout_token(token)
    clock.advance(100)  # still within exp (120 s) + leeway
    refused(rp, token, "replayed")
    clock.advance(200)
    refused(rp, token, "expired")  # by then the jti may be forgotten: the token is dead anyway


def test_the_same_jti_from_a_fresh_token_is_a_replay(rp: OpenIDClient, provider: Provider) -> None:
    rp.validate_logout_token(provider.logout_token(jti="fixed"))
    refused(rp, provider.logout_token(jti="fixed", sid="another"), "replayed")


def test_a_refused_token_does_not_burn_its_jti(rp: OpenIDClient, provider: Provider) -> None:
    refused(rp, provider.logout_token(jti="j-2", aud="someone-else"), "wrong_audience")
    assert rp.validate_logout_token(provider.logout_token(jti="j-2"))


def test_wrong_issuer_and_audience_are_refused(rp: OpenIDClient, provider: Provider) -> None:
    refused(rp, provider.logout_token(iss="https://other-idp.example"), "wrong_issuer")
    refused(rp, provider.logout_token(aud="another-agency"), "wrong_audience")


def test_times_are_checked(rp: OpenIDClient, provider: Provider, clock: FakeClock) -> None:
    now = int(clock())
    refused(rp, provider.logout_token(iat=now + 600), "issued_in_future")
    refused(rp, provider.logout_token(exp=now - 600, iat=now - 700), "expired")
    refused(rp, provider.logout_token(iat=None), "missing_claim")
    # Without exp, a token older than a few minutes is refused (its jti could have been forgotten).
    assert rp.validate_logout_token(provider.logout_token(exp=None))
    refused(rp, provider.logout_token(exp=None, iat=now - 1000), "expired")


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "secevent+jwt"])
def test_another_token_type_is_refused(rp: OpenIDClient, provider: Provider, typ: str) -> None:
    refused(rp, provider.logout_token(typ=typ), "wrong_type")


@pytest.mark.parametrize("typ", [None, "JWT", "logout+jwt", "application/logout+jwt"])
def test_logout_or_plain_jwt_types_are_accepted(
    rp: OpenIDClient, provider: Provider, typ: str | None
) -> None:
    assert rp.validate_logout_token(provider.logout_token(typ=typ))


def test_unsigned_and_tampered_tokens_are_refused(rp: OpenIDClient, provider: Provider) -> None:
    claims = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "iat": int(provider.clock()),
        "jti": "j-3",
        "sid": "s",
        "events": {EVENT: {}},
    }
    refused(rp, unsigned(claims), "alg_not_allowed")
    header, _, signature = provider.logout_token().split(".")
    refused(rp, f"{header}.{unsigned(claims).split('.')[1]}.{signature}", "bad_signature")


def test_the_memory_replay_cache_forgets_after_ttl_and_stays_bounded() -> None:
    clock = FakeClock()
    cache = MemoryReplayCache(clock, max_entries=2)
    assert cache.add("a", 10) and not cache.add("a", 10)
    assert cache.add("b", 10)
    assert not cache.add("c", 10)  # full of live entries: refuse rather than forget
    clock.advance(11)
    assert cache.add("c", 10) and cache.add("a", 10)
