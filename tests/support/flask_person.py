"""A person at a browser, played with Flask's test client: what tests/support/person.py does over
a real socket, but in-process. Follows Hawiya's real pages, fills the real forms (with their CSRF
tokens) and stops at the redirect that leaves Hawiya, or at the form_post page whose form the browser
would submit to the agency (OAuth 2.0 Form Post Response Mode)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.person import hidden_fields

_LINKS = re.compile(r"""\b(?:src|href|action|srcset|poster|formaction)\s*=\s*["']([^"']*)["']""", re.I)
_RESPONSE_FORM = re.compile(r'<form method="post" action="([^"]*)" id="response">(.*?)</form>', re.S)


def page_links(html: str) -> list[str]:
    """Every URL a page loads or links to (src, href, action and friends)."""
    return _LINKS.findall(html)


def is_same_origin(link: str) -> bool:
    """True for links that stay on Hawiya: paths, fragments and inline ``data:`` URLs."""
    return (link.startswith("/") and not link.startswith(("//", "/\\"))) or link.startswith(("#", "data:"))


def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, S256 code_challenge) pair (RFC 7636 4.1, 4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authorize_url(**params: str) -> str:
    """``/authorize`` with ``params`` in the query."""
    return "/authorize?" + urlencode(params)


def query_of(url: str) -> dict[str, list[str]]:
    """The query parameters of a URL."""
    return parse_qs(urlsplit(url).query)


@dataclass(frozen=True)
class AuthorizationResponse:
    """What reached the agency: a redirect (``query``) or a self-submitting form (``form_post``)."""

    mode: str
    #: Where the browser goes: the redirect's Location, or the form's action.
    uri: str
    #: The parameters the agency receives: the Location's query, or the form's fields.
    params: dict[str, list[str]]


def form_post_response(html: str) -> AuthorizationResponse | None:
    """The response a form_post page would submit, or None when ``html`` is not such a page."""
    found = _RESPONSE_FORM.search(html)
    if found is None:
        return None
    params: dict[str, list[str]] = {}
    for name, value in hidden_fields(found.group(2)).items():
        params.setdefault(name, []).append(value)
    return AuthorizationResponse("form_post", unescape(found.group(1)), params)


class FlaskPerson:
    """Drives Hawiya's pages in one browser (one cookie jar) through the Flask test client."""

    def __init__(
        self,
        app: Flask,
        username: str = "",
        password: str = "",
        *,
        base_url: str = "http://localhost",
        language: str = "en",
    ) -> None:
        self.browser: FlaskClient = app.test_client()
        self.username = username
        self.password = password
        self.base_url = base_url
        self.headers = {"Accept-Language": language}
        self.pages: list[TestResponse] = []

    def _is_idp(self, url: str) -> bool:
        return urlsplit(url).netloc == urlsplit(self.base_url).netloc

    def get(self, url: str, **kwargs: Any) -> TestResponse:
        """GET without following redirects."""
        return self.browser.get(url, base_url=self.base_url, headers=self.headers, **kwargs)

    def post(self, url: str, data: dict[str, str], **kwargs: Any) -> TestResponse:
        """POST a form without following redirects."""
        return self.browser.post(url, data=data, base_url=self.base_url, headers=self.headers, **kwargs)

    def follow(self, response: TestResponse, *, stop_at: str | None = None) -> TestResponse | str:
        """Follow redirects inside Hawiya; the URL that leaves Hawiya, or the page reached.

        With ``stop_at``, stop on the first page whose path is ``stop_at``.
        """
        for _ in range(20):
            if not response.location or response.status_code not in (301, 302, 303, 307, 308):
                return response
            target = urljoin(self.base_url + "/", response.location)
            if not self._is_idp(target):
                return target
            response = self.get(target)
            if stop_at is not None and response.request.path == stop_at:
                return response
        raise AssertionError("too many redirects")

    def open_page(self, url: str, path: str) -> TestResponse:
        """GET ``url`` and follow redirects to the page at ``path``."""
        reached = self.follow(self.get(url), stop_at=path)
        assert not isinstance(reached, str), f"left Hawiya for {reached} instead of reaching {path}"
        assert reached.request.path == path, f"reached {reached.request.path}, not {path}"
        return reached

    def sign_in(self, page: TestResponse) -> TestResponse:
        """Submit the sign-in form shown on ``page``."""
        fields = hidden_fields(page.get_data(as_text=True))
        fields.update(username=self.username, password=self.password)
        return self.post("/signin", fields)

    def decide(self, page: TestResponse, decision: str) -> TestResponse:
        """Press the approve or deny button of the consent form shown on ``page``."""
        fields = hidden_fields(page.get_data(as_text=True))
        fields["decision"] = decision
        return self.post("/consent", fields)

    def go(self, url: str, *, consent: str = "approve") -> str:
        """Follow ``url`` through sign-in and consent; return the URL that leaves Hawiya."""
        reached = self._walk(self.get(url), consent)
        if isinstance(reached, AuthorizationResponse):
            raise AssertionError(f"Hawiya answered with a form_post page to {reached.uri}, not a redirect")
        return reached

    def authorize(
        self,
        url: str,
        *,
        consent: str = "approve",
        form: dict[str, str] | None = None,
    ) -> AuthorizationResponse:
        """Send an authorization request (GET ``url``, or POST ``form`` to it), play sign-in and
        consent, and return the response the agency receives, in whichever mode Hawiya sent it."""
        response = self.get(url) if form is None else self.post(url, form)
        reached = self._walk(response, consent)
        if isinstance(reached, str):
            return AuthorizationResponse("query", reached, query_of(reached))
        return reached

    def _walk(self, response: TestResponse, consent: str) -> str | AuthorizationResponse:
        for _ in range(30):
            reached = self.follow(response)
            if isinstance(reached, str):
                return reached
            self.pages.append(reached)
            html = reached.get_data(as_text=True)
            posted = form_post_response(html) if reached.status_code == 200 else None
            if posted is not None:
                return posted
            step = self._next_step(reached, html, consent)
            if step is None:
                raise AssertionError(
                    f"unexpected page {reached.status_code} at {reached.request.path}: {html[:400]}"
                )
            response = step
        raise AssertionError("too many pages")

    def _next_step(self, reached: TestResponse, html: str, consent: str) -> TestResponse | None:
        """What the person does on this page (None: a page they did not expect)."""
        path = reached.request.path
        if path == "/signin" and 'name="password"' in html:
            if reached.status_code != 200:
                raise AssertionError(f"sign-in refused ({reached.status_code})")
            return self.sign_in(reached)
        if path == "/consent" and reached.status_code == 200:
            return self.decide(reached, consent)
        return None
