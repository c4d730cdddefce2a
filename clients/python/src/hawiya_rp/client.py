"""An OpenID Connect relying party for the authorization code flow (OIDC Core 3.1), framework-free.

Secure by default, with nothing to switch on:

- every authorization request has a fresh ``state`` and ``nonce`` (32 random bytes each) and PKCE
  S256 (RFC 7636); an assurance level asked for goes in ``acr_values`` and is checked on return;
- the response's ``state`` is compared in constant time and its ``iss`` (RFC 9207) must be the
  issuer: required when the provider advertises ``authorization_response_iss_parameter_supported``;
- the client authenticates as it is registered (OIDC Core 9): ``private_key_jwt`` (RFC 7523, with
  a private JWK), ``client_secret_basic`` or ``client_secret_post`` (with a secret), or ``none`` (a
  public client: PKCE only); another method is refused when the configuration is made;
- ID tokens are validated as OIDC Core 3.1.3.7 says (``hawiya_rp.id_token``), logout tokens as
  Back-Channel Logout 1.0 2.6 says (``hawiya_rp.backchannel``), against the provider's JWKS.

No method logs or puts in an error message a token, a code or a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from hawiya_rp.assurance import meets, to_acr
from hawiya_rp.backchannel import LogoutToken, MemoryReplayCache, ReplayCache, validate_logout_token
from hawiya_rp.discovery import Discovery, check_issuer
from hawiya_rp.errors import (
    AssuranceTooLow,
    AuthorizationError,
    DiscoveryError,
    IdTokenError,
    IssuerMismatch,
    NetworkError,
    StateMismatch,
    TokenEndpointError,
    UserinfoError,
)
from hawiya_rp.http import HttpClient, UrllibClient
from hawiya_rp.id_token import validate_id_token
from hawiya_rp.jose import DEFAULT_ALGORITHMS, PrivateKey, check_algorithms, client_assertion
from hawiya_rp.jwks import MIN_REFETCH, JwksCache
from hawiya_rp.keys import load_private_jwk

__all__ = [
    "AuthorizationRequest",
    "ClientConfig",
    "LogoutToken",
    "MemoryReplayCache",
    "OpenIDClient",
    "ReplayCache",
    "TokenSet",
]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: The token endpoint authentication methods (OIDC Core 9) the library speaks, and what each needs.
AUTH_METHODS: dict[str, str] = {
    "private_key_jwt": "a private JWK",
    "client_secret_basic": "a client secret",
    "client_secret_post": "a client secret",
    "none": "neither a secret nor a key (a public client)",
}
#: Parameters the library sets itself; ``extra`` may not override them.
_RESERVED = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "acr_values",
        "prompt",
        "max_age",
        "login_hint",
    }
)


@dataclass(frozen=True)
class ClientConfig:
    """How this relying party is registered at the provider.

    ``private_jwk`` (a private JWK, see ``python -m hawiya_rp keygen``) makes the client authenticate
    with ``private_key_jwt``; ``client_secret`` with ``client_secret_basic``, or with
    ``client_secret_post`` when ``token_endpoint_auth_method`` says so (it must be the method the
    client is registered with: the provider refuses any other); with neither it is a public client.
    ``leeway`` is the clock skew tolerated, in seconds. ``algorithms`` is the
    allow-list for the provider's signatures (``none`` and HMAC are refused at construction).
    ``trusted_audiences`` are other audiences an ID token may also name (OIDC Core 3.1.3.7 step 3).
    """

    issuer: str
    client_id: str
    redirect_uri: str
    client_secret: str | None = field(default=None, repr=False)
    private_jwk: dict[str, Any] | None = field(default=None, repr=False)
    scope: str = "openid"
    post_logout_redirect_uri: str | None = None
    leeway: int = 60
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    trusted_audiences: tuple[str, ...] = ()
    #: The registered ``token_endpoint_auth_method``; None: the one the credentials imply.
    token_endpoint_auth_method: str | None = None

    def __post_init__(self) -> None:
        check_issuer(self.issuer)
        if not self.client_id:
            raise ValueError("client_id is required")
        if not self.redirect_uri:
            raise ValueError("redirect_uri is required")
        if self.client_secret is not None and self.private_jwk is not None:
            raise ValueError("give either client_secret or private_jwk, not both")
        if self.private_jwk is not None:
            load_private_jwk(self.private_jwk)
        if not 0 <= self.leeway <= 300:
            raise ValueError("leeway must be between 0 and 300 seconds")
        object.__setattr__(self, "algorithms", check_algorithms(self.algorithms))
        object.__setattr__(self, "trusted_audiences", tuple(self.trusted_audiences))
        self._check_auth_method()

    @property
    def auth_method(self) -> str:
        """The token endpoint authentication method this configuration uses."""
        if self.token_endpoint_auth_method is not None:
            return self.token_endpoint_auth_method
        if self.private_jwk is not None:
            return "private_key_jwt"
        if self.client_secret is not None:
            return "client_secret_basic"
        return "none"

    def _check_auth_method(self) -> None:
        """A method the library speaks, with the credential it needs (and no other)."""
        method = self.auth_method
        if method not in AUTH_METHODS:
            raise ValueError(
                f"token_endpoint_auth_method {method!r} is not supported; use one of "
                f"{', '.join(AUTH_METHODS)}"
            )
        has = (
            "a private JWK"
            if self.private_jwk is not None
            else "a client secret"
            if self.client_secret is not None
            else "neither a secret nor a key (a public client)"
        )
        if has != AUTH_METHODS[method]:
            raise ValueError(f"token_endpoint_auth_method {method} needs {AUTH_METHODS[method]}, not {has}")


@dataclass(frozen=True)
class AuthorizationRequest:
    """One authorization request, to keep (server-side) until its response comes back."""

    url: str = field(repr=False)
    state: str = field(repr=False)
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)
    acr: str | None
    created_at: float
    scope: str = "openid"
    max_age: int | None = None
    #: The languages asked for the provider's pages (OIDC Core 3.1.2.1), kept for a step-up.
    ui_locales: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuthorizationRequest:
        """The request ``to_dict`` made."""
        for name in ("url", "state", "nonce", "code_verifier"):
            if not isinstance(data.get(name), str):
                raise ValueError(f"a stored authorization request needs a {name}")
        return cls(
            url=data["url"],
            state=data["state"],
            nonce=data["nonce"],
            code_verifier=data["code_verifier"],
            acr=data.get("acr"),
            created_at=float(data.get("created_at", 0)),
            scope=data.get("scope") or "openid",
            max_age=data.get("max_age"),
            ui_locales=data.get("ui_locales"),
        )


@dataclass(frozen=True)
class TokenSet:
    """The tokens of one sign-in (or refresh) and the validated ID token claims."""

    access_token: str = field(repr=False)
    id_token: str | None = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: int | None
    scope: str | None
    claims: dict[str, Any]

    @property
    def sub(self) -> str:
        """The person's subject identifier at this client."""
        return str(self.claims.get("sub", ""))

    @property
    def sid(self) -> str | None:
        """The provider's session id (for back-channel logout)."""
        sid = self.claims.get("sid")
        return sid if isinstance(sid, str) else None

    @property
    def acr(self) -> str | None:
        """The level of assurance the sign-in reached."""
        acr = self.claims.get("acr")
        return acr if isinstance(acr, str) else None

    @property
    def amr(self) -> list[str]:
        """How the person authenticated (``pwd``, ``otp``, ``hwk``...)."""
        amr = self.claims.get("amr")
        return [str(item) for item in amr] if isinstance(amr, list) else []

    def access_token_expired(self, *, now: float | None = None, margin: float = 30) -> bool:
        """True when the access token has expired, or will within ``margin`` seconds."""
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) + margin >= self.expires_at

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy (it holds the tokens: store it server-side only)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenSet:
        """The token set ``to_dict`` made."""
        if not isinstance(data.get("access_token"), str):
            raise ValueError("a stored token set needs an access_token")
        expires_at = data.get("expires_at")
        return cls(
            access_token=data["access_token"],
            id_token=data.get("id_token"),
            refresh_token=data.get("refresh_token"),
            expires_at=int(expires_at) if expires_at is not None else None,
            scope=data.get("scope"),
            claims=dict(data.get("claims") or {}),
        )


