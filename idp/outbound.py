"""The one door for every server-side fetch: Hawiya never opens an outbound connection elsewhere.

Two policies (docs/outbound.md):

- **agency** (``Policy.agency``): URLs an agency controls — a client's ``jwks_uri``, its
  ``sector_identifier_uri``, its back-channel logout URI. https only; no redirect is followed (a 3xx
  is a failure); the name is resolved once, every address it resolves to must be public (private,
  loopback, link-local, multicast, reserved and cloud-metadata addresses are refused), and the
  connection goes to the address that was checked — TLS SNI, certificate check and ``Host`` keep the
  name — so a second DNS answer can never move the connection (no rebinding window). Loopback targets
  (over plain http too) are allowed only when the issuer itself is on loopback: development and the
  test suite, whose agencies run on 127.0.0.1.
- **operator** (``Policy.operator``): URLs the operator configures — the remote signer, the SMTP
  relay. Private and loopback addresses are allowed (they are where such services live); cloud
  metadata addresses never are.

Both have a *total* deadline (resolution, connection, TLS, request and the whole answer: a server
that sends one byte every second is cut off at the deadline, not kept alive by each byte) and a cap
on the answer's size. A proxy is used only when configured (``HAWIYA_OUTBOUND_PROXY``), never taken
from the environment. Failures are typed (``OutboundError`` and its subclasses); their messages are
for the log: an agency URL's failure is never echoed to whoever registered it (that would make the
IdP a port scanner of its own network).
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal
from urllib.parse import urlsplit

from idp.settings import Settings

#: Addresses of cloud instance-metadata services: refused by both policies.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean ...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
    )
)
#: NAT64 (RFC 6052) and 6to4 (RFC 3056) carry an IPv4 address inside an IPv6 one: judged by it.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

Resolver = Callable[[str, int], Sequence[str]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundError(Exception):
    """A fetch failed. ``reason`` is a short stable word; ``cause`` names what failed underneath
    (``ConnectionRefusedError``, ``TimeoutError``, ``HTTP 302`` ...); the message is a detail. All
    three are for the log and the audit trail, never for the one who registered the URL."""

    reason = "failed"

    def __init__(self, message: str, *, cause: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.cause = cause or type(self).__name__
        #: The HTTP status, when the server answered one (a redirect's).
        self.status = status


class Refused(OutboundError):
    """The policy refuses the URL: its scheme, or an address its name resolves to."""

    reason = "refused"


class Unreachable(OutboundError):
    """No answer: the name does not resolve, the connection or TLS failed, the peer hung up."""

    reason = "unreachable"


class TimedOut(OutboundError):
    """The deadline passed before the whole answer arrived."""

    reason = "timeout"

    def __init__(self, message: str) -> None:
        super().__init__(message, cause="TimeoutError")


class TooLarge(OutboundError):
    """The answer is larger than the policy's cap."""

    reason = "too_large"


class Redirected(OutboundError):
    """The server answered with a redirect, which is never followed."""

    reason = "redirect"


class BadAnswer(OutboundError):
    """The answer is not HTTP, or not what was asked for (a status other than 200, not JSON)."""

    reason = "bad_answer"


@dataclass(frozen=True)
class Policy:
    """What one kind of URL may reach, and how long and how much it may take."""

    name: Literal["agency", "operator"]
    #: Seconds for the whole exchange, from resolving the name to the answer's last byte.
    deadline: float
    #: The most bytes of an answer's body that are read; more is a failure.
    max_bytes: int
    #: Loopback addresses may be reached (over plain http too).
    loopback: bool
    #: Private, link-local, shared and reserved addresses may be reached.
    private: bool
    #: ``http://host:port`` of a proxy to tunnel through (CONNECT), or None for direct connections.
    proxy: str | None = None
    #: A PEM file of certificate authorities trusted besides the system's.
    ca_bundle: str | None = None

    @classmethod
    def agency(cls, settings: Settings) -> Policy:
        """The policy for URLs agencies control (loopback only while the issuer is on loopback)."""
        return cls(
            "agency",
            deadline=settings.outbound_deadline,
            max_bytes=settings.outbound_max_bytes,
            loopback=settings.issuer_is_local_http,
            private=False,
            proxy=settings.outbound_proxy or None,
            ca_bundle=settings.outbound_ca_bundle or None,
        )

    @classmethod
    def operator(cls, settings: Settings) -> Policy:
        """The policy for URLs the operator configures (private networks allowed)."""
        return cls(
            "operator",
            deadline=settings.outbound_deadline,
            max_bytes=settings.outbound_max_bytes,
            loopback=True,
            private=True,
            ca_bundle=settings.outbound_ca_bundle or None,
        )


@dataclass(frozen=True)
class Response:
    """An answer: its status, headers (names in lower case) and body (empty when not read)."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON, when the status is 200; BadAnswer otherwise."""
        if self.status != 200:
            raise BadAnswer(f"HTTP {self.status}")
        try:
            return json.loads(self.body)
        except ValueError:
            raise BadAnswer("the answer is not JSON") from None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (TCP), in the resolver's order, without repeats."""
    found: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if sockaddr[0] not in found:
            found.append(str(sockaddr[0]))
    return found


