"""Authlib's authorization server, wired to Hawiya's services.

This module and the views are the only protocol code that may touch Flask (through Authlib's
Flask integration). Authlib does the RFC 6749 / 7636 / OIDC Core validation; Hawiya supplies
storage (codes, refresh tokens, clients), the signing of every token (through the Signer), client
authentication by ``private_key_jwt`` (RFC 7523), and policy (PKCE S256 only, required of every
client but a confidential one holding an audited exemption; refresh rotation with reuse detection;
replayed codes revoke what they issued).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request, grants
from authlib.oauth2.rfc6749.authenticate_client import authenticate_client_secret_basic
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
)
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode

from idp.accounts.service import AccountService, Person
from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.authn.results import AuthResult
from idp.errors import KeyUnavailable
from idp.inbound import InvalidJson, identifier_or_none
from idp.oidc.claims import ActingFor, SubjectService, claims_for
from idp.oidc.claims_request import ClaimsRequest, parse_claims_request
from idp.oidc.clients import (
    CLIENT_AUTH_METHODS,
    CONFIDENTIAL_AUTH_METHODS,
    SCOPES,
    ClientService,
    RegisteredClient,
    scope_problem,
)
from idp.oidc.codes import AuthorizationCode, CodeStore, code_hash
from idp.oidc.jose import (
    ASSERTION_TYPE,
    LEGACY_AUDIENCE_REMOVAL,
    AssertionClient,
    AssertionVerifier,
    InvalidAssertion,
    unverified_client_id,
)
from idp.oidc.refresh import RefreshGrant, RefreshTokens, key_grant
from idp.oidc.revocation import TokenLedger
from idp.oidc.session_tokens import session_grant
from idp.oidc.tokens import AuthContext, TokenIssuer


class ActingLookup(Protocol):
    """What the protocol needs of idp.accounts.organisations: a membership still usable."""

    def acting(self, account_id: str, ref: str) -> ActingFor | None:
        """The usable membership of ``account_id`` in the organisation ``ref``, or None."""
        ...


class InvalidTargetError(OAuth2Error):
    """RFC 8707 section 2: the requested resource is not one this client registered."""

    error = "invalid_target"


@dataclass(frozen=True)
class AuthorizedUser:
    """The resource owner Authlib passes around: the person, how they authenticated, and the grant
    the tokens come from (its scope, claims request, refresh family and originating code)."""

    person: Person
    context: AuthContext
    claims: ClaimsRequest = field(default_factory=ClaimsRequest)
    grant_scope: str = ""
    family_id: str | None = None
    offline: bool = False
    code_hash: str | None = None
    #: The organisation the person acts for (the ``business`` scope), still usable.
    acting: ActingFor | None = None


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
    """RFC 7636 with S256 only (``plain`` refused), required of every client (RFC 9700 2.1.1) but a
    confidential one staff excused (``pkce_exempt``: legacy agencies; each such code is audited)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 - Authlib's class attribute

    def __init__(self) -> None:
        super().__init__(required=True)

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        """Refuse a missing challenge unless the client is excused, and any method but S256."""
        data = grant.request.payload.data
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        client: RegisteredClient = grant.request.client
        if not challenge and (client.is_public or not client.pkce_exempt):
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
        """Unused: ID tokens carry scope claims only when asked for with ``claims`` (5.5)."""
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
            extra_claims=claims_for(
                user.person,
                {"business"} if user.acting is not None else set(),
                set(user.claims.id_token),
                client_agency=client.agency,
                acting=user.acting,
            ),
        )