def _random() -> str:
    return secrets.token_urlsafe(32)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _with_openid(scope: str) -> str:
    scopes = scope.split()
    return " ".join(scopes if "openid" in scopes else ["openid", *scopes])


def _add_query(url: str, params: Mapping[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


class OpenIDClient:
    """The relying party's side of the code flow, userinfo, refresh and logout."""

    def __init__(
        self,
        config: ClientConfig,
        http: HttpClient | None = None,
        clock: Callable[[], float] = time.time,
        *,
        replay_cache: ReplayCache | None = None,
        min_refetch: float = MIN_REFETCH,
    ) -> None:
        self.config = config
        self._http: HttpClient = http or UrllibClient()
        self._clock = clock
        self.discovery = Discovery(config.issuer, self._http, clock)
        #: The provider's signing keys.
        self.jwks = JwksCache(
            lambda: self.discovery.endpoint("jwks_uri"), self._http, clock, min_refetch=min_refetch
        )
        self.replay_cache: ReplayCache = replay_cache or MemoryReplayCache(clock)
        self._private_key = PrivateKey(config.private_jwk) if config.private_jwk is not None else None

    # -- discovery --------------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached)."""
        return self.discovery.metadata()

    # -- the code flow ----------------------------------------------------------------------------

    def authorization_request(
        self,
        *,
        scope: str | None = None,
        acr: str | None = None,
        prompt: str | None = None,
        max_age: int | None = None,
        login_hint: str | None = None,
        ui_locales: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> AuthorizationRequest:
        """A new authorization request: keep it server-side, redirect the browser to its ``url``.

        ``acr`` is a level name (``"substantial"``) or an ``acr`` value; the sign-in must reach it.
        ``ui_locales`` (space-separated language tags, preferred first, e.g. ``"ar"``) asks the
        provider to show its pages in the language of the page the person came from.
        """
        reserved = sorted(_RESERVED & set(extra or {}))
        if reserved:
            raise ValueError(f"extra parameters may not set {', '.join(reserved)}")
        wanted_scope = _with_openid(scope or self.config.scope)
        wanted_acr = to_acr(acr) if acr else None
        state, nonce, verifier = _random(), _random(), secrets.token_urlsafe(64)
        params: dict[str, str] = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_uri,
            "scope": wanted_scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": _s256(verifier),
            "code_challenge_method": "S256",
        }
        if wanted_acr:
            params["acr_values"] = wanted_acr
        if prompt:
            params["prompt"] = prompt
        if max_age is not None:
            params["max_age"] = str(int(max_age))
        if login_hint:
            params["login_hint"] = login_hint
        if ui_locales:
            params["ui_locales"] = ui_locales
        params.update(extra or {})
        ui_locales = params.get("ui_locales")
        url = _add_query(self.discovery.endpoint("authorization_endpoint"), params)
        return AuthorizationRequest(
            url=url,
            state=state,
            nonce=nonce,
            code_verifier=verifier,
            acr=wanted_acr,
            created_at=self._clock(),
            scope=wanted_scope,
            max_age=max_age,
            ui_locales=ui_locales or None,
        )

    def complete(self, query: Mapping[str, str], request: AuthorizationRequest) -> TokenSet:
        """Finish the sign-in from the redirect's query parameters and the stored ``request``: check
        the response, redeem the code, validate the ID token and the level reached."""
        self._check_state(query.get("state"), request.state)
        self._check_response_issuer(query.get("iss"))
        error = query.get("error")
        if error:
            raise AuthorizationError(error, query.get("error_description"))
        code = query.get("code")
        if not code:
            raise AuthorizationError(
                "invalid_response", "the response carries neither a code nor an error", reason="missing_code"
            )
        answer = self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.config.redirect_uri,
                "code_verifier": request.code_verifier,
            }
        )
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise IdTokenError("the token response carries no ID token", reason="missing_id_token")
        claims = self.validate_id_token(
            id_token, nonce=request.nonce, access_token=answer["access_token"], max_age=request.max_age
        )
        tokens = self._token_set(answer, claims, id_token)
        if request.acr and not meets(tokens.acr, request.acr):
            # OIDC Core 3.1.3.7 step 12: the acr is what the client asked for, or the sign-in
            # does not count; a new request for the level lets the application step up.
            step_up = self.authorization_request(
                scope=request.scope, acr=request.acr, max_age=request.max_age, ui_locales=request.ui_locales
            )
            raise AssuranceTooLow(required=request.acr, actual=tokens.acr, request=step_up)
        return tokens

    def _check_state(self, received: str | None, expected: str) -> None:
        # RFC 6749 10.12: the response answers the request this browser made.
        if not received or not hmac.compare_digest(received.encode(), expected.encode()):
            raise StateMismatch("the response does not answer this browser's sign-in request")

    def _check_response_issuer(self, received: str | None) -> None:
        # RFC 9207 2.4: iss, when present, is the issuer (simple string comparison); it must be
        # present when the provider says it sends it.
        if received is None:
            if self.metadata().get("authorization_response_iss_parameter_supported") is True:
                raise IssuerMismatch("the response does not say which provider sent it", reason="missing_iss")
            return
        if received != self.config.issuer:
            raise IssuerMismatch(
                "the response comes from another provider (mix-up)", reason="issuer_mismatch"
            )

    # -- tokens -----------------------------------------------------------------------------------

    def validate_id_token(
        self,
        id_token: str,
        *,
        nonce: str | None,
        access_token: str | None = None,
        max_age: int | None = None,
    ) -> dict[str, Any]:
        """The claims of a valid ID token for this client (OIDC Core 3.1.3.7); IdTokenError else."""
        return validate_id_token(
            id_token,
            keys=self.jwks.verification_key,
            algorithms=self.config.algorithms,
            issuer=self.config.issuer,
            client_id=self.config.client_id,
            nonce=nonce,
            now=self._clock(),
            leeway=self.config.leeway,
            access_token=access_token,
            max_age=max_age,
            trusted_audiences=self.config.trusted_audiences,
        )

    def refresh(self, refresh_token: str, *, previous_claims: Mapping[str, Any] | None = None) -> TokenSet:
        """New tokens for a refresh token (RFC 6749 6). An ID token that comes with them is validated
        and must be about the same person (OIDC Core 12.2); without one, ``claims`` are
        ``previous_claims`` and ``id_token`` is None. The refresh token is kept when not rotated."""
        answer = self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})
        claims = dict(previous_claims or {})
        id_token = answer.get("id_token")
        if isinstance(id_token, str):
            fresh = self.validate_id_token(id_token, nonce=None, access_token=answer["access_token"])
            if previous_claims is not None and fresh["sub"] != previous_claims.get("sub"):
                raise IdTokenError("the refreshed ID token is about another person", reason="sub_changed")
            original_nonce = claims.get("nonce")
            if "nonce" in fresh and original_nonce is not None and fresh["nonce"] != original_nonce:
                raise IdTokenError("the refreshed ID token has another nonce", reason="nonce_mismatch")
            claims = fresh
        tokens = self._token_set(answer, claims, id_token if isinstance(id_token, str) else None)
        if tokens.refresh_token is None:
            tokens = TokenSet(
                tokens.access_token,
                tokens.id_token,
                refresh_token,
                tokens.expires_at,
                tokens.scope,
                tokens.claims,
            )
        return tokens

    def _token_set(self, answer: dict[str, Any], claims: dict[str, Any], id_token: str | None) -> TokenSet:
        expires_in = answer.get("expires_in")
        expires_at = (
            int(self._clock()) + int(expires_in)
            if isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
            else None
        )
        refresh_token = answer.get("refresh_token")
        scope = answer.get("scope")
        return TokenSet(
            access_token=answer["access_token"],
            id_token=id_token,
            refresh_token=refresh_token if isinstance(refresh_token, str) else None,
            expires_at=expires_at,
            scope=scope if isinstance(scope, str) else None,
            claims=claims,
        )

    def _token_request(self, data: dict[str, str]) -> dict[str, Any]:
        """POST to the token endpoint with this client's authentication; the successful answer."""
        endpoint = self.discovery.endpoint("token_endpoint")
        # The issuer identifier, as one string, is the audience Hawiya accepts from every client
        # (the token endpoint URL only from clients registered before that rule, until 2027-06-30).
        form, auth = self._authenticate(dict(data), audience=self.config.issuer)
        try:
            response = self._http.post_form(endpoint, form, auth)
        except NetworkError as exc:
            raise TokenEndpointError("temporarily_unavailable", exc.message, reason="network") from None
        body = response.json if isinstance(response.json, dict) else {}
        if response.status != 200:
            error = body.get("error")
            description = body.get("error_description")
            if isinstance(error, str) and error:
                raise TokenEndpointError(error, description if isinstance(description, str) else None)
            raise TokenEndpointError("invalid_response", f"HTTP {response.status}", reason="http_error")
        if not isinstance(body.get("access_token"), str):
            raise TokenEndpointError(
                "invalid_response", "the answer has no access_token", reason="invalid_response"
            )
        token_type = body.get("token_type")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            # RFC 6749 7.1: a client must not use a token whose type it does not understand.
            raise TokenEndpointError(
                "invalid_response", "the token type is not Bearer", reason="unsupported_token_type"
            )
        return body

    def _authenticate(
        self, form: dict[str, str], *, audience: str
    ) -> tuple[dict[str, str], tuple[str, str] | None]:
        """The form and Basic credentials that authenticate this client (OIDC Core 9)."""
        config = self.config
        if config.auth_method == "client_secret_post" and config.client_secret is not None:
            # RFC 6749 2.3.1: the credentials in the request body.
            form["client_id"] = config.client_id
            form["client_secret"] = config.client_secret
            return form, None
        if self._private_key is not None:
            form["client_id"] = config.client_id
            form["client_assertion_type"] = ASSERTION_TYPE
            form["client_assertion"] = client_assertion(
                self._private_key, client_id=config.client_id, audience=audience, now=self._clock()
            )
            return form, None
        if config.client_secret is not None:
            # RFC 6749 2.3.1: both are form-urlencoded before they go into the Basic header.
            return form, (quote(config.client_id, safe=""), quote(config.client_secret, safe=""))
        form["client_id"] = config.client_id
        return form, None

    # -- userinfo ---------------------------------------------------------------------------------

    def userinfo(self, access_token: str, *, expected_sub: str) -> dict[str, Any]:
        """The person's claims from the userinfo endpoint (OIDC Core 5.3); the ``sub`` must be the
        ID token's (5.3.4), else UserinfoError."""
        endpoint = self.discovery.endpoint("userinfo_endpoint")
        try:
            response = self._http.get_json(endpoint, headers={"Authorization": f"Bearer {access_token}"})
        except NetworkError as exc:
            raise UserinfoError(exc.message, reason="network") from None
        if response.status in (401, 403):
            raise UserinfoError("the userinfo endpoint refused the access token", reason="invalid_token")
        if response.status != 200:
            raise UserinfoError(f"the userinfo endpoint answered HTTP {response.status}", reason="http_error")
        if not isinstance(response.json, dict):
            raise UserinfoError(
                "the userinfo answer is not a JSON object (signed or encrypted answers are not supported)",
                reason="unsupported_response",
            )
        if response.json.get("sub") != expected_sub:
            raise UserinfoError("the userinfo answer is about another person", reason="sub_mismatch")
        return response.json

    # -- logout -----------------------------------------------------------------------------------

    def logout_url(
        self,
        *,
        id_token_hint: str | None = None,
        post_logout_redirect_uri: str | None = None,
        state: str | None = None,
        ui_locales: str | None = None,
    ) -> str:
        """Where to send the browser to sign out at the provider (OIDC RP-Initiated Logout 1.0);
        DiscoveryError when the provider has no ``end_session_endpoint``."""
        endpoint = self.metadata().get("end_session_endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise DiscoveryError(
                f"the provider {self.config.issuer} advertises no end_session_endpoint: it does not offer "
                "RP-initiated logout, so only the local session can be ended",
                reason="no_end_session_endpoint",
            )
        params = {"client_id": self.config.client_id}
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        redirect = post_logout_redirect_uri or self.config.post_logout_redirect_uri
        if redirect:
            params["post_logout_redirect_uri"] = redirect
        if state:
            params["state"] = state
        if ui_locales:
            params["ui_locales"] = ui_locales
        return _add_query(endpoint, params)

    def validate_logout_token(self, token: str) -> LogoutToken:
        """The subject and session a back-channel logout token ends (Back-Channel Logout 1.0 2.6);
        LogoutTokenError when it is not valid or was already received."""
        return validate_logout_token(
            token,
            keys=self.jwks.verification_key,
            algorithms=self.config.algorithms,
            issuer=self.config.issuer,
            client_id=self.config.client_id,
            now=self._clock(),
            leeway=self.config.leeway,
            replay=self.replay_cache,
        )
