"""The JWKS cache: Cache-Control honoured (and capped), one refetch for an unknown kid at most once
per interval, rotation absorbed, failures survived."""

from __future__ import annotations

import pytest
from hawiya_rp.http import Response
from hawiya_rp.jose import JoseFailure
from hawiya_rp.jwks import DEFAULT_MAX_AGE, MAX_MAX_AGE, JwksCache
from rp_fakes import JWKS_URI, FakeClock, FakeHttp, Provider, signing_key


@pytest.fixture
def provider(http: FakeHttp, clock: FakeClock) -> Provider:
    return Provider(http, clock, max_age=60)


def cache_for(http: FakeHttp, clock: FakeClock, **options: float) -> JwksCache:
    return JwksCache(JWKS_URI, http, clock, **options)  # type: ignore[arg-type]


def kid(provider: Provider, alg: str = "ES256") -> str:
    found = provider.keys[alg].kid
    assert found is not None
    return found


def test_max_age_is_honoured(provider: Provider, http: FakeHttp, clock: FakeClock) -> None:
    cache = cache_for(http, clock)
    cache.key(kid(provider), "ES256")
    clock.advance(59)
    cache.key(kid(provider), "ES256")
    cache.key(kid(provider, "RS256"), "RS256")
    assert provider.jwks_fetches == 1
    clock.advance(2)  # past max-age=60
    cache.key(kid(provider), "ES256")
    assert provider.jwks_fetches == 2


def test_without_max_age_the_set_is_kept_five_minutes(
    provider: Provider, http: FakeHttp, clock: FakeClock
) -> None:
    provider.max_age = None
    cache = cache_for(http, clock)
    cache.key(kid(provider), "ES256")
    clock.advance(DEFAULT_MAX_AGE - 1)
    cache.key(kid(provider), "ES256")
    assert provider.jwks_fetches == 1
    clock.advance(2)
    cache.key(kid(provider), "ES256")
    assert provider.jwks_fetches == 2


def test_a_huge_max_age_is_capped_at_a_day(provider: Provider, http: FakeHttp, clock: FakeClock) -> None:
    provider.max_age = 10 * MAX_MAX_AGE
    cache = cache_for(http, clock)
    cache.key(kid(provider), "ES256")
    clock.advance(MAX_MAX_AGE + 1)
    cache.key(kid(provider), "ES256")
    assert provider.jwks_fetches == 2


def test_age_header_shortens_freshness(provider: Provider, http: FakeHttp, clock: FakeClock) -> None:
    http.routes[JWKS_URI] = lambda call: Response(
        200, {"cache-control": "max-age=60", "age": "50"}, provider.jwks_response().json
    )
    cache = cache_for(http, clock)
    cache.key(kid(provider), "ES256")
    clock.advance(11)
    cache.key(kid(provider), "ES256")
    assert provider.jwks_fetches == 2


def test_an_unknown_kid_refetches_once_per_interval(
    provider: Provider, http: FakeHttp, clock: FakeClock
) -> None:
    cache = cache_for(http, clock, min_refetch=5)
    cache.key(kid(provider), "ES256")
    clock.advance(5)
    with pytest.raises(JoseFailure) as refused:
        cache.key("made-up-1", "ES256")
    assert refused.value.reason == "unknown_key"
    assert provider.jwks_fetches == 2
    # A flood of made-up kids within the interval costs the provider nothing more.
    for attempt in range(50):
        clock.advance(0.01)
        with pytest.raises(JoseFailure):
            cache.key(f"made-up-{attempt}", "ES256")
    assert provider.jwks_fetches == 2
    clock.advance(5)
    with pytest.raises(JoseFailure):
        cache.key("made-up-again", "ES256")
    assert provider.jwks_fetches == 3


def test_rotation_at_the_provider_is_absorbed_by_one_refetch(
    provider: Provider, http: FakeHttp, clock: FakeClock
) -> None:
    cache = cache_for(http, clock)
    old = kid(provider)
    cache.key(old, "ES256")
    clock.advance(10)  # well within max-age
    new_key = provider.rotate("ES256")
    assert new_key.kid is not None and new_key.kid != old
    assert cache.key(new_key.kid, "ES256") is not None
    assert provider.jwks_fetches == 2
    # The old key is gone from the published set: it no longer verifies once the set is refetched.
    clock.advance(10)
    with pytest.raises(JoseFailure):
        cache.key(old, "ES256")


def test_a_failed_refetch_keeps_the_known_keys(provider: Provider, http: FakeHttp, clock: FakeClock) -> None:
    cache = cache_for(http, clock)
    cache.key(kid(provider), "ES256")
    http.routes[JWKS_URI] = Response(503, {}, None)
    clock.advance(61)
    assert cache.key(kid(provider), "ES256") is not None
    assert provider.jwks_fetches == 2
    # ... and the failure is not retried before the interval.
    cache.key(kid(provider), "ES256")
    assert provider.jwks_fetches == 2


def test_no_keys_at_all_is_jwks_unavailable(http: FakeHttp, clock: FakeClock) -> None:
    http.routes[JWKS_URI] = Response(500, {}, None)
    with pytest.raises(JoseFailure) as refused:
        cache_for(http, clock).key("any", "ES256")
    assert refused.value.reason == "jwks_unavailable"


def test_no_store_still_rate_limits_fetches(provider: Provider, http: FakeHttp, clock: FakeClock) -> None:
    http.routes[JWKS_URI] = lambda call: Response(
        200, {"cache-control": "no-store"}, provider.jwks_response().json
    )
    cache = cache_for(http, clock, min_refetch=5)
    for _ in range(20):
        cache.key(kid(provider), "ES256")
        clock.advance(0.1)
    assert provider.jwks_fetches == 1


def test_symmetric_private_and_encryption_keys_are_never_used(http: FakeHttp, clock: FakeClock) -> None:
    provider = Provider(http, clock)
    public = provider.jwks_response().json["keys"]
    es_key = next(key for key in public if key["alg"] == "ES256")
    http.routes[JWKS_URI] = Response(
        200,
        {},
        {
            "keys": [
                {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
                {**es_key, "kid": "enc", "use": "enc"},
                {**provider.keys["ES256"].as_dict(private=True), "kid": "leaked-private"},
                {"kty": "EC", "kid": "broken", "crv": "P-256", "x": "AA"},
            ]
        },
    )
    cache = cache_for(http, clock)
    for kid_ in ("hmac", "enc", "leaked-private", "broken"):
        with pytest.raises(JoseFailure):
            cache.key(kid_, "ES256")
    assert cache.kids == frozenset()


def test_a_token_without_kid_uses_the_only_key_that_fits(http: FakeHttp, clock: FakeClock) -> None:
    provider = Provider(http, clock)
    cache = cache_for(http, clock)
    assert cache.key(None, "ES256").kid == provider.keys["ES256"].kid
    # Two RSA keys are published, but their "alg" members tell them apart.
    assert cache.key(None, "RS256").kid == provider.keys["RS256"].kid


def test_a_token_without_kid_is_refused_when_several_keys_fit(http: FakeHttp, clock: FakeClock) -> None:
    first, second = signing_key("ES256", 0), signing_key("ES256", 1)
    http.routes[JWKS_URI] = Response(
        200, {}, {"keys": [first.as_dict(private=False), second.as_dict(private=False)]}
    )
    with pytest.raises(JoseFailure) as refused:
        cache_for(http, clock).key(None, "ES256")  # ambiguous: never guessed
    assert refused.value.reason == "unknown_key"
