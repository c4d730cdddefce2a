"""Authlib's authorization server, wired to Hawiya's services.

This module and the views are the only protocol code that may touch Flask (through Authlib's
Flask integration). Authlib does the RFC 6749 / 7636 / OIDC Core validation; Hawiya supplies
storage (codes, clients), the signing of every token (through the Signer), and policy (PKCE S256
only, required for public clients).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode

from idp.accounts.service import AccountService, Person
from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.authn.results import AuthResult
from idp.oidc.claims import SubjectService
from idp.oidc.clients import ClientService, RegisteredClient
from idp.oidc.codes import AuthorizationCode, CodeStore
from idp.oidc.tokens import AuthContext, TokenIssuer


@dataclass(frozen=True)
class AuthorizedUser:
    """The resource owner Authlib passes around: the person and how they authenticated."""

    person: Person
    context: AuthContext


class ParkedPayload(OAuth2Payload):
    """Authorization request parameters, from the browser or from a parked interaction."""

    def __init__(self, params: dict[str, list[str]]) -> None:
        self._params = params
        self._data = {k: v[0] for k, v in params.items() if v}

    @property
    def data(self) -> dict[str, str]:
        """First value of each parameter."""
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        """Every value of each parameter (repeated parameters are refused, RFC 6749 3.1)."""
        return defaultdict(list, self._params)


class AuthorizationRequest(OAuth2Request):
    """An authorization request Authlib can validate, independent of the current HTTP request."""

    def __init__(self, uri: str, params: dict[str, list[str]]) -> None:
        super().__init__(method="GET", uri=uri, headers={})
        self.payload = ParkedPayload(params)

    @property
    def args(self) -> dict[str, str]:
        """Query arguments."""
        return self.payload.data

    @property
    def form(self) -> dict[str, str]:
        """No form body."""
        return {}


class PKCE(CodeChallenge):
    """RFC 7636 with S256 only (``plain`` refused), required for public clients (RFC 9700 2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 - Authlib's class attribute

    def __init__(self, *, required_for_confidential: bool) -> None:
        super().__init__(required=True)
        self._required_for_confidential = required_for_confidential

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        """Refuse a missing challenge from public clients, and any method but S256."""
        data = grant.request.payload.data
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        client: RegisteredClient = grant.request.client
        if not challenge and (client.is_public or self._required_for_confidential):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256")
        if challenge and method != "S256":
            # RFC 7636 4.3 makes a missing method mean "plain", which Hawiya refuses.
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: AuthorizationCode) -> str | None:
        """The challenge stored with the code."""
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: AuthorizationCode) -> str | None:
        """The method stored with the code."""
        return authorization_code.code_challenge_method


class IdToken(OpenIDCode):
    """OIDC Core's code flow extension, with ID tokens signed through the Signer."""

    def __init__(self, server: HawiyaServer) -> None:
        super().__init__(require_nonce=False)
        self._server = server

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        """Nonce replay is the RP's check (OIDC Core 3.1.3.7 step 11); codes are single use."""
        return False

    def generate_user_info(self, user: AuthorizedUser, scope: str) -> dict[str, Any]:
        """Unused: ID tokens carry no scope claims (they come from userinfo)."""
        return {}

    def encode_id_token(self, token: dict[str, Any], request: Any) -> str:
        """Build and sign the ID token (OIDC Core 3.1.3.6)."""
        user: AuthorizedUser = request.user
        client: RegisteredClient = request.client
        code: AuthorizationCode | None = request.authorization_code
        return self._server.tokens.id_token(
            client=client,
            subject=self._server.subjects.subject(client, user.person.id),
            context=user.context,
            nonce=code.nonce if code else None,
            access_token=token.get("access_token"),
            extra_claims={},
        )


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    """RFC 6749 4.1 with codes in the ephemeral store, consumed atomically."""

    TOKEN_ENDPOINT_AUTH_METHODS = [  # noqa: RUF012 - Authlib's class attribute
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]
    server: HawiyaServer

    def save_authorization_code(self, code: str, request: Any) -> None:
        """Store the code with everything the token response will need."""
        user: AuthorizedUser = request.user
        data = request.payload.data
        self.server.codes.save(
            code,
            client_id=request.client.client_id,
            account_id=user.person.id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            nonce=data.get("nonce"),
            auth_time=user.context.auth.auth_time,
            acr=user.context.auth.acr,
            amr=tuple(user.context.auth.amr),
            sid=user.context.sid,
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
        )
        self.server.audit.record(
            AuditEvent.CODE_ISSUED, subject=user.person.id, client_id=request.client.client_id
        )

    def query_authorization_code(self, code: str, client: RegisteredClient) -> AuthorizationCode | None:
        """Consume the code (single use, atomic)."""
        return self.server.codes.consume(code, client.client_id)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing to do: consuming already removed it."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> AuthorizedUser | None:
        """The person the code was issued for, if still active."""
        person = self.server.accounts.find(authorization_code.account_id)
        if person is None or not person.active:
            return None
        auth = AuthResult(
            account_id=person.id,
            auth_time=authorization_code.auth_time,
            amr=authorization_code.amr,
            acr=authorization_code.acr,
        )
        return AuthorizedUser(person, AuthContext(auth, authorization_code.sid))


class HawiyaServer(AuthorizationServer):
    """The authorization server: /authorize validation and the /token endpoint."""

    def __init__(
        self,
        *,
        clients: ClientService,
        codes: CodeStore,
        accounts: AccountService,
        subjects: SubjectService,
        tokens: TokenIssuer,
        audit: AuditLog,
        pkce_required_for_confidential: bool,
    ) -> None:
        super().__init__()
        self.clients = clients
        self.codes = codes
        self.accounts = accounts
        self.subjects = subjects
        self.tokens = tokens
        self.audit = audit
        self.register_token_generator("default", self._generate_token)
        self.register_grant(
            AuthorizationCodeGrant,
            [IdToken(self), PKCE(required_for_confidential=pkce_required_for_confidential)],
        )

    def query_client(self, client_id: str) -> RegisteredClient | None:
        """Only active clients are served."""
        return self.clients.active(client_id) if client_id else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Access tokens are self-contained JWTs; only the issuance is recorded."""
        user: AuthorizedUser | None = request.user
        self.audit.record(
            AuditEvent.TOKENS_ISSUED,
            subject=user.person.id if user else None,
            client_id=request.client.client_id,
            detail={"grant_type": request.payload.grant_type, "scope": token.get("scope")},
        )

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        """Accept an already-built AuthorizationRequest, else wrap the Flask request."""
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def _generate_token(
        self,
        grant_type: str,
        client: RegisteredClient,
        user: AuthorizedUser | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        if user is None:
            raise InvalidRequestError("this grant needs a signed-in person")
        scope = scope or ""
        access_token = self.tokens.access_token(
            client=client,
            subject=self.subjects.subject(client, user.person.id),
            scope=scope,
            context=user.context,
        )
        return {
            "token_type": "Bearer",
            "access_token": access_token,
            "expires_in": self.tokens.access_ttl,
            "scope": scope,
        }
