"""Access-token revocation (RFC 7009 2.1).

Access tokens are self-contained JWTs, so revoking one puts its ``jti`` on a deny-list in the
ephemeral store until the token would have expired anyway; userinfo and introspection consult it.
The ledger also remembers which access tokens each grant produced (a code, a refresh family, an
SSO session), so a code replay, a refresh-token reuse or a logout can revoke everything that grant
issued.
"""

from __future__ import annotations

import json

from idp.clock import Clock
from idp.storage.ephemeral import EphemeralStore

#: Seconds a deny-list entry outlives the token's ``exp`` (covers verifiers' clock leeway).
LEEWAY = 60


class TokenLedger:
    """Record issued access tokens per grant; revoke them by jti or by grant."""

    def __init__(self, store: EphemeralStore, clock: Clock, *, access_ttl: int) -> None:
        self._store = store
        self._clock = clock
        self._access_ttl = access_ttl

    def issued_many(self, jti: str, exp: int, grants: list[str]) -> None:
        """Remember that each of ``grants`` (for example ``code:<hash>`` or ``family:<id>``) issued
        ``jti``: one read and one write to the store, whatever their number.

        Each grant issues one token response at a time (codes are single use, refresh rotation is
        an atomic consume), so this read-modify-write never races with itself.
        """
        if not grants:
            return
        keys = ["grant-tokens:" + grant for grant in grants]
        now = self._clock.now()
        updated = []
        for key, raw in zip(keys, self._store.get_many(keys), strict=True):
            entries = json.loads(raw) if raw else []
            entries = [[j, e] for j, e in entries if e + LEEWAY > now] + [[jti, exp]]
            updated.append((key, json.dumps(entries).encode()))
        self._store.put_many(updated, self._access_ttl + LEEWAY)

    def issued_shared(self, jti: str, exp: int, grant: str) -> None:
        """Remember that ``grant`` issued ``jti``, where several responses of the grant may be made
        at once (``session:<sid>``: every client of an SSO session, each refreshing on its own).

        A set member, added atomically: no read-modify-write that a concurrent response could
        overwrite. Expired entries stay until the set itself expires, ``access_ttl`` after the
        grant's last token; ``revoke_grant`` skips them.
        """
        self._store.add_member("grant-token-set:" + grant, f"{jti} {exp}", self._access_ttl + LEEWAY)

    def revoke(self, jti: str, exp: int) -> None:
        """Deny ``jti`` until its token has expired."""
        remaining = int(exp - self._clock.now()) + LEEWAY
        if remaining > 0:
            self._store.put("revoked-jti:" + jti, b"1", remaining)

    def revoke_grant(self, grant: str) -> int:
        """Deny every access token ``grant`` issued; how many were still live.

        The grant is marked revoked before its list is taken: a response of the same grant that is
        being issued right now records its token, then checks the mark (``grant_revoked``), so
        either this call finds the token or that response sees the mark.
        """
        self._store.put("revoked-grant:" + grant, b"1", self._access_ttl + LEEWAY)
        raw = self._store.take("grant-tokens:" + grant)
        entries = [(str(jti), int(exp)) for jti, exp in (json.loads(raw) if raw else [])]
        for member in self._store.members("grant-token-set:" + grant):
            member_jti, _, member_exp = member.partition(" ")
            entries.append((member_jti, int(member_exp)))
        count = 0
        for jti, exp in entries:
            if exp + LEEWAY > self._clock.now():
                self.revoke(jti, exp)
                count += 1
        return count

    def grant_revoked(self, grant: str) -> bool:
        """True when ``grant`` was revoked recently (long enough to cover any response in flight)."""
        return self._store.get("revoked-grant:" + grant) is not None

    def any_revoked(self, grants: list[str]) -> bool:
        """``grant_revoked`` for several grants in one read."""
        return any(v is not None for v in self._store.get_many(["revoked-grant:" + g for g in grants]))

    def is_revoked(self, jti: str) -> bool:
        """True when ``jti`` is on the deny-list."""
        return self._store.get("revoked-jti:" + jti) is not None

    def attach_claims(self, jti: str, exp: int, names: list[str]) -> None:
        """Remember the individually requested userinfo claims (OIDC Core 5.5) of an access token."""
        remaining = int(exp - self._clock.now()) + LEEWAY
        if names and remaining > 0:
            self._store.put("token-claims:" + jti, json.dumps(sorted(names)).encode(), remaining)

    def claims_of(self, jti: str) -> list[str]:
        """The individually requested userinfo claims of an access token."""
        raw = self._store.get("token-claims:" + jti)
        return [str(name) for name in json.loads(raw)] if raw else []