class _IssuesTokens:
    """Hands the whole request to the server's token issuance (resource indicators, ledger)."""

    server: HawiyaServer
    request: Any
    GRANT_TYPE: str

    def generate_token(
        self,
        user: AuthorizedUser | None = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """Issue this response's tokens; a grant that settled the scope itself (client_credentials,
        when the client named none) left it on the request, where Authlib does not look."""
        return self.server.issue(
            self.request,
            user=user,
            scope=scope or self.request.scope or "",
            include_refresh_token=include_refresh_token,
        )


class AuthorizationCodeGrant(_IssuesTokens, grants.AuthorizationCodeGrant):
    """RFC 6749 4.1 with codes in the ephemeral store, consumed atomically."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def validate_requested_scope(self) -> None:
        """RFC 6749 3.3 and 4.1.2.1: a malformed scope value, or a scope Hawiya knows that the
        client did not register, is ``invalid_scope`` (sent to the verified redirect_uri); values
        Hawiya does not understand are dropped afterwards (``get_allowed_scope``)."""
        problem = scope_problem(self.request.client, self.request.payload.scope)
        if problem is not None:
            raise InvalidScopeError(problem)

    def save_authorization_code(self, code: str, request: Any) -> None:
        """Store the code with everything the token response will need."""
        user: AuthorizedUser = request.user
        data = request.payload.data
        # Validated before consent; only what the client's registered scopes may release.
        claims = parse_claims_request(data.get("claims")).within(request.client.scope)
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
            claims=claims.as_json() if claims.userinfo or claims.id_token else None,
            organisation=user.acting.organisation.id if user.acting is not None else None,
        )
        self.server.audit.record(
            AuditEvent.CODE_ISSUED, subject=user.person.id, client_id=request.client.client_id
        )
        if not data.get("code_challenge"):  # only an exempt client gets this far (PKCE above)
            self.server.audit.record(
                AuditEvent.CODE_ISSUED_WITHOUT_PKCE,
                subject=user.person.id,
                client_id=request.client.client_id,
            )

    def query_authorization_code(self, code: str, client: RegisteredClient) -> AuthorizationCode | None:
        """Consume the code (single use, atomic); a replay revokes what the code issued."""
        record = self.server.codes.consume(code, client.client_id, self.request.payload.redirect_uri)
        if record is None and self.server.codes.was_spent(code):
            self.server.revoke_code_grant(code_hash(code))
        return record

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing to do: consuming already removed it."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> AuthorizedUser | None:
        """The person the code was issued for, if still active."""
        person = self.server.accounts.find(authorization_code.account_id)
        if person is None or not person.active:
            return None
        acting = None
        if authorization_code.organisation:
            acting = self.server.organisations.acting(person.id, authorization_code.organisation)
            if acting is None:  # the membership ended or the organisation was suspended meanwhile
                return None
        auth = AuthResult(
            account_id=person.id,
            auth_time=authorization_code.auth_time,
            amr=authorization_code.amr,
            acr=authorization_code.acr,
        )
        return AuthorizedUser(
            person,
            AuthContext(auth, authorization_code.sid),
            claims=parse_claims_request(authorization_code.claims),
            grant_scope=authorization_code.scope,
            offline="offline_access" in authorization_code.scope.split(),
            code_hash=authorization_code.code_hash,
            acting=acting,
        )


@dataclass(frozen=True)
class _RefreshCredential:
    """A consumed refresh token, in the shape Authlib's refresh grant asks for."""

    grant: RefreshGrant

    def check_client(self, client: RegisteredClient) -> bool:
        return client.client_id == self.grant.client_id

    def get_scope(self) -> str:
        return self.grant.scope


class RefreshTokenGrant(_IssuesTokens, grants.RefreshTokenGrant):
    """RFC 6749 6 with rotation on every use and family revocation on reuse (RFC 9700 4.14)."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True
    #: The token this request consumed (given back if no response can be signed).
    _spent: str | None = None

    def authenticate_refresh_token(self, refresh_token: str) -> _RefreshCredential | None:
        """Consume the presented token; None when unknown, spent (then its family dies) or dead."""
        client: RegisteredClient = self.request.client
        self._refuse_before_spending(refresh_token, client)
        grant = self.server.refresh.consume(refresh_token, client.client_id)
        if grant is None:
            return None
        if not grant.offline and not (grant.sid and self.server.session_is_live(grant.sid)):
            # Session-bound tokens die with the SSO session.
            self.server.refresh.revoke_family(grant.family_id, reason="session_ended")
            return None
        self._spent = refresh_token
        return _RefreshCredential(grant)

    def create_token_response(self) -> Any:
        """Authlib's response, except when no token can be signed (the signer is down): then the
        consumed token is given back, since nothing was issued for it, and the client's retry is
        not taken for a stolen token's reuse (RFC 9700 4.14.2). The access token is the first and
        only thing signed, before the new refresh token is stored."""
        try:
            return super().create_token_response()
        except KeyUnavailable:
            if self._spent is not None:
                self.server.refresh.release(self._spent, self.request.client.client_id)
            raise

    def _refuse_before_spending(self, refresh_token: str, client: RegisteredClient) -> None:
        """Refuse what Authlib and ``issue`` would refuse only after the token was consumed: a
        refused request must leave the client's token usable (else its retry looks like a reuse)."""
        resource = self.request.form.get("resource")
        if resource and resource not in client.resources:
            raise InvalidTargetError("the resource is not registered for this client")
        problem = scope_problem(client, self.request.payload.scope)
        if problem is not None:
            raise InvalidScopeError(problem)
        requested = set((self.request.payload.scope or "").split())
        if not requested:
            return  # the usual refresh: the granted scope again, nothing to read first
        live = self.server.refresh.introspect(refresh_token)
        granted = set(live.scope.split()) if live is not None and live.client_id == client.client_id else None
        if granted is not None and not requested <= granted:
            # RFC 6749 6: the scope must not include any scope not originally granted.
            raise InvalidScopeError("the scope asked for was not originally granted")

    def authenticate_user(self, credential: _RefreshCredential) -> AuthorizedUser | None:
        """The person of the refresh family, if still active."""
        grant = credential.grant
        person = self.server.accounts.find(grant.account_id)
        if person is None or not person.active:
            self.server.refresh.revoke_family(grant.family_id, reason="account_inactive")
            raise InvalidGrantError("the refresh token's account is no longer active")
        acting = None
        if grant.organisation:
            acting = self.server.organisations.acting(person.id, grant.organisation)
            if acting is None:  # the person no longer acts for that organisation
                self.server.refresh.revoke_family(grant.family_id, reason="membership_ended")
                raise InvalidGrantError("the person no longer acts for the organisation of this grant")
        auth = AuthResult(person.id, grant.auth_time, grant.amr, grant.acr or "")
        return AuthorizedUser(
            person,
            AuthContext(auth, grant.sid),
            claims=parse_claims_request(grant.claims),
            grant_scope=grant.scope,
            family_id=grant.family_id,
            offline=grant.offline,
            acting=acting,
        )

    def revoke_old_credential(self, credential: _RefreshCredential) -> None:
        """Nothing to do: the old token was consumed atomically."""


def client_credentials_scope(client: RegisteredClient, requested: str | None) -> str:
    """The scope of a client_credentials grant: the API scopes asked for, all of them registered by
    the client, else all its API scopes (never a personal scope: the client acts as itself).
    InvalidScopeError otherwise."""
    problem = scope_problem(client, requested)
    if problem is not None:
        raise InvalidScopeError(problem)
    api_scopes = [s for s in client.scope.split() if s not in SCOPES]
    asked = (requested or "").split()
    if any(s not in api_scopes for s in asked):
        raise InvalidScopeError("client_credentials grants only the API scopes the client registered")
    return " ".join(asked or api_scopes)


def client_credentials_response(
    tokens: TokenIssuer, client: RegisteredClient, *, scope: str, resource: str | None
) -> dict[str, Any]:
    """The token response of a client_credentials grant (the resource already checked)."""
    access = tokens.access_token(
        client=client, subject=client.client_id, scope=scope, context=None, audience=resource
    )
    return {
        "token_type": "Bearer",
        "access_token": access.value,
        "expires_in": tokens.access_ttl,
        "scope": scope,
    }


class ClientCredentialsGrant(_IssuesTokens, grants.ClientCredentialsGrant):
    """RFC 6749 4.4 for agency-to-agency APIs: the client acts as itself (``sub`` = client_id)."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_token_request(self) -> None:
        """Authlib's checks, then: only API scopes the client registered (no personal scopes)."""
        super().validate_token_request()
        self.request.scope = client_credentials_scope(self.request.client, self.request.payload.scope)


def credentials_presented(headers: Any, form: Any) -> list[str]:
    """The client authentication methods a token-endpoint request carries credentials for: HTTP
    Basic, a ``client_secret`` in the body, a ``client_assertion``."""
    presented = []
    if str(headers.get("Authorization", "")).strip().split(" ", 1)[0].lower() == "basic":
        presented.append("client_secret_basic")
    if "client_secret" in form:
        presented.append("client_secret_post")
    if "client_assertion" in form or "client_assertion_type" in form:
        presented.append("private_key_jwt")
    return presented


class HawiyaServer(AuthorizationServer):
    """The authorization server: /authorize validation and the token endpoint's grants."""

    def __init__(
        self,
        *,
        clients: ClientService,
        codes: CodeStore,
        refresh: RefreshTokens,
        ledger: TokenLedger,
        accounts: AccountService,
        subjects: SubjectService,
        tokens: TokenIssuer,
        assertions: AssertionVerifier,
        sessions_live: Any,
        organisations: ActingLookup,
        audit: AuditLog,
    ) -> None:
        super().__init__()
        self.clients = clients
        self.codes = codes
        self.refresh = refresh
        self.ledger = ledger
        self.accounts = accounts
        self.subjects = subjects
        self.tokens = tokens
        self.assertions = assertions
        self.session_is_live = sessions_live
        self.organisations = organisations
        self.audit = audit
        self.register_client_auth_method("client_secret_basic", self._authenticate_client_secret_basic)
        self.register_client_auth_method("private_key_jwt", self._authenticate_private_key_jwt)
        self.register_grant(
            AuthorizationCodeGrant,
            [IdToken(self), PKCE()],
        )
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)

    def get_consent_grant(self, request: Any = None, end_user: Any = None) -> Any:
        """Authlib's validation of an authorization request. Authlib echoes ``response_type`` and
        ``redirect_uri`` in error descriptions and raises ValueError when they hold characters RFC
        6749 4.1.2.1 forbids there: such a request is invalid_request, shown on a page (the
        redirect_uri is not known to be good)."""
        try:
            return super().get_consent_grant(request=request, end_user=end_user)
        except ValueError:
            raise InvalidRequestError("the request has characters its parameters may not hold") from None

    def authenticate_client(self, request: Any, methods: list[str], endpoint: str = "token") -> Any:
        """Authlib's client authentication, with every failure audited (never the credential)."""
        try:
            presented = credentials_presented(request.headers, request.form)
            if len(presented) > 1:
                # RFC 6749 2.3: the client MUST NOT use more than one authentication method.
                used = " and ".join(presented)
                raise InvalidRequestError(f"use one client authentication method, not {used}")
            return super().authenticate_client(request, methods, endpoint)
        except OAuth2Error as failure:
            if request.form.get("client_assertion"):
                raise  # the private_key_jwt check already audited it, with its reason
            claimed = request.payload.client_id if request.payload is not None else None
            self.audit.record(
                AuditEvent.CLIENT_AUTH_FAILED,
                client_id=identifier_or_none(claimed),
                detail={"endpoint": endpoint, "error": failure.error},
            )
            raise

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

    # -- client authentication ------------------------------------------------------------------

    @staticmethod
    def _authenticate_client_secret_basic(query_client: Any, request: Any) -> RegisteredClient | None:
        """RFC 6749 2.3.1 HTTP Basic, by Authlib; a malformed header is no credentials, not a crash."""
        try:
            client: RegisteredClient | None = authenticate_client_secret_basic(query_client, request)
        except ValueError:  # Authlib's parser raises on "Basic " alone and on credentials not in UTF-8
            return None
        return client

    def _authenticate_private_key_jwt(self, query_client: Any, request: Any) -> RegisteredClient | None:
        """RFC 7523 2.2 / OIDC Core 9: the client proves itself with a JWT signed by its key."""
        data = request.form
        assertion = data.get("client_assertion")
        if data.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            return None
        try:
            client_id = data.get("client_id") or unverified_client_id(assertion)
        except InvalidJson as refused:
            raise InvalidRequestError(str(refused)) from None
        client: RegisteredClient | None = query_client(client_id) if client_id else None
        if client is None or client.token_endpoint_auth_method != "private_key_jwt":
            return None
        try:
            verified = self.assertions.verify(
                assertion,
                AssertionClient(
                    client.client_id,
                    client.jwks,
                    client.jwks_uri,
                    legacy_audience=client.legacy_assertion_audience,
                ),
            )
        except InvalidAssertion as refused:
            self.audit.record(
                AuditEvent.CLIENT_AUTH_FAILED,
                client_id=client.client_id,
                detail={"method": "private_key_jwt", "reason": str(refused)},
            )
            return None
        if verified.legacy_audience:
            self.audit.record(
                AuditEvent.CLIENT_LEGACY_AUDIENCE_USED,
                client_id=client.client_id,
                detail={"aud": "token_endpoint", "accepted_until": LEGACY_AUDIENCE_REMOVAL},
            )
        return client

    def authenticate_endpoint_client(self, endpoint: str) -> RegisteredClient:
        """Authenticate the caller of /revoke or /introspect (confidential clients only)."""
        request = self.create_oauth2_request(None)
        methods = CLIENT_AUTH_METHODS if endpoint == "revocation" else CONFIDENTIAL_AUTH_METHODS
        client: RegisteredClient = self.authenticate_client(request, methods, endpoint)
        return client

    # -- issuance and revocation ----------------------------------------------------------------

    def issue(
        self, request: Any, *, user: AuthorizedUser | None, scope: str, include_refresh_token: bool
    ) -> dict[str, Any]:
        """The token response of a grant: access token, maybe a refresh token (ID tokens are
        added by the IdToken extension)."""
        client: RegisteredClient = request.client
        resource = request.form.get("resource") if hasattr(request, "form") else None
        if resource and resource not in client.resources:
            raise InvalidTargetError("the resource is not registered for this client")
        if user is None:  # client_credentials: the client acts as itself
            return client_credentials_response(self.tokens, client, scope=scope, resource=resource)
        access = self.tokens.access_token(
            client=client,
            subject=self.subjects.subject(client, user.person.id),
            scope=scope,
            context=user.context,
            audience=resource,
            organisation=user.acting.organisation.id if user.acting is not None else None,
        )
        response: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": access.value,
            "expires_in": self.tokens.access_ttl,
            "scope": scope,
        }
        self.ledger.attach_claims(access.jti, access.exp, sorted(user.claims.userinfo))
        family = user.family_id
        live = bool(user.context.sid and self.session_is_live(user.context.sid))
        if include_refresh_token and client.check_grant_type("refresh_token") and (user.offline or live):
            family = family or self.refresh.new_family()
            response["refresh_token"] = self.refresh.issue(
                RefreshGrant(
                    family_id=family,
                    client_id=client.client_id,
                    account_id=user.person.id,
                    sid=user.context.sid,
                    scope=user.grant_scope or scope,
                    auth_time=user.context.auth.auth_time,
                    acr=user.context.auth.acr,
                    amr=tuple(user.context.auth.amr),
                    offline=user.offline,
                    claims=user.claims.as_json() if user.claims.userinfo or user.claims.id_token else None,
                    organisation=user.acting.organisation.id if user.acting is not None else None,
                ),
                code_hash=user.code_hash,
                key_ids=(access.kid,),
            )
        grants = [f"code:{user.code_hash}"] if user.code_hash else []
        grants += [f"family:{family}"] if family else []
        self.ledger.issued_many(access.jti, access.exp, grants)
        if user.context.sid and not user.offline:
            # Bound to the SSO session: revoked when it ends (idp/oidc/session_tokens.py).
            grants.append(session_grant(user.context.sid))
            self.ledger.issued_shared(access.jti, access.exp, grants[-1])
        # A replay of the code, a reuse in the family or the end of the session may have revoked
        # the grant while this response was being made, sweeping only what was recorded then (RFC
        # 6749 4.1.2, RFC 9700 4.14.2); so may the revocation of the key that signed it. Everything
        # is recorded now, so the revocations' marks are checked last (in one read).
        if self.ledger.any_revoked(grants + ([key_grant(access.kid)] if family else [])):
            self.ledger.revoke(access.jti, access.exp)
            if family:
                self.refresh.revoke_family(family, reason="revoked_while_issuing")
        return response

    def revoke_code_grant(self, hashed_code: str) -> None:
        """RFC 6749 4.1.2: a replayed code revokes every token issued from it."""
        revoked = self.ledger.revoke_grant("code:" + hashed_code)
        self.refresh.revoke_for_code(hashed_code)
        self.audit.record(
            AuditEvent.TOKEN_REVOKED, detail={"reason": "code_replay", "access_tokens": revoked}
        )
