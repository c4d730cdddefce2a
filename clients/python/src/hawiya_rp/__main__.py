"""``python -m hawiya_rp keygen``: make the relying party's key pair for ``private_key_jwt``.

The private JWK goes to a file only its owner can read (0600), never to the terminal; the public
JWK Set to register at Hawiya (saved to a file, ``hawiya clients create --auth-method
private_key_jwt --jwks FILE ...``) goes to standard output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from hawiya_rp.keys import KEY_ALGS, generate_private_jwk, public_jwk


def keygen(alg: str, out: Path, *, kid: str | None = None, force: bool = False) -> dict[str, object]:
    """Write a new private JWK to ``out`` (mode 0600); the public JWK Set to register."""
    private = generate_private_jwk(alg, kid=kid)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    descriptor = os.open(out, flags, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(private, handle, indent=2)
        handle.write("\n")
    os.chmod(out, 0o600)  # an existing file (--force) keeps its old mode otherwise
    return {"keys": [public_jwk(private)]}


def main(argv: Sequence[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m hawiya_rp", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("keygen", help="make a key pair for private_key_jwt")
    gen.add_argument("--alg", default="ES256", choices=KEY_ALGS, help="signing algorithm (default ES256)")
    gen.add_argument("--out", type=Path, default=Path("rp-private-key.json"), help="private JWK file (0600)")
    gen.add_argument("--kid", help="key id (default: the key's RFC 7638 thumbprint)")
    gen.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)
    try:
        jwks = keygen(args.alg, args.out, kid=args.kid, force=args.force)
    except FileExistsError:
        print(f"{args.out} exists; use --force to replace it", file=sys.stderr)
        return 1
    print(
        f"private key written to {args.out} (keep it secret); register this public JWK Set:", file=sys.stderr
    )
    print(json.dumps(jwks, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
