"""The ``claims`` request parameter (OIDC Core 5.5).

A JSON object whose ``userinfo`` and ``id_token`` members name individual claims, optionally with
``essential``, ``value`` or ``values``. Hawiya releases a requested claim only when the person
consented to it; an essential claim that cannot be released does not fail the request (5.5.1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from idp.inbound import InvalidJson, parse_json
from idp.oidc.claims import SCOPE_CLAIMS

#: Every claim a person may release, and the scope that normally carries it.
CLAIM_SCOPE = {claim: scope for scope, claims in SCOPE_CLAIMS.items() for claim in claims}
#: Claims about the authentication itself, always answerable.
AUTH_CLAIMS = frozenset({"acr", "auth_time", "amr", "sub"})


class InvalidClaimsRequest(ValueError):
    """The ``claims`` parameter is not a valid JSON claims request."""


@dataclass(frozen=True)
class ClaimsRequest:
    """Claims asked for individually, by where they should be returned."""

    userinfo: dict[str, Any] = field(default_factory=dict)
    id_token: dict[str, Any] = field(default_factory=dict)

    @property
    def personal(self) -> set[str]:
        """Requested personal claims Hawiya knows (they need consent)."""
        return {c for c in (*self.userinfo, *self.id_token) if c in CLAIM_SCOPE}

    def within(self, registered_scope: str) -> ClaimsRequest:
        """Only the personal claims the client's registered scopes could release: the ``claims``
        parameter chooses among what a client may receive, it never widens it."""
        allowed = {claim for scope in registered_scope.split() for claim in SCOPE_CLAIMS.get(scope, ())}

        def keep(member: dict[str, Any]) -> dict[str, Any]:
            return {name: spec for name, spec in member.items() if name not in CLAIM_SCOPE or name in allowed}

        return ClaimsRequest(userinfo=keep(self.userinfo), id_token=keep(self.id_token))

    def as_json(self) -> str:
        """Serialised for storage with a code or token."""
        return json.dumps({"userinfo": self.userinfo, "id_token": self.id_token}, sort_keys=True)

    @property
    def essential_acr(self) -> list[str]:
        """The acr values asked for as essential in the ID token, if any."""
        spec = self.id_token.get("acr")
        if not isinstance(spec, dict) or not spec.get("essential"):
            return []
        if isinstance(spec.get("values"), list):
            return [str(v) for v in spec["values"]]
        return [str(spec["value"])] if "value" in spec else []


def parse_claims_request(raw: str | None) -> ClaimsRequest:
    """Parse the parameter; InvalidClaimsRequest when it is not a JSON object of the right shape
    (or is too large or nested too deeply to be one: a claims request is two levels deep)."""
    if not raw:
        return ClaimsRequest()
    try:
        data = parse_json(raw, what="the claims parameter")
    except InvalidJson as refused:
        raise InvalidClaimsRequest(str(refused)) from None
    if not isinstance(data, dict):
        raise InvalidClaimsRequest("the claims parameter must be a JSON object")
    members: dict[str, dict[str, Any]] = {}
    for member in ("userinfo", "id_token"):
        value = data.get(member) or {}
        if not isinstance(value, dict):
            raise InvalidClaimsRequest(f"claims.{member} must be a JSON object")
        for name, spec in value.items():
            if spec is not None and not isinstance(spec, dict):
                raise InvalidClaimsRequest(f"claims.{member}.{name} must be null or an object")
        members[member] = {str(k): v for k, v in value.items()}
    return ClaimsRequest(userinfo=members["userinfo"], id_token=members["id_token"])
