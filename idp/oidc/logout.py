"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), free of HTTP.

An agency sends the person's browser to the ``end_session_endpoint`` (``/logout``) with, ideally,
the ``id_token_hint`` Hawiya gave it. This module decides what such a request may do:

- who asks: the client the hint was issued to, or the one ``client_id`` names; when both are given
  they must be the same (section 2);
- whether the person is signed out at once: only when the hint is an ID token Hawiya issued in this
  browser's very session. Section 2: the OP MUST ask the End-User when no hint was given or it does
  not belong to the current session; so a link on any page cannot sign anyone out;
- where the browser goes afterwards: the ``post_logout_redirect_uri`` only when it exactly matches
  one the client registered (section 3), with ``state`` added (section 2); never when a hint was
  sent that Hawiya did not issue (the certification suite's ``modified-id-token-hint``: an
  ``alg: none`` hint must not buy a redirect). Otherwise the person sees Hawiya's own page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from authlib.common.urls import add_params_to_uri

from idp.keys.signer import InvalidToken
from idp.oidc.clients import RegisteredClient
from idp.sessions.service import SsoSession

#: The request parameters of section 2 that Hawiya reads; ``logout_hint`` is accepted and unused
#: (one session per browser: there is no account to pick).
PARAMETERS = ("id_token_hint", "logout_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales")
#: Longer values are refused before any look-up (an ID token is a few kilobytes).
MAX_HINT = 16 * 1024
MAX_VALUE = 2048


class InvalidLogoutRequest(Exception):
    """A logout request that cannot be honoured as sent: shown on a page, never redirected."""

    #: The wire error code (the request is malformed or inconsistent).
    error = "invalid_request"


class ClientLookup(Protocol):
    """What logout needs of the client registry."""

    def active(self, client_id: str) -> RegisteredClient | None:
        """The client if it exists and is active."""
        ...


