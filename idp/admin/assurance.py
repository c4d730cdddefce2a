"""The high-assurance transition report: which clients demand ``urn:hawiya:loa:high`` and how many
of their people can no longer reach it.

``high`` now needs a security key whose attestation proved it hardware (idp.authn.assurance). Keys
registered before that rule stay usable but stop at ``substantial``, so an agency whose client is
registered with ``--min-acr urn:hawiya:loa:high`` may find its users turned away until they add a
security key for high-assurance services. The operator runs ``hawiya clients
high-assurance-report`` to see where, and tells those agencies.

Who a client's users are: what the data model keeps of them (``ConsentService.users_of``), the
people who gave it a consent (first-party clients' implied consents included) or for whom it
holds a usable refresh token. The factors of each are read one account at a time: a report for
the operator, not a request path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from idp.oidc.clients import ClientService
from idp.oidc.consent import ConsentService
from idp.settings import LOA_HIGH


class LevelReader(Protocol):
    """What the report reads of a person's factors (idp.authn.mfa.SecondFactor provides it)."""

    def reachable_level(self, account_id: str) -> str:
        """The highest level a password plus what the person holds reaches."""
        ...

    def lost_high(self, account_id: str) -> bool:
        """True when the person's keys reached high by their own flags and nothing reaches it now."""
        ...


@dataclass(frozen=True)
class ClientAssurance:
    """One client whose minimum level is high, and how its users stand."""

    client_id: str
    name: str
    agency: str | None
    status: str
    #: People who use the client (a consent, or a usable refresh token).
    users: int
    #: Of them, those who hold no factor that reaches high now.
    without_high: int
    #: Of those, the people whose keys reached high before proof of hardware was required.
    lost_high: int


class HighAssuranceReport:
    """Build the report from the clients, their users and those users' factors."""

    def __init__(self, clients: ClientService, consents: ConsentService, levels: LevelReader) -> None:
        self._clients = clients
        self._consents = consents
        self._levels = levels

    def clients(self) -> list[ClientAssurance]:
        """Every client whose minimum level is high (active or not), by client id."""
        rows = []
        for client in sorted(self._clients.list(), key=lambda c: c.client_id):
            if client.min_acr != LOA_HIGH:
                continue
            users = self._consents.users_of(client.client_id)
            without = {person for person in users if self._levels.reachable_level(person) != LOA_HIGH}
            lost = {person for person in without if self._levels.lost_high(person)}
            rows.append(
                ClientAssurance(
                    client_id=client.client_id,
                    name=client.name,
                    agency=client.agency,
                    status=client.status,
                    users=len(users),
                    without_high=len(without),
                    lost_high=len(lost),
                )
            )
        return rows
