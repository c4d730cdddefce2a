"""Print signing and code-exchange throughput (figures only; never fails on timing).

Run: .venv/bin/python bench/bench_tokens.py
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from idp.app import create_app
from idp.oidc.consent import ConsentRequest
from idp.registry import Registry
from idp.settings import Settings


def _rate(label: str, count: int, func: object) -> None:
    start = time.perf_counter()
    for _ in range(count):
        func()  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    print(f"{label:<44} {count / elapsed:>9.0f}/s   {elapsed / count * 1e6:>8.0f} µs each")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            instance_path=Path(tmp),
            master_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        )
        registry = Registry(settings)
        registry.db.upgrade()
        registry.keystore.ensure_keys()
        claims = {"iss": settings.issuer, "sub": "x", "aud": "y", "iat": 0, "exp": 1}
        _rate("Signer ES256", 2000, lambda: registry.signer.sign(claims, alg="ES256"))
        _rate("Signer RS256-3072", 300, lambda: registry.signer.sign(claims, alg="RS256"))

        person = registry.accounts.create(
            account_type="citizen",
            username="bench",
            password="correct horse battery staple 42",
            national_id="28009090069",
        )
        new = registry.clients.create(name="Bench", redirect_uris=["https://rp.example/cb"])
        client = new.client
        assert new.client_secret is not None
        registry.consents.grant(
            person.id, client.client_id, ConsentRequest(frozenset({"profile"}), frozenset())
        )
        app = create_app(registry=registry)
        http = app.test_client()
        handle, _session = registry.sessions.start(
            registry.passwords.authenticate("bench", "correct horse battery staple 42")
        )
        http.set_cookie("hawiya_sso", handle, domain="localhost")

        def exchange() -> None:
            verifier = secrets.token_urlsafe(48)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode()
            response = http.get(
                "/authorize",
                query_string={
                    "response_type": "code",
                    "client_id": client.client_id,
                    "redirect_uri": "https://rp.example/cb",
                    "scope": "openid profile",
                    "code_challenge": challenge.rstrip("="),
                    "code_challenge_method": "S256",
                },
            )
            code = parse_qs(urlsplit(response.location).query)["code"][0]
            token = http.post(
                "/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": "https://rp.example/cb",
                    "code_verifier": verifier,
                },
                auth=(client.client_id, new.client_secret),
            )
            assert token.status_code == 200, token.get_data(as_text=True)

        _rate("authorize + token (SSO, no password hash)", 200, exchange)
        registry.close()


if __name__ == "__main__":
    main()
