"""Print how many ID tokens hawiya_rp validates per second, against joserfc's raw signature
verification of the same tokens on the same machine (figures only; never fails on timing).

Each full validation is what ``OpenIDClient.validate_id_token`` does for a sign-in: header and
allow-list checks, the key looked up by kid in the (warm) JWKS cache, the signature, and every
claim of OIDC Core 3.1.3.7 including ``nonce`` and ``at_hash`` (checked to be refused when wrong
before anything is timed, so the figure is never that of a validation that skips a check). Keys
are the sizes Hawiya uses (P-256, RSA-3072).

The raw side is joserfc with the key already imported, on the same token: ``jws.deserialize_compact``
(parse, header checks, signature) and ``jwt.decode`` (the same, plus decoding the claims).

The two sides are timed in alternating slices (a quarter second each) so that a machine whose load
changes affects both alike; each round gives a ratio, and the median of the rounds is printed.
Pin it to one CPU for steadier figures: ``taskset -c 1 .venv/bin/python ...``.

Run: .venv/bin/python clients/python/bench_validate.py [seconds-per-side-per-round] [rounds]
"""

from __future__ import annotations

import base64
import hashlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from hawiya_rp import ClientConfig, IdTokenError, OpenIDClient
from hawiya_rp.http import Response
from joserfc import jws, jwt
from joserfc.jwk import ECKey, Key, RSAKey, import_key

ISSUER = "https://id.example.gov"
CLIENT_ID = "agency-bench"
ACCESS_TOKEN = "bench-access-token"
NONCE = "bench-nonce"
SLICE = 0.25


class StaticHttp:
    """Discovery and JWKS from memory: the benchmark measures validation, not the network."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        metadata = {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/authorize",
            "token_endpoint": f"{ISSUER}/token",
            "jwks_uri": f"{ISSUER}/jwks.json",
        }
        self._answers = {
            f"{ISSUER}/.well-known/openid-configuration": Response(200, {}, metadata),
            f"{ISSUER}/jwks.json": Response(200, {"cache-control": "max-age=86400"}, jwks),
        }

    def get_json(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        return self._answers[url]

    def post_form(
        self,
        url: str,
        data: Mapping[str, str],
        auth: tuple[str, str] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        raise NotImplementedError


def _at_hash() -> str:
    """OIDC Core 3.1.3.6 for the *256 algorithms benchmarked here."""
    digest = hashlib.sha256(ACCESS_TOKEN.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def _id_token(key: Key, alg: str) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "pairwise-subject",
        "aud": CLIENT_ID,
        "azp": CLIENT_ID,
        "iat": now,
        "exp": now + 3600,
        "auth_time": now,
        "nonce": NONCE,
        "acr": "urn:hawiya:loa:low",
        "amr": ["pwd"],
        "sid": "bench-session",
        "at_hash": _at_hash(),
    }
    return jws.serialize_compact(
        {"alg": alg, "kid": key.kid, "typ": "JWT"}, json.dumps(claims).encode(), key, algorithms=[alg]
    )


def _check_fullness(rp: OpenIDClient, token: str) -> None:
    """The timed call checks the signature, the nonce and at_hash: each, broken, is refused."""
    claims = rp.validate_id_token(token, nonce=NONCE, access_token=ACCESS_TOKEN)
    assert claims["nonce"] == NONCE and claims["at_hash"] == _at_hash()
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    for attempt, kwargs in (
        (token, {"nonce": "another-nonce", "access_token": ACCESS_TOKEN}),
        (token, {"nonce": NONCE, "access_token": "another-access-token"}),
        (forged, {"nonce": NONCE, "access_token": ACCESS_TOKEN}),
    ):
        try:
            rp.validate_id_token(attempt, **kwargs)  # type: ignore[arg-type]
        except IdTokenError:
            continue
        raise AssertionError(f"a broken token was accepted: {kwargs}")


def _run(func: Callable[[], object], seconds: float) -> tuple[int, float]:
    """Calls of ``func`` made in about ``seconds``, and the time they took."""
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(25):
            func()
        count += 25
    return count, elapsed


def _rates(sides: list[Callable[[], object]], seconds: float) -> list[float]:
    """Calls per second of each side, the sides timed in alternating slices of ``SLICE`` seconds."""
    counts, times = [0] * len(sides), [0.0] * len(sides)
    for _ in range(max(1, round(seconds / SLICE))):
        for index, side in enumerate(sides):
            count, elapsed = _run(side, SLICE)
            counts[index] += count
            times[index] += elapsed
    return [count / elapsed for count, elapsed in zip(counts, times, strict=True)]


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    keys: dict[str, Key] = {
        "ES256": ECKey.generate_key("P-256", private=True, auto_kid=True),
        "RS256": RSAKey.generate_key(3072, private=True, auto_kid=True),
    }
    jwks = {"keys": [{**key.as_dict(private=False), "alg": alg, "use": "sig"} for alg, key in keys.items()]}
    rp = OpenIDClient(ClientConfig(ISSUER, CLIENT_ID, "https://agency.example/cb"), StaticHttp(jwks))
    print(f"{seconds:g} s per side per round, {rounds} rounds; medians over the rounds")
    print(
        f"{'alg':<6} {'hawiya_rp full':>15} {'jws.deserialize':>16} {'ratio':>6} "
        f"{'jwt.decode':>12} {'ratio':>6}"
    )
    for alg, key in keys.items():
        token = _id_token(key, alg)
        verify_key = import_key(key.as_dict(private=False))
        _check_fullness(rp, token)

        def full(token: str = token) -> object:
            return rp.validate_id_token(token, nonce=NONCE, access_token=ACCESS_TOKEN)

        def raw_jws(token: str = token, verify_key: Key = verify_key, alg: str = alg) -> object:
            return jws.deserialize_compact(token, verify_key, algorithms=[alg])

        def raw_jwt(token: str = token, verify_key: Key = verify_key, alg: str = alg) -> object:
            return jwt.decode(token, verify_key, algorithms=[alg])

        sides = [full, raw_jws, raw_jwt]
        for side in sides:  # warm up (caches, imports)
            _run(side, 0.1)
        results = [_rates(sides, seconds) for _ in range(rounds)]
        median = [statistics.median(result[index] for result in results) for index in range(3)]
        to_jws = statistics.median(result[0] / result[1] for result in results)
        to_jwt = statistics.median(result[0] / result[2] for result in results)
        print(
            f"{alg:<6} {median[0]:>13.0f}/s {median[1]:>14.0f}/s {to_jws:>6.2f} "
            f"{median[2]:>10.0f}/s {to_jwt:>6.2f}"
        )


if __name__ == "__main__":
    main()
