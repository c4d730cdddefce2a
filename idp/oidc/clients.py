"""Registered clients (agencies): registration rules, secrets, and the view Authlib needs.

Client secrets are high-entropy random values, shown once, stored as SHA-256 and compared in
constant time. Redirect URIs are matched exactly, as strings (RFC 9700 section 4.1.3).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin

from idp.accounts.identity import PROOFING_LEVELS
from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.clock import Clock
from idp.errors import InvalidInput, NotFound
from idp.inbound import MAX_IDENTIFIER, is_identifier
from idp.outbound import Outbound, OutboundError
from idp.settings import ACR_VALUES, LOCAL_HOSTS
from idp.storage.generation import Cached, Generation
from idp.storage.models import Client
from idp.storage.repositories.clients import ClientRepository

log = logging.getLogger("idp.oidc.clients")

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
#: What the token and revocation endpoints accept; introspection takes confidential clients only.
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
ID_TOKEN_ALGS = ("ES256", "RS256", "PS256", "EdDSA")
#: OpenID Connect scopes (OIDC Core 5.4, 11). Agencies may also register API scopes of their own
#: (``records:read``) for agency-to-agency calls; those carry no personal claims.
SCOPES = (
    "openid",
    "profile",
    "email",
    "phone",
    "address",
    "identity",
    "business",
    "staff",
    "offline_access",
)
DEFAULT_SCOPE = "openid profile email phone address"
_API_SCOPE = re.compile(r"[a-z][a-z0-9_.-]*:[a-z0-9_.:-]+")
#: RFC 6749 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), tokens separated by one space.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def is_known_scope(value: str) -> bool:
    """True for a scope Hawiya understands: an OpenID Connect scope it serves, or an API scope
    (``records:read``) an agency may register. Anything else is ignored where it is asked for
    (OIDC Core 3.1.2.1: scope values the server does not understand are ignored)."""
    return value in SCOPES or _API_SCOPE.fullmatch(value) is not None


def scope_problem(client: RegisteredClient, scope: str | None) -> str | None:
    """Why ``scope`` may not be asked for by ``client`` (an ``invalid_scope`` description), or None:
    a value outside RFC 6749 3.3's syntax, or a scope Hawiya knows that the client did not register
    (asking for it is an error, not something dropped in silence). Unknown values pass."""
    registered = set(client.scope.split())
    for value in (scope or "").split(" "):
        if not value:
            continue  # runs of spaces: tolerated, as most servers do
        if _SCOPE_TOKEN.fullmatch(value) is None:
            return "the scope holds a character RFC 6749 3.3 does not allow in a scope value"
        if is_known_scope(value) and value not in registered:
            return f"the client is not registered for the scope {value}"
    return None


@dataclass(frozen=True)
class RegisteredClient(ClientMixin):
    """A client as the protocol sees it; implements Authlib's ClientMixin."""

    client_id: str
    name: str
    name_ar: str | None
    agency: str | None
    status: str
    token_endpoint_auth_method: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    response_types: tuple[str, ...]
    scope: str
    id_token_signed_response_alg: str
    subject_type: str
    sector_identifier: str
    min_acr: str | None
    secret_hash: str | None = None
    #: The secret a rotation replaced, accepted until ``previous_secret_expires_at`` (``active``
    #: drops it once that passed).
    previous_secret_hash: str | None = None
    previous_secret_expires_at: datetime | None = None
    #: The least proofing level of the people this client may be given (None: any).
    min_proofing: str | None = None
    #: A government service staff marked first-party: consent implied (still recorded).
    first_party: bool = False
    resources: tuple[str, ...] = ()
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    #: Where the browser may be sent after RP-initiated logout (RP-Initiated Logout 1.0 3.1),
    #: matched exactly, like redirect URIs.
    post_logout_redirect_uris: tuple[str, ...] = ()
    #: Where logout tokens are POSTed when a session the client holds ends (Back-Channel Logout
    #: 1.0 2.2); None: the client is not told.
    backchannel_logout_uri: str | None = None
    #: Registered before the issuer became the only assertion audience: its assertions may still
    #: name the token endpoint URL (deprecated, docs/clients.md).
    legacy_assertion_audience: bool = False
    #: A confidential client excused from PKCE (docs/clients.md); each use audited.
    pkce_exempt: bool = False

    @property
    def backchannel_logout_session_required(self) -> bool:
        """Back-Channel Logout 1.0 2.2: whether logout tokens must carry ``sid``. Hawiya's always
        do (every session has one), so a client with a back-channel URI is served as requiring it."""
        return self.backchannel_logout_uri is not None

    @property
    def is_public(self) -> bool:
        """True for clients that cannot keep a secret (they must use PKCE)."""
        return self.token_endpoint_auth_method == "none"

    # -- Authlib ClientMixin ------------------------------------------------------------------

    def get_client_id(self) -> str:
        """The client identifier."""
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        """None: OIDC Core 3.1.2.1 requires redirect_uri in every request, so none is implied."""
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        """The requested scopes this client may have, in request order; unknown ones dropped."""
        allowed = set(self.scope.split())
        requested = (scope or "").split()
        return " ".join(dict.fromkeys(s for s in requested if s in allowed))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact string match against a registered URI (no prefix, case or suffix tolerance)."""
        return redirect_uri in self.redirect_uris

    def check_post_logout_redirect_uri(self, uri: str) -> bool:
        """Exact string match against a registered post-logout redirect URI (RP-Initiated Logout
        1.0 3: no redirection to anything else)."""
        return uri in self.post_logout_redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        """Constant-time comparison of the secret's SHA-256 with the stored one, and with the
        previous one during a rotation's overlap (both compared, whichever matches)."""
        typed = _hash_secret(client_secret)
        current = hmac.compare_digest(typed, self.secret_hash or "")
        previous = hmac.compare_digest(typed, self.previous_secret_hash or "")
        return bool(self.secret_hash and current) or bool(self.previous_secret_hash and previous)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Only the registered method authenticates this client."""
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        """Registered response types only."""
        return response_type in self.response_types

    def check_grant_type(self, grant_type: str) -> bool:
        """Registered grant types only."""
        return grant_type in self.grant_types


@dataclass(frozen=True)
class NewClient:
    """A freshly created client and, once, its secret."""

    client: RegisteredClient
    client_secret: str | None


#: How long a rotated-out secret stays valid by default, and at most.
SECRET_OVERLAP = timedelta(days=7)
MAX_SECRET_OVERLAP = timedelta(days=90)


@dataclass(frozen=True)
class RotatedSecret:
    """A new client secret (shown once) and until when the one it replaced still works."""

    client_secret: str
    previous_valid_until: datetime | None


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _registered(row: Client) -> RegisteredClient:
    return RegisteredClient(
        client_id=row.client_id,
        name=row.name,
        name_ar=row.name_ar,
        agency=row.agency,
        status=row.status,
        token_endpoint_auth_method=row.token_endpoint_auth_method,
        redirect_uris=tuple(row.redirect_uris),
        grant_types=tuple(row.grant_types),
        response_types=tuple(row.response_types),
        scope=row.scope,
        id_token_signed_response_alg=row.id_token_signed_response_alg,
        subject_type=row.subject_type,
        sector_identifier=row.sector_identifier or _sector_of(row.redirect_uris),
        min_acr=row.min_acr,
        min_proofing=row.min_proofing,
        first_party=bool(row.first_party),
        secret_hash=row.secret_hash,
        previous_secret_hash=row.previous_secret_hash,
        previous_secret_expires_at=row.previous_secret_expires_at,
        resources=tuple(row.resources or ()),
        jwks=row.jwks,
        jwks_uri=row.jwks_uri,
        post_logout_redirect_uris=tuple(row.post_logout_redirect_uris or ()),
        backchannel_logout_uri=row.backchannel_logout_uri,
        legacy_assertion_audience=bool(row.legacy_assertion_audience),
        pkce_exempt=bool(row.pkce_exempt),
    )


def _sector_of(redirect_uris: Sequence[str]) -> str:
    hosts = {urlsplit(uri).hostname or "" for uri in redirect_uris}
    return sorted(hosts)[0] if hosts else ""


def _check_https_or_loopback(uri: str, what: str) -> None:
    """https, or http on a loopback host (development and native apps, RFC 8252 7.3)."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
    except ValueError:
        raise InvalidInput(f"{what} {uri!r} is not a URL") from None
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host in LOCAL_HOSTS:
        return
    raise InvalidInput(f"{what} {uri!r} must be https (or http on localhost)")


