"""``hawiya demo`` registers the two demo agencies `make run` serves (clients/python/examples):
Building permits with a client secret kept in demo.json, Business registration with a key pair
written once into the instance folder; running it again changes nothing that works."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from joserfc.jwk import ECKey

from tests.support.cli import new_instance


def test_the_demo_registers_both_agencies_once(tmp_path: Path) -> None:
    instance = new_instance(tmp_path)
    instance.ok("init")
    out = instance.ok("demo")
    assert "http://127.0.0.1:8101/" in out and "http://127.0.0.1:8102/" in out
    folder = tmp_path / "instance"
    key_file = folder / "demo-business-key.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    private = json.loads(key_file.read_text())
    assert ECKey.import_key(private).thumbprint() == private["kid"]  # RFC 7638, as hawiya_rp makes it
    secret = json.loads((folder / "demo.json").read_text())["clients"]["demo-permits"]

    instance.ok("demo")
    assert json.loads(key_file.read_text()) == private
    assert json.loads((folder / "demo.json").read_text())["clients"]["demo-permits"] == secret
    registry = instance.registry()
    try:
        permits = registry.clients.show("demo-permits")
        business = registry.clients.show("demo-business")
        assert permits.redirect_uris == ("http://127.0.0.1:8101/auth/callback",)
        assert permits.token_endpoint_auth_method == "client_secret_basic"
        assert permits.check_client_secret(secret)
        assert business.redirect_uris == ("http://127.0.0.1:8102/auth/callback",)
        assert business.token_endpoint_auth_method == "private_key_jwt"
        assert "business" in business.scope.split()
        assert business.jwks == {"keys": [{k: v for k, v in private.items() if k != "d"}]}
    finally:
        registry.close()


def test_a_lost_permits_secret_is_replaced(tmp_path: Path) -> None:
    instance = new_instance(tmp_path)
    instance.ok("init")
    instance.ok("demo")
    demo_json = tmp_path / "instance" / "demo.json"
    saved = json.loads(demo_json.read_text())
    old = saved["clients"].pop("demo-permits")
    demo_json.write_text(json.dumps(saved))

    instance.ok("demo")
    new = json.loads(demo_json.read_text())["clients"]["demo-permits"]
    registry = instance.registry()
    try:
        client = registry.clients.show("demo-permits")
        assert new != old and client.check_client_secret(new) and not client.check_client_secret(old)
    finally:
        registry.close()
