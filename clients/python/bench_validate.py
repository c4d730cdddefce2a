"""Print how many ID tokens hawiya_rp validates per second, against joserfc's raw signature
verification of the same tokens on the same machine (figures only; never fails on timing).

Each full validation is what ``OpenIDClient.validate_id_token`` does for a sign-in: header and
allow-list checks, the key looked up by kid in the (warm) JWKS cache, the signature, and every
claim of OIDC Core 3.1.3.7 including ``at_hash``. Keys are the sizes Hawiya uses (P-256, RSA-3072).

Run: .venv/bin/python clients/python/bench_validate.py [seconds-per-measure]
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from hawiya_rp import ClientConfig, OpenIDClient
from hawiya_rp.http import Response
from joserfc import jws, jwt
from joserfc.jwk import ECKey, Key, RSAKey, import_key

ISSUER = "https://id.example.gov"
CLIENT_ID = "agency-bench"
ACCESS_TOKEN = "bench-access-token"


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
        "nonce": "bench-nonce",
        "acr": "urn:hawiya:loa:low",
        "amr": ["pwd"],
        "sid": "bench-session",
        "at_hash": _at_hash(),
    }
    return jws.serialize_compact(
        {"alg": alg, "kid": key.kid, "typ": "JWT"}, json.dumps(claims).encode(), key, algorithms=[alg]
    )


def _rate(func: Callable[[], object], seconds: float) -> float:
    for _ in range(20):  # warm up (caches, imports)
        func()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            func()
        count += 50
    return count / elapsed


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    keys: dict[str, Key] = {
        "ES256": ECKey.generate_key("P-256", private=True, auto_kid=True),
        "RS256": RSAKey.generate_key(3072, private=True, auto_kid=True),
    }
    jwks = {"keys": [{**key.as_dict(private=False), "alg": alg, "use": "sig"} for alg, key in keys.items()]}
    rp = OpenIDClient(ClientConfig(ISSUER, CLIENT_ID, "https://agency.example/cb"), StaticHttp(jwks))
    print(f"{'alg':<7} {'hawiya_rp validate_id_token':>28} {'joserfc jwt.decode':>20} {'ratio':>7}")
    for alg, key in keys.items():
        token = _id_token(key, alg)
        verify_key = import_key(key.as_dict(private=False))

        def full(token: str = token) -> object:
            return rp.validate_id_token(token, nonce="bench-nonce", access_token=ACCESS_TOKEN)

        def raw(token: str = token, verify_key: Key = verify_key, alg: str = alg) -> object:
            return jwt.decode(token, verify_key, algorithms=[alg])

        full_rate, raw_rate = _rate(full, seconds), _rate(raw, seconds)
        print(f"{alg:<7} {full_rate:>26.0f}/s {raw_rate:>18.0f}/s {full_rate / raw_rate:>7.2f}")


if __name__ == "__main__":
    main()
