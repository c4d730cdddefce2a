"""The UserInfo endpoint's logic (OIDC Core 5.3; RFC 6750 for the bearer token).

The access token is an RFC 9068 JWT this IdP signed: its signature, type, issuer, audience and
expiry are checked, its client must still be active, and the person behind its (pairwise) ``sub``
must still be active.
"""

from __future__ import annotations

from typing import Any

from idp.clock import Clock
from idp.keys.signer import InvalidToken, TokenVerifier
from idp.oidc.claims import SubjectService, claims_for
from idp.oidc.clients import ClientService

#: Allowed clock skew, seconds.
LEEWAY = 30


class UserinfoService:
    """Answer userinfo for a bearer access token."""

    def __init__(
        self,
        verifier: TokenVerifier,
        clients: ClientService,
        subjects: SubjectService,
        clock: Clock,
        *,
        issuer: str,
    ) -> None:
        self._verifier = verifier
        self._clients = clients
        self._subjects = subjects
        self._clock = clock
        self._issuer = issuer

    def claims(self, access_token: str) -> dict[str, Any]:
        """The userinfo claims; InvalidToken when the token does not stand."""
        _, claims = self._verifier.verify(access_token, typ="at+jwt")
        now = self._clock.now()
        if claims.get("iss") != self._issuer:
            raise InvalidToken("the token was issued by another issuer")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self._issuer not in audiences:
            raise InvalidToken("the token is not meant for userinfo")
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp + LEEWAY < now:
            raise InvalidToken("the token has expired")
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
        return {"sub": subject, **claims_for(person, scopes)}
