"""Real servers on 127.0.0.1 playing agency hosts for the outbound boundary's tests: one that
answers as told (and counts), one that drips its answer, a TLS one that records the name the
client asked for, and a CONNECT proxy. Each runs in daemon threads and closes with ``close``."""

from __future__ import annotations

import datetime
import ipaddress
import select
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Answer:
    """What the host answers: a status, headers and a body."""

    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


@dataclass
class Heard:
    """One request as the host received it."""

    method: str
    path: str
    host: str
    sni: str | None = None


class AgencyHost:
    """An HTTP/1.1 server (optionally TLS) answering each path as ``answers`` says (404 else);
    ``drip`` seconds between the body's bytes make it a slow host; ``heard`` lists the requests,
    ``connections`` counts TCP connections accepted."""

    def __init__(self, *, tls: ssl.SSLContext | None = None, drip: float = 0.0) -> None:
        self.answers: dict[str, Answer] = {}
        self.heard: list[Heard] = []
        self.connections = 0
        self.drip = drip
        self._tls = tls
        self._sni: dict[int, str | None] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        if tls is not None:
            tls.sni_callback = self._remember_sni
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "") -> str:
        """The URL of ``path`` on this host under ``host`` (a name or an address)."""
        return f"{scheme or ('https' if self._tls else 'http')}://{host}:{self.port}{path}"

    def answer(self, path: str, answer: Answer) -> str:
        """Answer ``path`` with ``answer``; its URL on 127.0.0.1."""
        self.answers[path] = answer
        return self.url(path)

    def fetches(self, path: str) -> int:
        """How many requests for ``path`` arrived."""
        with self._lock:
            return sum(1 for heard in self.heard if heard.path == path)

    def close(self) -> None:
        """Stop serving (a drip under way ends at its next byte)."""
        self._stop.set()
        self._server.close()

    def _remember_sni(self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: object) -> None:
        self._sni[id(sock)] = name

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        sni = None
        try:
            if self._tls is not None:
                conn = self._tls.wrap_socket(conn, server_side=True)
                sni = self._sni.get(id(conn))
            with conn, conn.makefile("rb") as reader:
                request_line = reader.readline(8192).decode("latin-1").split()
                headers: dict[str, str] = {}
                while (line := reader.readline(8192)) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                if int(headers.get("content-length") or 0):
                    reader.read(int(headers["content-length"]))
                method, path = request_line[0], request_line[1]
                with self._lock:
                    self.heard.append(Heard(method, path, headers.get("host", ""), sni))
                answer = self.answers.get(path, Answer(404, b"not found"))
                head = f"HTTP/1.1 {answer.status} X\r\nConnection: close\r\n"
                # An empty value leaves the header out (Content-Length: "" sends none).
                head += "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items() if v)
                if "Content-Length" not in answer.headers:
                    head += f"Content-Length: {len(answer.body)}\r\n"
                conn.sendall(head.encode() + b"\r\n")
                if not self.drip:
                    conn.sendall(answer.body)
                    return
                for byte in answer.body:
                    if self._stop.wait(self.drip):
                        return
                    conn.sendall(bytes([byte]))
        except (OSError, ssl.SSLError, IndexError, ValueError):
            return


class ConnectProxy:
    """A forward proxy on 127.0.0.1 that tunnels CONNECT requests; ``targets`` lists what it was
    asked to connect to."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        """Stop accepting."""
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(conn,), daemon=True).start()

    def _tunnel(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(1)
                if not chunk:
                    return
                head += chunk
            verb, target = head.split(b" ")[:2]
            self.targets.append(target.decode())
            host, _, port = target.decode().rpartition(":")
            if verb != b"CONNECT":
                conn.sendall(b"HTTP/1.1 405 X\r\n\r\n")
                return
            with socket.create_connection((host.strip("[]"), int(port)), timeout=5) as upstream:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                pipes = [conn, upstream]
                while True:
                    ready, _, _ = select.select(pipes, [], [], 5)
                    if not ready:
                        return
                    for sock in ready:
                        data = sock.recv(65536)
                        if not data:
                            return
                        (upstream if sock is conn else conn).sendall(data)


def tls_for(name: str, folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for ``name`` (a self-signed certificate made here) and the PEM file a
    client must trust to accept it (the CA bundle setting)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        alt = x509.DNSName(name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / f"{name}.pem", folder / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


def resolver(answers: dict[str, list[str]], calls: list[str]) -> Callable[[str, int], list[str]]:
    """A resolver answering from ``answers`` (like a hosts file), noting each name asked in ``calls``."""

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        return list(answers[host])

    return resolve
