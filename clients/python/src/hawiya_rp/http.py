"""The library's only I/O: JSON over HTTP(S), behind one small injectable interface.

``UrllibClient`` uses the standard library. It never follows redirects (a redirected token request
would carry the client's credentials elsewhere; discovery and JWKS must come from where they were
configured), speaks only http and https, reads at most ``MAX_BODY`` bytes, and turns every transport
failure into ``NetworkError``. Tests and applications with their own HTTP stack pass another
``HttpClient``.

Proxies: ``UrllibClient(proxy="http://egress.gov.example:3128")`` sends every request through that
proxy (an https URL through a ``CONNECT`` tunnel, so TLS is still checked end to end against the
provider's name); without one, the standard environment variables (``HTTPS_PROXY``, ``HTTP_PROXY``,
lower case too) are used. Either way ``NO_PROXY`` names the hosts reached directly.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

from hawiya_rp.errors import NetworkError

#: Largest response body read (discovery documents and JWK Sets are a few kilobytes).
MAX_BODY = 1024 * 1024
USER_AGENT = "hawiya-rp/0.1"
_MAX_AGE = re.compile(r"(?:^|,)\s*(s-maxage|max-age)\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(no-store|no-cache)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Response:
    """An HTTP answer: status, headers (names in lower case) and the body parsed as JSON (None when
    the body is empty or not JSON)."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None

    @property
    def content_type(self) -> str:
        """The media type, without parameters, in lower case."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class HttpClient(Protocol):
    """What the library needs from HTTP. ``auth`` is (user, password) for HTTP Basic."""

    def get_json(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        """GET ``url``."""
        ...

    def post_form(
        self,
        url: str,
        data: Mapping[str, str],
        auth: tuple[str, str] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """POST ``data`` as application/x-www-form-urlencoded to ``url``."""
        ...


def max_age(headers: Mapping[str, str]) -> int | None:
    """How long a response may be cached, from ``Cache-Control`` (minus ``Age``); None when it does
    not say; 0 for ``no-store``/``no-cache``."""
    control = headers.get("cache-control", "")
    if _NO_CACHE.search(control):
        return 0
    found = _MAX_AGE.search(control)
    if found is None:
        return None
    age = headers.get("age", "0").strip()
    return max(0, int(found.group(2)) - (int(age) if age.isdigit() else 0))


def _proxies(proxy: str | None) -> dict[str, str]:
    """The proxy for http and https URLs: ``proxy``, else the environment's (none for other schemes)."""
    if proxy is not None:
        parts = urlsplit(proxy)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "the proxy must be an http:// or https:// URL with a host, e.g. http://proxy:3128"
            )
        return {"http": proxy, "https": proxy}
    found = urllib.request.getproxies()
    return {scheme: found[scheme] for scheme in ("http", "https") if found.get(scheme)}


def _no_redirect_opener(context: ssl.SSLContext | None, proxy: str | None) -> urllib.request.OpenerDirector:
    """An opener with only the proxy, HTTP and HTTPS handlers: no redirects, no file:// or ftp://,
    and error statuses returned as responses instead of raised."""
    opener = urllib.request.OpenerDirector()
    # The proxy handler rewrites the request (or skips it for a NO_PROXY host) before it is sent;
    # it never follows anything.
    opener.add_handler(urllib.request.ProxyHandler(_proxies(proxy)))
    opener.add_handler(urllib.request.HTTPHandler())
    opener.add_handler(urllib.request.HTTPSHandler(context=context))
    return opener


class UrllibClient:
    """``HttpClient`` on the standard library.

    ``proxy`` (``http://[user:password@]host:port``) carries every request; None: the environment's
    ``HTTPS_PROXY``/``HTTP_PROXY`` as they were when the client was made. ``NO_PROXY`` applies to
    both.
    """

    def __init__(
        self,
        timeout: float = 5,
        *,
        ssl_context: ssl.SSLContext | None = None,
        proxy: str | None = None,
    ) -> None:
        self.timeout = timeout
        self._opener = _no_redirect_opener(ssl_context or ssl.create_default_context(), proxy)

    def get_json(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        """GET ``url`` asking for JSON."""
        return self._send(_request(url, None), headers)

    def post_form(
        self,
        url: str,
        data: Mapping[str, str],
        auth: tuple[str, str] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """POST a form; ``auth`` goes in an HTTP Basic ``Authorization`` header."""
        request = _request(url, urlencode(dict(data)).encode("ascii"))
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        if auth is not None:
            pair = f"{auth[0]}:{auth[1]}".encode()
            request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode("ascii"))
        return self._send(request, headers)

    def _send(self, request: urllib.request.Request, headers: Mapping[str, str] | None) -> Response:
        parts = urlsplit(request.full_url)
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", USER_AGENT)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        where = f"{parts.scheme}://{parts.netloc}{parts.path}"  # never the query: it may hold a token
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                body = answer.read(MAX_BODY + 1)
                status = answer.status
                answer_headers = {name.lower(): value for name, value in answer.headers.items()}
        except (OSError, urllib.error.URLError, ValueError) as exc:
            raise NetworkError(f"{where} could not be reached ({type(exc).__name__})") from None
        if len(body) > MAX_BODY:
            raise NetworkError(f"{where} answered more than {MAX_BODY} bytes", reason="too_large")
        return Response(status, answer_headers, _json_or_none(body))


def _request(url: str, data: bytes | None) -> urllib.request.Request:
    """A GET (no ``data``) or POST request for an http(s) URL; NetworkError for any other."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise NetworkError(f"refusing to fetch a {parts.scheme or 'relative'} URL", reason="bad_url")
    return urllib.request.Request(url, data=data, method="GET" if data is None else "POST")  # noqa: S310 - http(s) only


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
