"""A person at a browser, played over plain HTTP: follows Hawiya's real pages, fills the real
forms (with their CSRF tokens; on the organisation picker, the first organisation) and stops at the
redirect back to the agency."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urljoin, urlsplit

import requests

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
_ORGANISATION = re.compile(r'<input type="radio" name="organisation" id="[^"]*" value="([^"]+)"')


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of a page's forms."""
    return {name: unescape(value) for name, value in _HIDDEN.findall(html)}


class Person:
    """Drives Hawiya's pages like a browser (cookies kept in one session)."""

    def __init__(self, idp_url: str, username: str, password: str) -> None:
        self.idp = idp_url
        self.username = username
        self.password = password
        self.http = requests.Session()
        self.pages: list[str] = []

    def _is_idp(self, url: str) -> bool:
        return urlsplit(url).netloc == urlsplit(self.idp).netloc

    def go(
        self,
        url: str,
        *,
        consent: str = "approve",
        method: str = "GET",
        data: dict[str, str] | None = None,
    ) -> str:
        """Follow ``url`` through sign-in and consent; return the URL that leaves Hawiya."""
        response = self.http.request(method, url, data=data, allow_redirects=False, timeout=10)
        for _ in range(20):
            if response.is_redirect:
                target = urljoin(response.url, response.headers["Location"])
                if not self._is_idp(target):
                    return target
                response = self.http.get(target, allow_redirects=False, timeout=10)
                continue
            html = response.text
            self.pages.append(html)
            path = urlsplit(response.url).path
            fields = hidden_fields(html)
            if path == "/signin" and 'name="password"' in html:
                if response.status_code == 401:
                    raise AssertionError("sign-in refused")
                fields.update(username=self.username, password=self.password)
                response = self.http.post(
                    urljoin(self.idp, "/signin"), data=fields, allow_redirects=False, timeout=10
                )
            elif path == "/authorize/organisation" and _ORGANISATION.search(html):
                # Acting on behalf (the business scope): the first organisation offered.
                fields.update(organisation=unescape(_ORGANISATION.findall(html)[0]), decision="choose")
                response = self.http.post(
                    urljoin(self.idp, "/authorize/organisation"),
                    data=fields,
                    allow_redirects=False,
                    timeout=10,
                )
            elif path == "/consent":
                fields["decision"] = consent
                response = self.http.post(
                    urljoin(self.idp, "/consent"), data=fields, allow_redirects=False, timeout=10
                )
            else:
                raise AssertionError(f"unexpected page {response.status_code} at {response.url}")
        raise AssertionError("too many redirects")

    def page(self, url: str) -> requests.Response:
        """GET a page without following redirects."""
        return self.http.get(url, allow_redirects=False, timeout=10)