class HintVerifier(Protocol):
    """What logout needs of the token verifier (idp.keys.signer.TokenVerifier)."""

    def verify(self, token: str, *, typ: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Check the signature and ``typ``; (header, claims); InvalidToken otherwise."""
        ...


class SubjectLookup(Protocol):
    """What logout needs of the subject service (pairwise ``sub`` values)."""

    def subject(self, client: RegisteredClient, account_id: str) -> str:
        """The ``sub`` of ``account_id`` at ``client``."""
        ...


@dataclass(frozen=True)
class LogoutRequest:
    """The parameters of one logout request (section 2); an empty value counts as absent."""

    id_token_hint: str | None = None
    client_id: str | None = None
    post_logout_redirect_uri: str | None = None
    state: str | None = None
    ui_locales: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Sequence[str]]) -> LogoutRequest:
        """Read the request; InvalidLogoutRequest when a parameter is repeated or oversized."""
        values: dict[str, str | None] = {}
        for name in PARAMETERS:
            given = [value for value in params.get(name, ()) if value]
            if len(given) > 1:
                raise InvalidLogoutRequest(f"{name} is repeated")
            value = given[0] if given else None
            limit = MAX_HINT if name == "id_token_hint" else MAX_VALUE
            if value is not None and len(value) > limit:
                raise InvalidLogoutRequest(f"{name} is too long")
            values[name] = value
        return cls(
            id_token_hint=values["id_token_hint"],
            client_id=values["client_id"],
            post_logout_redirect_uri=values["post_logout_redirect_uri"],
            state=values["state"],
            ui_locales=values["ui_locales"],
        )

    def as_params(self) -> dict[str, str]:
        """The parameters given, to carry the request through the confirmation form."""
        fields = {
            "id_token_hint": self.id_token_hint,
            "client_id": self.client_id,
            "post_logout_redirect_uri": self.post_logout_redirect_uri,
            "state": self.state,
            "ui_locales": self.ui_locales,
        }
        return {name: value for name, value in fields.items() if value is not None}


@dataclass(frozen=True)
class IdTokenHint:
    """What a verified ``id_token_hint`` says: to whom it was issued, about whom, in which session."""

    client_id: str
    sub: str
    sid: str | None


#: How the hint fared (audited): none sent, one of Hawiya's ID tokens, or anything else.
HINT_ABSENT, HINT_VALID, HINT_INVALID = "absent", "valid", "invalid"


@dataclass(frozen=True)
class CheckedLogout:
    """A logout request, checked: its client, its hint, and where the browser may go after it."""

    request: LogoutRequest
    #: The active client that asks (by the hint or by ``client_id``); None when unknown.
    client: RegisteredClient | None
    hint: IdTokenHint | None
    hint_status: str
    #: The post-logout redirection (the registered URI with ``state``), or None: Hawiya's own page.
    redirect_to: str | None

    @property
    def redirect_refused(self) -> bool:
        """True when a ``post_logout_redirect_uri`` was sent but will not be used."""
        return self.request.post_logout_redirect_uri is not None and self.redirect_to is None


class RpInitiatedLogout:
    """Check logout requests against the registered clients and the ID tokens Hawiya issued."""

    def __init__(
        self, *, clients: ClientLookup, verifier: HintVerifier, subjects: SubjectLookup, issuer: str
    ) -> None:
        self._clients = clients
        self._verifier = verifier
        self._subjects = subjects
        self._issuer = issuer

    def check(self, request: LogoutRequest) -> CheckedLogout:
        """Who asks, with what hint, and where the browser may go afterwards; InvalidLogoutRequest
        when ``client_id`` names no active client or another client than the hint's."""
        named = None
        if request.client_id is not None:
            named = self._active(request.client_id)
            if named is None:
                raise InvalidLogoutRequest("client_id is not a client of Hawiya")
        hint = self._hint(request.id_token_hint) if request.id_token_hint is not None else None
        if request.id_token_hint is None:
            status = HINT_ABSENT
        else:
            status = HINT_VALID if hint is not None else HINT_INVALID
        client = named
        if hint is not None:
            # Section 2: with both, the client_id MUST be the one the ID token was issued to.
            if named is not None and named.client_id != hint.client_id:
                raise InvalidLogoutRequest("client_id is not the client the id_token_hint was issued to")
            client = self._active(hint.client_id)
        redirect_to = None
        uri = request.post_logout_redirect_uri
        # Section 3: redirect only to a registered URI, exactly; and never on a hint that is not ours.
        if (
            uri is not None
            and client is not None
            and status != HINT_INVALID
            and client.check_post_logout_redirect_uri(uri)
        ):
            redirect_to = add_params_to_uri(uri, [("state", request.state)]) if request.state else uri
        return CheckedLogout(request, client, hint, status, redirect_to)

    def names_session(self, checked: CheckedLogout, session: SsoSession) -> bool:
        """True when the hint was issued in ``session`` (its ``sid``; its ``sub`` at the client when
        it carries no ``sid``): then the person is signed out without being asked. Otherwise the
        person MUST be asked (section 2)."""
        hint = checked.hint
        if hint is None:
            return False
        if hint.sid is not None:
            return hint.sid == session.sid
        client = checked.client
        return client is not None and hint.sub == self._subjects.subject(client, session.account_id)

    def _active(self, client_id: str) -> RegisteredClient | None:
        return self._clients.active(client_id)

    def _hint(self, token: str) -> IdTokenHint | None:
        """The hint, if it is an ID token Hawiya issued (expired is fine, section 2); else None."""
        try:
            _header, claims = self._verifier.verify(token, typ="jwt")
        except InvalidToken:
            return None
        if claims.get("iss") != self._issuer or "events" in claims:
            return None  # another issuer's, or a logout token (Back-Channel Logout 1.0 2.4)
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        azp = claims.get("azp")
        client_id = azp if isinstance(azp, str) and azp in audiences else None
        if client_id is None and len(audiences) == 1 and isinstance(audiences[0], str):
            client_id = audiences[0]
        sub, sid = claims.get("sub"), claims.get("sid")
        if not client_id or not isinstance(sub, str) or not sub:
            return None
        return IdTokenHint(client_id, sub, sid if isinstance(sid, str) and sid else None)
