"""Readiness of the keys: proof that the master key still opens the live keys and that a token
signed now verifies.

A process keeps the signing keys it unsealed, so a master key that went wrong under it (a key
file replaced by another key, a rotation it could not follow) would otherwise surface only when a
key must be unsealed again: at the next rotation, or in the next worker. The readiness probe asks
here instead. The proof is kept for ``ttl`` seconds, failed or not, so a probe every second costs
one unseal pass and one signature per algorithm every few seconds, not per probe.
"""

from __future__ import annotations

import logging
import threading

from idp.clock import Clock
from idp.errors import HawiyaError
from idp.keys.keystore import KeyStore
from idp.keys.sealing import Sealer
from idp.keys.signer import InvalidToken, Signer, TokenVerifier

log = logging.getLogger("idp.keys")


class KeyReadiness:
    """Whether the keys work, proved at most once per ``ttl`` seconds."""

    def __init__(
        self,
        keystore: KeyStore,
        sealer: Sealer,
        signer: Signer,
        verifier: TokenVerifier,
        clock: Clock,
        *,
        ttl: float = 5.0,
        check_unseal: bool = True,
    ) -> None:
        """``check_unseal`` false: the keys are unsealed elsewhere (a signing service), so only
        the signature is proved here."""
        self._keystore = keystore
        self._sealer = sealer
        self._signer = signer
        self._verifier = verifier
        self._clock = clock
        self._ttl = ttl
        self._check_unseal = check_unseal
        self._lock = threading.Lock()
        self._proved_at: float | None = None
        self._ready = False

    def ready(self) -> bool:
        """True when the last proof, at most ``ttl`` seconds old, succeeded."""
        with self._lock:  # one proof at a time: concurrent probes wait for it rather than repeat it
            now = self._clock.now()
            if self._proved_at is None or not 0 <= now - self._proved_at < self._ttl:
                self._ready = self._prove()
                self._proved_at = now
            return self._ready

    def _prove(self) -> bool:
        try:
            if self._check_unseal:
                self._sealer.check()
                self._keystore.check_unsealable()
            for alg in self._keystore.signing_algs():
                token = self._signer.sign({"iss": "readiness"}, alg=alg)
                self._verifier.verify(token, typ="jwt")
        except HawiyaError as error:
            log.error("not ready: %s", error.message)
            return False
        except InvalidToken:
            log.error("not ready: a token signed now does not verify against the published keys")
            return False
        except Exception:  # a signing service or database that fails otherwise: not ready either
            log.exception("not ready: the key check failed")
            return False
        return True
