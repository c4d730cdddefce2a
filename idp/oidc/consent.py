"""Consent: a person allows a client to receive the claims of the scopes it asks for, and any
claims it asks for individually (OIDC Core 5.5).

Consent is remembered per (person, client); the page is skipped when everything requested was
already allowed, and shown again with ``prompt=consent``. The person sees every consent in the
account area and can withdraw any: the record goes, and so does every refresh token the client
holds for them (offline access included) with the access tokens those issued.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from datetime import UTC, datetime

from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.clock import Clock
from idp.oidc.claims import SCOPE_CLAIMS
from idp.oidc.refresh import RefreshTokens
from idp.storage.repositories.consents import ConsentRepository

#: Scopes that need no consent: ``openid`` only says "sign me in" and releases ``sub``; API scopes
#: (``records:read``) describe what the agency may call, not personal data.
IMPLICIT_SCOPES = frozenset({"openid"})


def needs_consent(scope: str) -> bool:
    """True for scopes the person must approve (personal data or offline access)."""
    return scope in SCOPE_CLAIMS or scope == "offline_access"


@dataclass(frozen=True)
class ConsentRequest:
    """What the person is asked to allow."""

    scopes: frozenset[str]
    claims: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.scopes or self.claims)


@dataclass(frozen=True)
class GrantedConsent:
    """A consent as the account area shows it."""

    client_id: str
    scopes: tuple[str, ...]
    claims: tuple[str, ...]
    granted_at: datetime
    updated_at: datetime


class ConsentService:
    """Decide whether to ask, remember answers, list and withdraw them."""

    def __init__(
        self, repository: ConsentRepository, refresh: RefreshTokens, clock: Clock, audit: AuditLog
    ) -> None:
        self._repository = repository
        self._refresh = refresh
        self._clock = clock
        self._audit = audit

    def missing(
        self, account_id: str, client_id: str, scopes: Set[str], claims: Set[str] = frozenset()
    ) -> ConsentRequest:
        """What the person has not allowed this client yet."""
        wanted_scopes = {s for s in scopes if needs_consent(s)}
        if not wanted_scopes and not claims:
            return ConsentRequest(frozenset(), frozenset())
        granted_scopes, granted_claims = self._repository.granted(account_id, client_id)
        covered = granted_claims | {
            c for s in granted_scopes | wanted_scopes for c in SCOPE_CLAIMS.get(s, ())
        }
        return ConsentRequest(frozenset(wanted_scopes - granted_scopes), frozenset(set(claims) - covered))

    def grant(
        self, account_id: str, client_id: str, request: ConsentRequest, *, implied: bool = False
    ) -> None:
        """Remember that the person allowed ``request`` (``implied``: a first-party service, where
        staff decided consent is implied; still recorded, shown and withdrawable)."""
        now = datetime.fromtimestamp(self._clock.now(), UTC)
        self._repository.merge(account_id, client_id, set(request.scopes), set(request.claims), now)
        self._audit.record(
            AuditEvent.CONSENT_GRANTED,
            subject=account_id,
            client_id=client_id,
            detail={"scopes": sorted(request.scopes), "claims": sorted(request.claims), "implied": implied},
        )

    def deny(self, account_id: str, client_id: str) -> None:
        """Record that the person refused."""
        self._audit.record(AuditEvent.CONSENT_DENIED, subject=account_id, client_id=client_id)

    def granted_by(self, account_id: str) -> list[GrantedConsent]:
        """Every consent the person gave, most recently changed first."""
        return [
            GrantedConsent(
                row.client_id,
                tuple(s for s in row.scopes if needs_consent(s)),
                tuple(row.claims),
                row.created_at,
                row.updated_at,
            )
            for row in self._repository.for_account(account_id)
        ]

    def users_of(self, client_id: str) -> set[str]:
        """The people who use ``client_id``, as far as Hawiya keeps a trace: those who gave it a
        consent (implied ones of first-party clients included) and those it holds a usable refresh
        token for. A person who signed in once with nothing to consent to (``openid`` alone) and
        no refresh token leaves no such trace, and is not counted."""
        return self._repository.accounts_of(client_id) | self._refresh.holders(client_id)

    def withdraw(self, account_id: str, client_id: str, *, ip: str | None = None) -> bool:
        """Forget the consent and revoke what the client holds on it; False when there was none."""
        if not self._repository.delete(account_id, client_id):
            return False
        families = self._refresh.revoke_for_grant(account_id, client_id)
        self._audit.record(
            AuditEvent.CONSENT_WITHDRAWN,
            subject=account_id,
            client_id=client_id,
            ip=ip,
            detail={"refresh_families_revoked": families},
        )
        return True
