"""The token endpoint's busiest request, answered before Flask: client_credentials with HTTP Basic.

Agencies' services call ``POST /token`` with ``grant_type=client_credentials`` far more often than
people sign in. Through Flask and Authlib such a request cost about 0.6 ms of CPU beside the 50 µs
of its signature; this WSGI middleware answers the ordinary, valid case directly and hands
**everything else** to the full path unchanged:

- it only *answers* a request it has fully validated with the same rules as the full path (the
  client from ``ClientService.active``, its secret compared in constant time, its auth method and
  grant types, ``client_credentials_scope``, the RFC 8707 resource) and issues the same response
  (``client_credentials_response``) and audit event;
- anything unusual or wrong (another grant, another authentication method, a wrong secret, an
  unknown parameter, a repeated one, a body that is not plain form encoding, a scope or resource
  the client may not have, a signing outage) goes to Flask and Authlib, which answer it with the
  RFC's error and audit it as before. No error is ever produced here.

A differential test (tests/oidc/test_lean_token.py) checks that the two paths agree.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

from authlib.oauth2.rfc6749.errors import InvalidScopeError

from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.errors import HawiyaError
from idp.http.headers import security_headers
from idp.oidc.clients import ClientService, RegisteredClient
from idp.oidc.server import client_credentials_response, client_credentials_scope
from idp.oidc.tokens import TokenIssuer

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Services(Protocol):
    """What the lean path uses of the registry."""

    @property
    def clients(self) -> ClientService: ...

    @property
    def tokens(self) -> TokenIssuer: ...

    @property
    def audit(self) -> AuditLog: ...


#: A client_credentials request is a few dozen bytes; anything longer takes the full path.
MAX_BODY = 2048
_PARAMETERS = frozenset({"grant_type", "scope", "resource"})


class LeanClientCredentials:
    """WSGI middleware: answer valid client_credentials requests, pass everything else on."""

    def __init__(self, app: WSGIApp, services: Services, *, hsts: bool) -> None:
        self._app = app
        #: Read at each request, not here: the registry builds its services on first use.
        self._services = services
        self._headers = [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
            ("Pragma", "no-cache"),
            *security_headers(hsts=hsts),
        ]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/token" and environ.get("REQUEST_METHOD") == "POST":
            body = self._answer(environ)
            if body is not None:
                start_response("200 OK", [*self._headers, ("Content-Length", str(len(body)))])
                return [body]
        return self._app(environ, start_response)

    def _answer(self, environ: dict[str, Any]) -> bytes | None:
        """The response body, or None after putting the request body back for the full path."""
        if environ.get("QUERY_STRING") or environ.get("CONTENT_TYPE") != "application/x-www-form-urlencoded":
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None
        if not 0 < length <= MAX_BODY:
            return None
        raw = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(raw)  # whatever happens next, the full path can read it
        try:
            return self._issue(raw, environ.get("HTTP_AUTHORIZATION", ""))
        except HawiyaError:  # a signing outage, a store away: the full path answers it properly
            return None
        except Exception:
            log.exception("the lean token path failed; the full path answers")
            return None

    def _issue(self, raw: bytes, authorization: str) -> bytes | None:
        try:
            pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            return None
        form = dict(pairs)
        if len(form) != len(pairs) or not form.keys() <= _PARAMETERS:
            return None
        if form.get("grant_type") != "client_credentials":
            return None
        client = self._client(authorization)
        if client is None:
            return None
        try:
            scope = client_credentials_scope(client, form.get("scope"))
        except InvalidScopeError:  # the full path answers invalid_scope
            return None
        resource = form.get("resource") or None
        if resource is not None and resource not in client.resources:
            return None
        response = client_credentials_response(self._services.tokens, client, scope=scope, resource=resource)
        self._services.audit.record(
            AuditEvent.TOKENS_ISSUED,
            client_id=client.client_id,
            detail={"grant_type": "client_credentials", "scope": scope},
        )
        return json.dumps(response).encode()

    def _client(self, authorization: str) -> RegisteredClient | None:
        """The active client_secret_basic client the Basic credentials prove, allowed the grant."""
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "basic" or not credentials:
            return None
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, colon, secret = decoded.partition(":")
        if not colon:
            return None
        if "%" in decoded:  # RFC 6749 2.3.1 form-encodes both parts (as Authlib decodes them)
            client_id, secret = unquote(client_id), unquote(secret)
        if not client_id or not secret:
            return None
        client = self._services.clients.active(client_id)
        if (
            client is None
            or client.token_endpoint_auth_method != "client_secret_basic"  # noqa: S105 - a method name
            or not client.check_grant_type("client_credentials")
            or not client.check_client_secret(secret)
        ):
            return None
        return client
