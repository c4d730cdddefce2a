"""Access-token validation shared by userinfo, revocation and introspection (RFC 7662).

An access token stands when: this IdP signed it with a published (not revoked) key, it is an
``at+jwt``, its issuer is ours, it has not expired, its ``jti`` is not on the deny-list, and its
client is still active. Introspection answers only confidential clients, and only about tokens
issued to them or meant for them (``aud``); everything else is ``{"active": false}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from idp.clock import Clock
from idp.keys.signer import InvalidToken, TokenVerifier
from idp.oidc.clients import ClientService, RegisteredClient, serves_the_idp
from idp.oidc.refresh import RefreshTokens
from idp.oidc.revocation import TokenLedger

#: Allowed clock skew, seconds.
LEEWAY = 30


class AccessTokens:
    """Decide whether an access token still stands."""

    def __init__(
        self,
        verifier: TokenVerifier,
        ledger: TokenLedger,
        clients: ClientService,
        clock: Clock,
        *,
        issuer: str,
    ) -> None:
        self._verifier = verifier
        self._ledger = ledger
        self._clients = clients
        self._clock = clock
        self._issuer = issuer

    def validate(self, token: str) -> dict[str, Any]:
        """The token's claims; InvalidToken with a reason when it does not stand."""
        _, claims = self._verifier.verify(token, typ="at+jwt")
        if claims.get("iss") != self._issuer:
            raise InvalidToken("the token was issued by another issuer")
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp + LEEWAY < self._clock.now():
            raise InvalidToken("the token has expired")
        jti = claims.get("jti")
        if not isinstance(jti, str) or self._ledger.is_revoked(jti):
            raise InvalidToken("the token has been revoked")
        if self._clients.active(str(claims.get("client_id", ""))) is None:
            raise InvalidToken("the token's client is no longer active")
        return claims

    def revoke(self, token: str, client: RegisteredClient) -> bool:
        """RFC 7009: deny an access token issued to ``client``; False if it is not one."""
        try:
            _, claims = self._verifier.verify(token, typ="at+jwt")
        except InvalidToken:
            return False
        if claims.get("client_id") != client.client_id or not isinstance(claims.get("jti"), str):
            return False
        self._ledger.revoke(claims["jti"], int(claims.get("exp", 0)))
        return True


class Introspection:
    """RFC 7662 answers."""

    def __init__(
        self,
        access_tokens: AccessTokens,
        refresh: RefreshTokens,
        session_is_live: Callable[[str], bool],
        *,
        issuer: str,
    ) -> None:
        self._access_tokens = access_tokens
        self._refresh = refresh
        self._session_is_live = session_is_live
        self._issuer = issuer

    def introspect(self, token: str, hint: str | None, client: RegisteredClient) -> dict[str, Any]:
        """What ``client`` may learn about ``token``."""
        order = (
            ("refresh_token", "access_token")
            if hint == "refresh_token"
            else ("access_token", "refresh_token")
        )
        for kind in order:
            answer = (
                self._access(token, client) if kind == "access_token" else self._refresh_answer(token, client)
            )
            if answer is not None:
                return answer
        return {"active": False}

    def _access(self, token: str, client: RegisteredClient) -> dict[str, Any] | None:
        try:
            claims = self._access_tokens.validate(token)
        except InvalidToken:
            return None
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        # A resource on the IdP's own origin (refused at registration since; older clients may hold
        # one) would make every token for userinfo this client's business: it does not count.
        resources = {r for r in client.resources if not serves_the_idp(r, self._issuer)}
        if claims.get("client_id") != client.client_id and not (
            set(audiences) & ({client.client_id} | resources)
        ):
            return None  # RFC 7662 4: never tell a client about tokens that are none of its business
        answer = {"active": True, "token_type": "Bearer"}
        for name in ("scope", "client_id", "sub", "exp", "iat", "iss", "aud", "jti", "auth_time", "acr"):
            if name in claims:
                answer[name] = claims[name]
        return answer

    def _refresh_answer(self, token: str, client: RegisteredClient) -> dict[str, Any] | None:
        row = self._refresh.introspect(token)
        if row is None or row.client_id != client.client_id:
            return None
        if not row.offline and not (row.sid and self._session_is_live(row.sid)):
            return None  # session-bound: it died with the SSO session (refused on use too)
        return {
            "active": True,
            "token_type": "refresh_token",
            "scope": row.scope,
            "client_id": row.client_id,
            "iss": self._issuer,
            "exp": int(row.expires_at.timestamp()),
            "iat": int(row.issued_at.timestamp()),
        }