def _origin(uri: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of ``uri``, the default port spelled out; None when it is no URL."""
    try:
        parts = urlsplit(uri)
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    except ValueError:
        return None
    return parts.scheme.lower(), (parts.hostname or "").lower().rstrip("."), port


def serves_the_idp(uri: str, issuer: str) -> bool:
    """True when ``uri`` is the issuer or any of its endpoints (anything on the issuer's origin).
    Such a URL is never a client's resource: tokens for the IdP itself (userinfo) have the issuer as
    ``aud``, so registering it would let the client introspect every other client's tokens."""
    origin = _origin(uri)
    return origin is not None and origin == _origin(issuer)


def _new_client_id() -> str:
    """A random client id that never starts with ``-`` (it would read as an option on a CLI)."""
    while (candidate := secrets.token_urlsafe(18)).startswith("-"):
        pass
    return candidate


def fetch_sector_uris(outbound: Outbound, url: str) -> list[str]:
    """The redirect URIs a sector identifier URI lists (a JSON array of strings, OIDC Core 8.1),
    fetched under the agency policy. Why a fetch failed goes to the log only: whoever registers a
    client learns nothing of what answered where (that would make registration a port scanner)."""
    try:
        data = outbound.get_json(url)
    except OutboundError as exc:
        log.warning("sector identifier URI %s could not be read (%s: %s)", url, exc.reason, exc)
        raise InvalidInput("the sector identifier URI could not be read") from None
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise InvalidInput("the sector identifier URI must return a JSON array of redirect URIs")
    return list(data)


def _no_fetches(url: str) -> list[str]:
    raise InvalidInput("the sector identifier URI could not be read")


def check_redirect_uri(uri: str) -> None:
    """Registration rules for a redirect URI (OIDC Registration 2, RFC 9700 4.1)."""
    if "#" in uri:
        raise InvalidInput("a redirect URI must not contain a fragment")
    _check_https_or_loopback(uri, "redirect URI")


def check_post_logout_redirect_uri(uri: str) -> None:
    """Registration rules for a post-logout redirect URI (RP-Initiated Logout 1.0 3.1): those of
    redirect URIs."""
    if "#" in uri:
        raise InvalidInput("a post-logout redirect URI must not contain a fragment")
    _check_https_or_loopback(uri, "post-logout redirect URI")


def check_backchannel_logout_uri(uri: str) -> None:
    """Registration rules for a back-channel logout URI (Back-Channel Logout 1.0 2.2): absolute,
    https (or http on a loopback host), no fragment."""
    if "#" in uri:
        raise InvalidInput("a back-channel logout URI must not contain a fragment")
    _check_https_or_loopback(uri, "back-channel logout URI")


class ClientService:
    """Register and manage clients."""

    def __init__(
        self,
        repository: ClientRepository,
        clock: Clock,
        audit: AuditLog,
        *,
        provision_alg: Callable[[str], object] = lambda alg: None,
        fetch_sector_uris: Callable[[str], list[str]] | None = None,
        generation: Generation | None = None,
        issuer: str,
    ) -> None:
        self._repository = repository
        self._issuer = issuer
        #: ``active`` (asked on every token request), until a change below moves the generation (at
        #: most a second in other processes). None: read the database every time.
        self._active: Cached[RegisteredClient | None] | None = Cached(generation) if generation else None
        #: Reads a sector identifier URI (the registry's goes through the outbound boundary).
        self._fetch_sector_uris = fetch_sector_uris or _no_fetches
        self._clock = clock
        self._audit = audit
        #: Makes sure a current key exists for an ID-token algorithm a client pins.
        self._provision_alg = provision_alg

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    def create(
        self,
        *,
        name: str,
        redirect_uris: Sequence[str],
        auth_method: str = "client_secret_basic",
        grant_types: Sequence[str] = ("authorization_code",),
        scope: str = DEFAULT_SCOPE,
        resources: Sequence[str] = (),
        jwks: dict[str, Any] | None = None,
        jwks_uri: str | None = None,
        id_token_alg: str = "ES256",
        subject_type: str = "pairwise",
        sector_identifier: str | None = None,
        agency: str | None = None,
        name_ar: str | None = None,
        min_acr: str | None = None,
        min_proofing: str | None = None,
        client_id: str | None = None,
        first_party: bool = False,
        sector_identifier_uri: str | None = None,
        post_logout_redirect_uris: Sequence[str] = (),
        backchannel_logout_uri: str | None = None,
        pkce_exempt: bool = False,
        actor: str | None = None,
    ) -> NewClient:
        """Validate and register a client; the secret (if any) is returned once and never again."""
        name = name.strip()
        if not name:
            raise InvalidInput("a client needs a name")
        if client_id is not None and not is_identifier(client_id):
            raise InvalidInput(f"a client id is 1 to {MAX_IDENTIFIER} visible ASCII characters")
        if auth_method not in AUTH_METHODS:
            raise InvalidInput(f"auth method must be one of {', '.join(AUTH_METHODS)}")
        unknown = [g for g in grant_types if g not in GRANT_TYPES]
        if unknown or not grant_types:
            raise InvalidInput(f"grant types must be among {', '.join(GRANT_TYPES)}")
        if "authorization_code" in grant_types and not redirect_uris:
            raise InvalidInput("a client using authorization_code needs a redirect URI")
        if "refresh_token" in grant_types and "authorization_code" not in grant_types:
            raise InvalidInput("refresh_token is only issued with authorization_code")
        if "client_credentials" in grant_types and auth_method == "none":
            raise InvalidInput("client_credentials needs a confidential client (it acts as itself)")
        for uri in redirect_uris:
            check_redirect_uri(uri)
        if (post_logout_redirect_uris or backchannel_logout_uri) and "authorization_code" not in grant_types:
            raise InvalidInput("logout URIs are for clients that sign people in (authorization_code)")
        for uri in post_logout_redirect_uris:
            check_post_logout_redirect_uri(uri)
        if backchannel_logout_uri is not None:
            check_backchannel_logout_uri(backchannel_logout_uri)
        for resource in resources:
            _check_https_or_loopback(resource, "resource")
            if "#" in resource:
                raise InvalidInput("a resource indicator must not contain a fragment (RFC 8707 2)")
            if serves_the_idp(resource, self._issuer):
                raise InvalidInput(
                    f"resource {resource!r} is the identity provider itself, not an agency's API"
                )
        scopes = scope.split()
        bad_scopes = [s for s in scopes if s not in SCOPES and not _API_SCOPE.fullmatch(s)]
        if bad_scopes:
            raise InvalidInput(
                f"unknown scope {bad_scopes[0]!r}; use {', '.join(SCOPES)} or an API scope like records:read"
            )
        if id_token_alg not in ID_TOKEN_ALGS:
            raise InvalidInput(f"ID token alg must be one of {', '.join(ID_TOKEN_ALGS)}")
        if subject_type not in ("pairwise", "public"):
            raise InvalidInput("subject type must be pairwise or public")
        if min_acr is not None and min_acr not in ACR_VALUES:
            raise InvalidInput(f"minimum acr must be one of {', '.join(ACR_VALUES)}")
        if min_proofing is not None and min_proofing not in PROOFING_LEVELS:
            raise InvalidInput(f"minimum proofing level must be one of {', '.join(PROOFING_LEVELS)}")
        if auth_method == "private_key_jwt":
            if bool(jwks) == bool(jwks_uri):
                raise InvalidInput("private_key_jwt needs exactly one of --jwks or --jwks-uri")
            if jwks is not None and not isinstance(jwks.get("keys"), list):
                raise InvalidInput("the JWKS must be a JSON object with a 'keys' list")
            if jwks_uri is not None:
                _check_https_or_loopback(jwks_uri, "the JWKS URI")
        if pkce_exempt:
            _check_pkce_exemption(auth_method, grant_types)
        if sector_identifier_uri is not None:
            # OIDC Core 8.1: the URI lists the sector's redirect URIs; its host names the sector.
            _check_https_or_loopback(sector_identifier_uri, "the sector identifier URI")
            listed = self._fetch_sector_uris(sector_identifier_uri)
            unlisted = [uri for uri in redirect_uris if uri not in listed]
            if unlisted:
                raise InvalidInput(f"redirect URI {unlisted[0]!r} is not listed at the sector identifier URI")
            sector_identifier = urlsplit(sector_identifier_uri).hostname
        hosts = {urlsplit(uri).hostname for uri in redirect_uris}
        if subject_type == "pairwise" and not sector_identifier and len(hosts) > 1:
            raise InvalidInput(
                "redirect URIs on several hosts need --sector (OIDC Core 8.1) for pairwise subjects"
            )
        self._provision_alg(id_token_alg)
        secret = None if auth_method in ("none", "private_key_jwt") else secrets.token_urlsafe(32)
        row = self._repository.add(
            Client(
                client_id=client_id or _new_client_id(),
                name=name,
                name_ar=name_ar,
                agency=agency,
                status="active",
                secret_hash=_hash_secret(secret) if secret else None,
                token_endpoint_auth_method=auth_method,
                redirect_uris=list(redirect_uris),
                post_logout_redirect_uris=list(dict.fromkeys(post_logout_redirect_uris)),
                backchannel_logout_uri=backchannel_logout_uri,
                grant_types=list(grant_types),
                response_types=["code"] if "authorization_code" in grant_types else [],
                scope=" ".join(dict.fromkeys(scopes)),
                resources=list(dict.fromkeys(resources)),
                jwks=jwks,
                jwks_uri=jwks_uri,
                id_token_signed_response_alg=id_token_alg,
                subject_type=subject_type,
                sector_identifier=sector_identifier,
                min_acr=min_acr,
                min_proofing=min_proofing,
                first_party=first_party,
                sector_identifier_uri=sector_identifier_uri,
                pkce_exempt=pkce_exempt,
                created_at=self._now(),
            )
        )
        self._changed()
        self._audit.record(
            AuditEvent.CLIENT_CREATED,
            actor=actor,
            client_id=row.client_id,
            detail={"name": name, "auth_method": auth_method, "pkce_exempt": pkce_exempt},
        )
        return NewClient(_registered(row), secret)

    def active(self, client_id: str) -> RegisteredClient | None:
        """The client if it exists and is active (what the protocol may serve); a client id no
        client could have (``is_identifier``) names none, without a database read."""
        if not is_identifier(client_id):
            return None
        if self._active is None:
            client = self._load_active(client_id)
        else:
            client = self._active.get(client_id, lambda: self._load_active(client_id))
        until = client.previous_secret_expires_at if client is not None else None
        if client is not None and until is not None and until <= self._now():
            # The overlap is over (the cached view may be older than that).
            return replace(client, previous_secret_hash=None, previous_secret_expires_at=None)
        return client

    def _load_active(self, client_id: str) -> RegisteredClient | None:
        row = self._repository.get(client_id)
        if row is None or row.status != "active":
            return None
        return _registered(row)

    def _changed(self) -> None:
        """A client was added or changed: every process forgets the clients it knew."""
        if self._active is not None:
            self._active.changed()

    def show(self, client_id: str) -> RegisteredClient:
        """The client whatever its status; NotFound otherwise."""
        row = self._repository.get(client_id) if is_identifier(client_id) else None
        if row is None:
            raise NotFound(f"no client {client_id!r}")
        return _registered(row)

    def list(self) -> list[RegisteredClient]:
        """Every client."""
        return [_registered(row) for row in self._repository.list()]

    def disable(self, client_id: str, *, actor: str | None = None) -> RegisteredClient:
        """Stop serving a client (its tokens stop working at userinfo at once)."""
        row = self._repository.update(client_id, status="disabled") if is_identifier(client_id) else None
        self._changed()
        if row is None:
            raise NotFound(f"no client {client_id!r}")
        self._audit.record(AuditEvent.CLIENT_DISABLED, actor=actor, client_id=client_id)
        return _registered(row)

    def set_first_party(
        self, client_id: str, first_party: bool, *, actor: str | None = None
    ) -> RegisteredClient:
        """Mark a client first-party (consent implied) or not; audited."""
        known = is_identifier(client_id)
        row = self._repository.update(client_id, first_party=first_party) if known else None
        self._changed()
        if row is None:
            raise NotFound(f"no client {client_id!r}")
        self._audit.record(
            AuditEvent.CLIENT_UPDATED, actor=actor, client_id=client_id, detail={"first_party": first_party}
        )
        return _registered(row)

    def update(
        self,
        client_id: str,
        *,
        pkce_exempt: bool | None = None,
        legacy_assertion_audience: bool | None = None,
        actor: str | None = None,
    ) -> RegisteredClient:
        """Grant or withdraw a client's PKCE exemption, or clear its legacy assertion audience (it
        can only be cleared: clients registered from now on name the issuer); audited. None leaves
        a setting as it is."""
        current = self.show(client_id)
        changes: dict[str, bool] = {}
        if pkce_exempt is not None:
            if pkce_exempt:
                _check_pkce_exemption(current.token_endpoint_auth_method, current.grant_types)
            changes["pkce_exempt"] = pkce_exempt
        if legacy_assertion_audience is not None:
            if legacy_assertion_audience:
                raise InvalidInput(
                    "the token endpoint audience can only be withdrawn; clients name the issuer"
                )
            changes["legacy_assertion_audience"] = False
        if not changes:
            return current
        row = self._repository.update(client_id, **changes)
        self._changed()
        if row is None:
            raise NotFound(f"no client {client_id!r}")
        self._audit.record(AuditEvent.CLIENT_UPDATED, actor=actor, client_id=client_id, detail=changes)
        return _registered(row)

    def rotate_secret(
        self, client_id: str, *, overlap: timedelta = SECRET_OVERLAP, actor: str | None = None
    ) -> RotatedSecret:
        """Give a confidential client a new secret, returned once. The old one stays valid for
        ``overlap`` (the agency deploys the new one meanwhile); ``timedelta(0)`` cuts it off now
        (a leaked secret). A secret still in its overlap from an earlier rotation stops at once:
        at most two are ever valid."""
        current = self.show(client_id)
        if current.token_endpoint_auth_method not in ("client_secret_basic", "client_secret_post"):
            raise InvalidInput(f"client {client_id!r} does not authenticate with a secret")
        if not timedelta(0) <= overlap <= MAX_SECRET_OVERLAP:
            raise InvalidInput(f"the overlap must be between 0 and {MAX_SECRET_OVERLAP.days} days")
        secret = secrets.token_urlsafe(32)
        now = self._now()
        keep = bool(overlap) and current.secret_hash is not None
        self._repository.update(
            client_id,
            secret_hash=_hash_secret(secret),
            secret_rotated_at=now,
            previous_secret_hash=current.secret_hash if keep else None,
            previous_secret_expires_at=now + overlap if keep else None,
        )
        self._changed()
        until = now + overlap if keep else None
        self._audit.record(
            AuditEvent.CLIENT_SECRET_ROTATED,
            actor=actor,
            client_id=client_id,
            detail={"previous_valid_until": until.isoformat() if until else None},
        )
        return RotatedSecret(secret, until)


def _check_pkce_exemption(auth_method: str, grant_types: Sequence[str]) -> None:
    """Only a confidential client that signs people in may be excused from PKCE (RFC 9700 2.1.1:
    public clients always need it)."""
    if auth_method == "none":
        raise InvalidInput("a public client cannot be excused from PKCE")
    if "authorization_code" not in grant_types:
        raise InvalidInput("a PKCE exemption is for clients using authorization_code")
