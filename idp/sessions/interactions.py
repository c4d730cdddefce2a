"""Parked authorization requests.

When /authorize needs the person (sign-in or consent), the request's parameters are parked in the
ephemeral store under a random id, and the browser gets that id both in the page URL and in a
cookie. Resuming requires both to match, so a link to someone else's parked request is useless.
This also lets a cross-site POST to /authorize continue after sign-in.

The authorization endpoint also leaves what the sign-in pages must know of the request, in terms
they understand without the protocol: the level it needs (``acr``, so the second-factor page offers
only factors that reach it) and from when a proof counts as fresh for it (``fresh_since``, from its
``max_age`` or ``prompt=login``).

Every page of the interaction speaks its language (``ui_locales``): the request's ``ui_locales``
(OIDC Core 3.1.2.1), or the language the person chose on one of its pages, which wins from then on.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field, replace

from idp.clock import Clock
from idp.errors import InteractionExpired
from idp.storage.ephemeral import EphemeralStore


@dataclass(frozen=True)
class Interaction:
    """An authorization request waiting for the person."""

    id: str
    params: dict[str, list[str]]
    created_at: float
    #: Set once the person signed in during this interaction (satisfies prompt=login, max_age).
    authenticated: bool = False
    #: Set once the person approved on the consent page of this interaction.
    consented: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    #: The least level the request needs (acr_values, an essential acr claim, the client's minimum,
    #: the account's), as the authorization endpoint found it; None: any.
    acr: str | None = None
    #: Proofs made at or after this time (seconds since the epoch) are fresh enough for the
    #: request; None: every proof is.
    fresh_since: float | None = None

    def param(self, name: str) -> str | None:
        """The first value of a parameter."""
        values = self.params.get(name)
        return values[0] if values else None

    @property
    def ui_locales(self) -> str | None:
        """The languages its pages speak: the one the person chose during it, else the request's."""
        return self.extra.get("locale") or self.param("ui_locales")


class InteractionStore:
    """Park, load, update and finish interactions."""

    def __init__(self, store: EphemeralStore, clock: Clock, *, ttl: int) -> None:
        self._store = store
        self._clock = clock
        self._ttl = ttl

    def park(
        self, params: dict[str, list[str]], *, acr: str | None = None, fresh_since: float | None = None
    ) -> Interaction:
        """Park a new interaction."""
        interaction = Interaction(
            id=secrets.token_urlsafe(24),
            params=params,
            created_at=self._clock.now(),
            acr=acr,
            fresh_since=fresh_since,
        )
        self._save(interaction)
        return interaction

    def load(self, interaction_id: str | None, cookie_value: str | None) -> Interaction:
        """The live interaction named by both the URL and this browser's cookie."""
        if (
            not interaction_id
            or not cookie_value
            # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
            or not secrets.compare_digest(interaction_id.encode(), cookie_value.encode())
        ):
            raise InteractionExpired("this sign-in page has expired; start again from the service")
        raw = self._store.get("ix:" + interaction_id)
        if raw is None:
            raise InteractionExpired("this sign-in page has expired; start again from the service")
        return Interaction(**json.loads(raw))

    def find(self, interaction_id: str | None, cookie_value: str | None) -> Interaction | None:
        """``load``, but None instead of InteractionExpired (for what only helps a page, such as
        its language)."""
        try:
            return self.load(interaction_id, cookie_value)
        except InteractionExpired:
            return None

    def choose_locale(self, interaction: Interaction, locale: str) -> Interaction:
        """Remember the language the person chose on a page of ``interaction``."""
        return self.update(interaction, extra={**interaction.extra, "locale": locale})

    def update(self, interaction: Interaction, **changes: object) -> Interaction:
        """Store changed fields."""
        updated = replace(interaction, **changes)  # type: ignore[arg-type]
        self._save(updated)
        return updated

    def finish(self, interaction: Interaction) -> None:
        """Remove the interaction (it produced its response)."""
        self._store.delete("ix:" + interaction.id)

    def _save(self, interaction: Interaction) -> None:
        remaining = int(interaction.created_at + self._ttl - self._clock.now())
        if remaining <= 0:
            raise InteractionExpired("this sign-in page has expired; start again from the service")
        self._store.put("ix:" + interaction.id, json.dumps(asdict(interaction)).encode(), remaining)
