"""The relying party's own key pair, for ``private_key_jwt`` client authentication (RFC 7523 2.2,
OIDC Core 9): generated here, the private JWK kept by the agency, the public JWK registered at
Hawiya. Only asymmetric algorithms exist here."""

from __future__ import annotations

from typing import Any

from joserfc.jwk import ECKey, Key, OKPKey, RSAKey, import_key

#: The algorithms a relying party may sign its assertions with, and the key each needs.
KEY_ALGS = ("ES256", "RS256", "PS256", "EdDSA")
#: RSA modulus size for new keys (as Hawiya's own).
RSA_BITS = 3072
_PUBLIC_MEMBERS = ("kty", "crv", "x", "y", "n", "e", "kid", "alg", "use")


def _generate(alg: str) -> Key:
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", private=True)
    if alg in ("RS256", "PS256"):
        return RSAKey.generate_key(RSA_BITS, private=True)
    raise ValueError(f"unsupported key algorithm {alg!r}; choose one of {', '.join(KEY_ALGS)}")


def generate_private_jwk(alg: str = "ES256", kid: str | None = None) -> dict[str, Any]:
    """A new private JWK for ``alg``, with ``kid`` (default: its RFC 7638 thumbprint), ``alg`` and
    ``use: sig``. Keep it secret; register ``public_jwk(...)`` of it."""
    key = _generate(alg)
    return {**key.as_dict(private=True), "kid": kid or key.thumbprint(), "alg": alg, "use": "sig"}


def public_jwk(private: dict[str, Any]) -> dict[str, Any]:
    """The public half of a private JWK, with its ``kid``, ``alg`` and ``use``: what to register."""
    key = load_private_jwk(private)
    public = {**key.as_dict(private=False)}
    for member in ("kid", "alg", "use"):
        if member in private:
            public[member] = private[member]
    return {name: public[name] for name in _PUBLIC_MEMBERS if name in public}


def load_private_jwk(private: dict[str, Any]) -> Key:
    """The joserfc key of a private JWK; ValueError when it is not an asymmetric private key."""
    if not isinstance(private, dict) or private.get("kty") not in ("EC", "RSA", "OKP"):
        raise ValueError("the relying party's key must be an EC, RSA or OKP JWK")
    if "d" not in private:
        raise ValueError("the relying party's key must be a private JWK (it has no 'd')")
    key = import_key(private)
    if private.get("alg") is not None and private["alg"] not in KEY_ALGS:
        raise ValueError(f"the relying party's key has an unsupported alg {private['alg']!r}")
    return key


def signing_alg(private: dict[str, Any]) -> str:
    """The algorithm to sign with ``private``: its ``alg``, else the usual one for its type."""
    alg = private.get("alg")
    if isinstance(alg, str):
        return alg
    return {"EC": "ES256", "RSA": "RS256", "OKP": "EdDSA"}[private["kty"]]
