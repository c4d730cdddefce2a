"""The relying party's key pair: generation, the public half, and ``python -m hawiya_rp keygen``."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hawiya_rp import generate_private_jwk, public_jwk
from hawiya_rp.__main__ import main


@pytest.mark.parametrize(("alg", "kty"), [("ES256", "EC"), ("EdDSA", "OKP")])
def test_generated_keys_and_their_public_half(alg: str, kty: str) -> None:
    private = generate_private_jwk(alg)
    assert private["kty"] == kty and private["alg"] == alg and private["use"] == "sig" and "d" in private
    public = public_jwk(private)
    assert "d" not in public and public["kid"] == private["kid"] and public["alg"] == alg
    assert generate_private_jwk(alg)["kid"] != private["kid"]
    assert generate_private_jwk(alg, kid="mine")["kid"] == "mine"


def test_unsupported_algorithms_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        generate_private_jwk("HS256")


def test_keygen_writes_the_private_key_0600_and_prints_only_the_public_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rp.json"
    assert main(["keygen", "--alg", "ES256", "--out", str(out)]) == 0
    private = json.loads(out.read_text())
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    printed = capsys.readouterr()
    jwks = json.loads(printed.out)
    assert jwks == {"keys": [public_jwk(private)]}
    assert private["d"] not in printed.out + printed.err
    # Never silently replaced.
    assert main(["keygen", "--out", str(out)]) == 1
    assert json.loads(out.read_text()) == private
    assert main(["keygen", "--out", str(out), "--force"]) == 0
    assert json.loads(out.read_text())["kid"] != private["kid"]


def test_keygen_runs_as_a_module(tmp_path: Path) -> None:
    out = tmp_path / "k.json"
    done = subprocess.run(
        [sys.executable, "-m", "hawiya_rp", "keygen", "--alg", "EdDSA", "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout)["keys"][0]["crv"] == "Ed25519"
