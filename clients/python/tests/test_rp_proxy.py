"""The library's HTTP client through an outbound proxy (a government egress): an explicit proxy, or
the standard environment variables, with NO_PROXY honoured. The proxy here is a real one on a real
socket (a threaded server that tunnels CONNECT and forwards absolute-form requests) and records
every request it carried; the provider behind it speaks real TLS with a certificate made here."""

from __future__ import annotations

import datetime
import ipaddress
import json
import select
import socket
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask
from hawiya_rp import HawiyaRPError, NetworkError, UrllibClient
from hawiya_rp.flask import Hawiya

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")


class Provider(BaseHTTPRequestHandler):
    """Answers every GET and POST with JSON saying what it received."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, echo: dict[str, object]) -> None:
        body = json.dumps(echo).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer({"path": self.path, "authorization": self.headers.get("Authorization")})

    def do_POST(self) -> None:
        form = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self._answer({"path": self.path, "form": form})


@dataclass
class Proxy:
    """A forward proxy's record: what it carried (``CONNECT host:port`` or ``GET http://...``) and
    the Proxy-Authorization headers it saw."""

    url: str
    carried: list[str] = field(default_factory=list)
    credentials: list[str | None] = field(default_factory=list)


def proxy_handler(record: Proxy) -> type[BaseHTTPRequestHandler]:
    class Forward(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_CONNECT(self) -> None:
            record.carried.append(f"CONNECT {self.path}")
            record.credentials.append(self.headers.get("Proxy-Authorization"))
            host, _, port = self.path.rpartition(":")
            upstream = socket.create_connection((host, int(port)), timeout=5)
            self.send_response(200, "Connection established")
            self.end_headers()
            self.wfile.flush()
            sockets = [self.connection, upstream]
            try:
                while True:
                    ready, _, _ = select.select(sockets, [], [], 5)
                    if not ready:
                        return
                    for source in ready:
                        data = source.recv(65536)
                        if not data:
                            return
                        (upstream if source is self.connection else self.connection).sendall(data)
            finally:
                upstream.close()

        def _forward(self) -> None:
            record.carried.append(f"{self.command} {self.path}")
            record.credentials.append(self.headers.get("Proxy-Authorization"))
            target = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {
                name: value
                for name, value in self.headers.items()
                if name.lower() not in ("proxy-authorization", "proxy-connection", "connection", "host")
            }
            upstream = HTTPConnection(target.hostname or "", target.port or 80, timeout=5)
            path = target.path + (f"?{target.query}" if target.query else "")
            upstream.request(self.command, path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            upstream.close()

        do_GET = _forward
        do_POST = _forward

    return Forward


def serve(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and localhost): (certificate file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "provider.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "provider.pem", folder / "provider-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


@dataclass
class Net:
    """A provider on plain http, the same on https, a proxy, and the trust for the https one."""

    http: str
    https: str
    proxy: Proxy
    trust: ssl.SSLContext


@pytest.fixture
def net(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Net]:
    for name in PROXY_VARIABLES:  # only what each test sets
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    plain = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    secure = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    cert_file, key_file = certificate(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    secure.socket = server_context.wrap_socket(secure.socket, server_side=True)
    proxy_server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    record = Proxy(f"http://127.0.0.1:{proxy_server.server_address[1]}")
    proxy_server.RequestHandlerClass = proxy_handler(record)
    servers = [plain, secure, proxy_server]
    threads = [serve(server) for server in servers]
    try:
        yield Net(
            http=f"http://127.0.0.1:{plain.server_address[1]}",
            https=f"https://127.0.0.1:{secure.server_address[1]}",
            proxy=record,
            trust=ssl.create_default_context(cafile=str(cert_file)),
        )
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)


def test_an_explicit_proxy_carries_https_through_a_connect_tunnel(net: Net) -> None:
    client = UrllibClient(proxy=net.proxy.url, ssl_context=net.trust)
    answer = client.get_json(f"{net.https}/.well-known/openid-configuration")
    assert answer.status == 200 and answer.json["path"] == "/.well-known/openid-configuration"
    token = client.post_form(f"{net.https}/token", {"grant_type": "authorization_code"}, ("id", "secret"))
    assert token.json == {"path": "/token", "form": "grant_type=authorization_code"}
    host = urlsplit(net.https).netloc
    # The tunnel only: the proxy never saw the path, the form or the client's credentials.
    assert net.proxy.carried == [f"CONNECT {host}", f"CONNECT {host}"]


def test_an_explicit_proxy_carries_plain_http_and_its_credentials(net: Net) -> None:
    with_user = net.proxy.url.replace("http://", "http://egress:pa%24s@")
    answer = UrllibClient(proxy=with_user).get_json(f"{net.http}/jwks.json")
    assert answer.status == 200 and answer.json["path"] == "/jwks.json"
    assert net.proxy.carried == [f"GET {net.http}/jwks.json"]
    assert net.proxy.credentials == ["Basic ZWdyZXNzOnBhJHM="]  # egress:pa$s


def test_the_environment_proxy_is_used(net: Net, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", net.proxy.url)
    monkeypatch.setenv("HTTP_PROXY", net.proxy.url)
    client = UrllibClient(ssl_context=net.trust)
    assert client.get_json(f"{net.https}/jwks.json").json["path"] == "/jwks.json"
    assert client.get_json(f"{net.http}/userinfo").json["path"] == "/userinfo"
    assert net.proxy.carried == [f"CONNECT {urlsplit(net.https).netloc}", f"GET {net.http}/userinfo"]


def test_no_proxy_hosts_are_reached_directly(net: Net, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", net.proxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert UrllibClient(ssl_context=net.trust).get_json(f"{net.https}/jwks.json").status == 200
    assert UrllibClient(proxy=net.proxy.url).get_json(f"{net.http}/jwks.json").status == 200
    assert net.proxy.carried == []


def test_without_any_proxy_requests_go_directly(net: Net) -> None:
    assert urllib.request.getproxies().get("https") is None
    assert UrllibClient(ssl_context=net.trust).get_json(f"{net.https}/jwks.json").status == 200
    assert net.proxy.carried == []


def test_a_proxy_that_cannot_be_reached_is_a_network_error(net: Net) -> None:
    with pytest.raises(NetworkError) as caught:
        UrllibClient(proxy="http://127.0.0.1:9", timeout=2).get_json(f"{net.https}/jwks.json")
    assert caught.value.reason == "network" and "127.0.0.1:9" not in caught.value.message


@pytest.mark.parametrize("proxy", ["socks5://127.0.0.1:1080", "127.0.0.1:3128", "http://"])
def test_a_proxy_setting_that_is_not_an_http_url_is_refused(proxy: str) -> None:
    with pytest.raises(ValueError, match="proxy"):
        UrllibClient(proxy=proxy)


@pytest.mark.parametrize("where", ["app.config", "environment"])
def test_the_flask_extension_reaches_hawiya_through_hawiya_proxy(
    net: Net, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        HAWIYA_ISSUER=net.http,
        HAWIYA_CLIENT_ID="permits",
        HAWIYA_REDIRECT_URI="http://127.0.0.1:8101/auth/callback",
        HAWIYA_STORE=str(tmp_path / "sessions"),
    )
    if where == "environment":
        monkeypatch.setenv("HAWIYA_PROXY", net.proxy.url)
    else:
        app.config["HAWIYA_PROXY"] = net.proxy.url
    Hawiya(app)
    # The stand-in provider is no OpenID provider, so the sign-in cannot start: but the discovery
    # request went through the proxy.
    assert app.test_client().get("/auth/login").status_code == 502
    assert net.proxy.carried == [f"GET {net.http}/.well-known/openid-configuration"]


def test_a_bad_hawiya_proxy_is_refused_at_start_up(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        HAWIYA_ISSUER="https://hawiya.example",
        HAWIYA_CLIENT_ID="permits",
        HAWIYA_REDIRECT_URI="https://permits.example/auth/callback",
        HAWIYA_STORE=str(tmp_path / "sessions"),
        HAWIYA_PROXY="proxy.example:3128",
    )
    with pytest.raises(HawiyaRPError, match="HAWIYA_PROXY: the proxy must be an http"):
        Hawiya(app)