def refusal(address: Address, policy: Policy) -> str | None:
    """Why ``policy`` may not connect to ``address``, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return refusal(embedded, policy)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified or address.is_multicast:
        return "not a unicast address"
    if address.is_loopback:
        return None if policy.loopback else "a loopback address"
    if not address.is_global:
        return None if policy.private else "not a public address"
    return None


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str


class _Deadline:
    """The end of one exchange; every blocking socket call gets only the time left."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left; TimedOut when none."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimedOut("the deadline passed")
        return left


class _Reader(io.RawIOBase):
    """Reads a socket, each read bounded by the time left: the sum can never pass the deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        """Always."""
        return True

    def readinto(self, buffer: Any) -> int:
        """One receive, within the time left."""
        self._sock.settimeout(self._deadline.left())
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """What http.client needs of a socket (sendall, makefile, close), under one deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        """Send all of ``data`` within the time left."""
        self._sock.settimeout(self._deadline.left())
        self._sock.sendall(data)

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        """A buffered reader whose every receive is bounded by the time left."""
        return io.BufferedReader(_Reader(self._sock, self._deadline))

    def close(self) -> None:
        """Nothing: http.client closes its side as soon as the answer's headers say so, while the
        answer's body is still to be read; the exchange closes the socket when it ends."""


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP connection over a socket already connected to the checked address; ``Host`` is the
    URL's name (and its port, unless the scheme's default)."""

    def __init__(self, target: _Target, sock: _DeadlineSocket) -> None:
        super().__init__(target.host, target.port)
        self.default_port = 443 if target.scheme == "https" else 80
        self.sock = sock  # connect() is never called


class Outbound:
    """Fetches under one ``Policy``. ``resolve`` turns a name into addresses (the system resolver
    unless given; it is asked once per fetch, and only its checked answer is connected to)."""

    def __init__(self, policy: Policy, *, resolve: Resolver = system_resolver) -> None:
        self.policy = policy
        self._resolve = resolve

    @cached_property
    def tls(self) -> ssl.SSLContext:
        """The TLS context: the system's CAs (and the configured bundle), host names checked."""
        context = ssl.create_default_context()
        if self.policy.ca_bundle:
            context.load_verify_locations(cafile=self.policy.ca_bundle)
        return context

    # -- HTTP ----------------------------------------------------------------------------------

    def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        """GET ``url``; the answer (any status but a redirect) or an OutboundError."""
        return self.request("GET", url, headers=headers)

    def get_json(self, url: str) -> Any:
        """GET ``url`` and parse its JSON answer; BadAnswer unless the status is 200."""
        return self.get(url, headers={"Accept": "application/json"}).json()

    def post(
        self, url: str, body: bytes, *, headers: Mapping[str, str] | None = None, read_body: bool = True
    ) -> Response:
        """POST ``body`` to ``url``; ``read_body=False`` keeps only the status (nothing more is read)."""
        return self.request("POST", url, body=body, headers=headers, read_body=read_body)

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        read_body: bool = True,
    ) -> Response:
        """One HTTP exchange under the policy."""
        deadline = _Deadline(self.policy.deadline)
        target = self._target(url)
        sock = self._open(target, deadline)
        connection = _PinnedConnection(target, _DeadlineSocket(sock, deadline))
        try:
            connection.request(
                method,
                target.path,
                body=body,
                headers={"User-Agent": "Hawiya", "Connection": "close", **(headers or {})},
            )
            answer = connection.getresponse()
            if 300 <= answer.status < 400:
                raise Redirected(f"HTTP {answer.status}", status=answer.status)
            declared = answer.getheader("Content-Length") or ""
            if declared.isdigit() and int(declared) > self.policy.max_bytes:
                raise TooLarge(f"{declared} bytes announced")
            data = answer.read(self.policy.max_bytes + 1) if read_body else b""
            if len(data) > self.policy.max_bytes:
                raise TooLarge(f"more than {self.policy.max_bytes} bytes")
            return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, data)
        except OutboundError:
            raise
        except TimeoutError:
            raise TimedOut("the deadline passed") from None
        except http.client.HTTPException as exc:
            raise BadAnswer(type(exc).__name__, cause=type(exc).__name__) from None
        except OSError as exc:
            raise Unreachable(type(exc).__name__, cause=type(exc).__name__) from exc
        finally:
            connection.close()
            sock.close()

    # -- connections ---------------------------------------------------------------------------

    def connect(self, host: str, port: int) -> socket.socket:
        """A TCP connection to ``host`` (resolved once, checked, pinned) made within the deadline;
        the socket's timeout is then the deadline (for protocols spoken elsewhere: SMTP)."""
        deadline = _Deadline(self.policy.deadline)
        sock = self._open(_Target("tcp", host, port, ""), deadline)
        sock.settimeout(self.policy.deadline)
        return sock

    @contextmanager
    def cut_at_deadline(self, current: Callable[[], Any]) -> Iterator[None]:
        """Shut down the connection ``current()`` returns once the deadline passes (counted from
        entering): the total deadline for a protocol spoken by a library that only knows a
        timeout per operation (smtplib); its blocked read then fails."""

        def cut() -> None:
            sock = current()
            if sock is not None:
                with suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(self.policy.deadline, cut)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def _target(self, url: str) -> _Target:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise Refused("not a URL") from None
        https_only = self.policy.name == "agency" and not self.policy.loopback
        allowed = ("https",) if https_only else ("https", "http")
        if parts.scheme not in allowed or not parts.hostname:
            raise Refused(f"{parts.scheme or 'no'} scheme")
        if parts.username is not None or parts.password is not None:
            raise Refused("credentials in the URL")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        default = 443 if parts.scheme == "https" else 80
        return _Target(parts.scheme, parts.hostname, port or default, path)

    def _addresses(self, target: _Target, deadline: _Deadline) -> list[Address]:
        """The checked addresses of ``target``'s host: Refused when any of them is refused (one bad
        answer among good ones is still an attempt to reach it)."""
        try:
            literal: Address | None = ipaddress.ip_address(target.host)
        except ValueError:
            literal = None
        names = [str(literal)] if literal is not None else self._resolve_within(target, deadline)
        addresses = [ipaddress.ip_address(name.split("%", 1)[0]) for name in names]
        if not addresses:
            raise Unreachable("the name resolves to nothing")
        for address in addresses:
            why = refusal(address, self.policy)
            if why is not None:
                raise Refused(f"{target.host} is {why} ({address})")
        plain = target.scheme == "http" and self.policy.name == "agency"
        if plain and not all(address.is_loopback for address in addresses):
            # Plain http only to loopback (a loopback issuer's agencies): never across a network.
            raise Refused("plain http to a host that is not loopback")
        return addresses

    def _resolve_within(self, target: _Target, deadline: _Deadline) -> list[str]:
        """The resolver's answer, waited for no longer than the time left (a resolver cannot be
        given a timeout, so it runs in a daemon thread that may outlive the wait)."""
        answer: list[str] = []
        failure: list[BaseException] = []

        def resolve() -> None:
            try:
                answer.extend(self._resolve(target.host, target.port))
            except BaseException as exc:  # handed to the waiting thread
                failure.append(exc)

        thread = threading.Thread(target=resolve, name="hawiya-resolve", daemon=True)
        thread.start()
        thread.join(deadline.left())
        if thread.is_alive():
            raise TimedOut("the name did not resolve in time")
        if failure:
            name = type(failure[0]).__name__
            raise Unreachable(f"the name does not resolve ({name})", cause=name)
        return answer

    def _open(self, target: _Target, deadline: _Deadline) -> socket.socket:
        """A connection to the first checked address that answers (through the proxy when one is
        configured), TLS on top for https (SNI and the certificate check use the URL's name)."""
        addresses = self._addresses(target, deadline)
        last: Exception | None = None
        for address in addresses:
            try:
                if self.policy.proxy:
                    sock = self._tunnel(address, target.port, deadline)
                else:
                    sock = socket.create_connection((str(address), target.port), timeout=deadline.left())
            except TimeoutError:
                raise TimedOut("no connection before the deadline") from None
            except OSError as exc:
                last = exc
                continue
            if target.scheme != "https":
                return sock
            try:
                sock.settimeout(deadline.left())  # the handshake as a whole is bounded by this
                return self.tls.wrap_socket(sock, server_hostname=target.host)
            except TimeoutError:
                sock.close()
                raise TimedOut("no TLS before the deadline") from None
            except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
                sock.close()
                raise Unreachable(f"TLS failed ({type(exc).__name__})", cause=type(exc).__name__) from None
        raise Unreachable(f"no connection ({type(last).__name__})", cause=type(last).__name__)

    def _tunnel(self, address: Address, port: int, deadline: _Deadline) -> socket.socket:
        """A CONNECT tunnel through the configured proxy to ``address`` (the checked one, so the
        proxy resolves nothing)."""
        proxy = urlsplit(self.policy.proxy or "")
        sock = socket.create_connection((proxy.hostname or "", proxy.port or 8080), timeout=deadline.left())
        where = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
        try:
            sock.settimeout(deadline.left())
            sock.sendall(f"CONNECT {where} HTTP/1.1\r\nHost: {where}\r\n\r\n".encode())
            reader = io.BufferedReader(_Reader(sock, deadline), buffer_size=1)
            status = reader.readline(1024).split()
            if len(status) < 2 or status[1] != b"200":
                raise Unreachable("the proxy refused the tunnel")
            while reader.readline(8192) not in (b"\r\n", b"\n", b""):
                pass
        except BaseException:
            sock.close()
            raise
        return sock
