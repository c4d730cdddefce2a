"""The UserInfo endpoint's logic (OIDC Core 5.3; RFC 6750 for the bearer token).

The access token must stand (see ``introspection.AccessTokens``), be meant for userinfo (``aud``
is the issuer) and carry ``openid``; the person behind its (pairwise) ``sub`` must still be active.
Claims come from the token's scopes plus any claims requested individually (OIDC Core 5.5). The
organisation a person acts for (``org_id`` in the token) is looked up afresh: once the membership
ends or the organisation is suspended, userinfo stops saying the person acts for it.
"""

from __future__ import annotations

from typing import Any

from idp.keys.signer import InvalidToken
from idp.oidc.claims import SubjectService, claims_for
from idp.oidc.clients import ClientService
from idp.oidc.introspection import AccessTokens
from idp.oidc.revocation import TokenLedger
from idp.oidc.server import ActingLookup


class UserinfoService:
    """Answer userinfo for a bearer access token."""

    def __init__(
        self,
        access_tokens: AccessTokens,
        ledger: TokenLedger,
        clients: ClientService,
        subjects: SubjectService,
        organisations: ActingLookup,
        *,
        issuer: str,
    ) -> None:
        self._access_tokens = access_tokens
        self._ledger = ledger
        self._clients = clients
        self._subjects = subjects
        self._organisations = organisations
        self._issuer = issuer

    def claims(self, access_token: str) -> dict[str, Any]:
        """The userinfo claims; InvalidToken when the token does not stand."""
        claims = self._access_tokens.validate(access_token)
        aud = claims.get("aud")
        if self._issuer not in (aud if isinstance(aud, list) else [aud]):
            raise InvalidToken("the token is not meant for userinfo")
        scopes = set(str(claims.get("scope", "")).split())
        if "openid" not in scopes:
            raise InvalidToken("the token was not issued for OpenID Connect")
        client = self._clients.active(str(claims.get("client_id", "")))
        if client is None:
            raise InvalidToken("the token's client is no longer active")
        subject = str(claims.get("sub", ""))
        person = self._subjects.person(client, subject)
        if person is None or not person.active:
            raise InvalidToken("the token's subject is no longer active")
        requested = set(self._ledger.claims_of(str(claims["jti"])))
        org_id = claims.get("org_id")
        acting = self._organisations.acting(person.id, str(org_id)) if org_id else None
        released = claims_for(person, scopes, requested, client_agency=client.agency, acting=acting)
        return {"sub": subject, **released}
