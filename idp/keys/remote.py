"""A Signer that signs out of process, and the small signing service it talks to.

This is the HSM/KMS seam made concrete: protocol code calls ``Signer.sign`` and never learns where
the private key lives. ``RemoteSigner`` posts the claims to a signing service over HTTP with a
shared secret; ``SigningService`` is such a service, wrapping another Signer (the software one,
reading the same sealed keys). A PKCS#11 or cloud-KMS backend implements the same ``Signer``
protocol and plugs in the same way (see SECURITY.md, "Plugging in an HSM or KMS").

Wire format: ``POST /sign`` with ``Authorization: Bearer <secret>`` and a JSON body
``{"alg": "ES256", "typ": "JWT", "claims": {...}}``; the answer is ``{"token": "<compact JWS>"}``.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from idp.errors import KeyUnavailable
from idp.keys.signer import Signer
from idp.outbound import Outbound, OutboundError

log = logging.getLogger("idp.keys")
MAX_BODY = 64 * 1024


class RemoteSigner:
    """Sign through a signing service (out of process), reached through the outbound boundary
    under the operator policy (a private address is fine; the deadline and size cap hold)."""

    def __init__(self, url: str, *, secret: str, outbound: Outbound) -> None:
        self._url = url.rstrip("/") + "/sign"
        self._secret = secret
        self._outbound = outbound

    def sign(self, claims: Mapping[str, Any], *, alg: str, typ: str = "JWT") -> str:
        """Ask the service for a signature; KeyUnavailable when it cannot give one."""
        body = json.dumps({"alg": alg, "typ": typ, "claims": dict(claims)}).encode()
        try:
            answer = self._outbound.post(
                self._url,
                body,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._secret}"},
            ).json()
        except OutboundError as exc:
            raise KeyUnavailable("the signing service did not answer") from exc
        token = answer.get("token") if isinstance(answer, dict) else None
        if not isinstance(token, str):
            raise KeyUnavailable("the signing service gave no token")
        return token


class SigningService:
    """A loopback HTTP signing service in front of a Signer (for tests and as a reference)."""

    def __init__(self, signer: Signer, *, secret: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self._signer = signer
        self._secret = secret
        self._count_lock = threading.Lock()
        self.signatures = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: requests carry claims, which are not for logs."""

            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                presented = self.headers.get("Authorization", "")
                if not hmac.compare_digest(presented.encode(), f"Bearer {service._secret}".encode()):
                    self._answer(401, {"error": "unauthorized"})
                    return
                declared = self.headers.get("Content-Length") or "0"
                length = int(declared) if declared.isdigit() else 0
                if self.path != "/sign" or not 0 < length <= MAX_BODY:
                    self._answer(400, {"error": "bad_request"})
                    return
                try:
                    request = json.loads(self.rfile.read(length))
                    token = service._signer.sign(
                        request["claims"], alg=str(request["alg"]), typ=str(request.get("typ", "JWT"))
                    )
                except (ValueError, KeyError, TypeError, KeyUnavailable) as exc:
                    log.warning("signing service refused a request: %s", type(exc).__name__)
                    self._answer(400, {"error": "cannot_sign"})
                    return
                with service._count_lock:
                    service.signatures += 1
                self._answer(200, {"token": token})

        self._server = ThreadingHTTPServer((host, port), Handler)
        # A short poll interval: stop() waits for the serving loop to notice, up to one interval.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """Where the service listens."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SigningService:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
