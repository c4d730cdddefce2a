"""The standard-library HTTP client: JSON in and out, no redirects followed, http(s) only, and
Cache-Control read the way the caches need it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hawiya_rp import NetworkError, UrllibClient
from hawiya_rp.http import max_age


class Handler(BaseHTTPRequestHandler):
    """/json answers JSON (echoing what it got), /redirect sends elsewhere, /text is not JSON."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/redirect":
            self._answer(302, b"", Location="/json")
        elif self.path == "/text":
            self._answer(200, b"<html>", Content_Type="text/html")
        else:
            echo = {"method": "GET", "authorization": self.headers.get("Authorization")}
            self._answer(
                200, json.dumps(echo).encode(), Content_Type="application/json", Cache_Control="max-age=7"
            )

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        echo = {
            "form": self.rfile.read(length).decode(),
            "authorization": self.headers.get("Authorization"),
            "content_type": self.headers.get("Content-Type"),
        }
        status = 307 if self.path == "/redirect" else 400
        self._answer(status, json.dumps(echo).encode(), Content_Type="application/json", Location="/json")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def test_get_json_with_headers(server: str) -> None:
    response = UrllibClient().get_json(f"{server}/json", headers={"Authorization": "Bearer t"})
    assert response.status == 200
    assert response.json == {"method": "GET", "authorization": "Bearer t"}
    assert max_age(response.headers) == 7


def test_post_form_with_basic_auth_and_error_statuses_as_responses(server: str) -> None:
    response = UrllibClient().post_form(f"{server}/token", {"grant_type": "x y"}, ("id", "se%2Fcret"))
    assert response.status == 400  # returned, not raised
    assert response.json["form"] == "grant_type=x+y"
    assert response.json["authorization"] == "Basic aWQ6c2UlMkZjcmV0"
    assert response.json["content_type"] == "application/x-www-form-urlencoded"


def test_redirects_are_never_followed(server: str) -> None:
    assert UrllibClient().get_json(f"{server}/redirect").status == 302
    assert UrllibClient().post_form(f"{server}/redirect", {"a": "b"}, ("id", "secret")).status == 307


def test_a_body_that_is_not_json_is_none(server: str) -> None:
    response = UrllibClient().get_json(f"{server}/text")
    assert response.json is None and response.content_type == "text/html"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "/relative", "http:///nohost"])
def test_only_http_and_https_urls_are_fetched(url: str) -> None:
    with pytest.raises(NetworkError) as caught:
        UrllibClient().get_json(url)
    assert caught.value.reason == "bad_url"


def test_an_unreachable_server_is_a_network_error() -> None:
    with pytest.raises(NetworkError) as caught:
        UrllibClient(timeout=2).get_json("http://127.0.0.1:9/x")
    assert caught.value.reason == "network"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"cache-control": "public, max-age=300"}, 300),
        ({"cache-control": "max-age=300", "age": "100"}, 200),
        ({"cache-control": "max-age=10", "age": "100"}, 0),
        ({"cache-control": "no-store"}, 0),
        ({"cache-control": "private, no-cache, max-age=60"}, 0),
        ({"cache-control": "s-maxage=30"}, 30),
    ],
)
def test_max_age(headers: dict[str, str], expected: int | None) -> None:
    assert max_age(headers) == expected
