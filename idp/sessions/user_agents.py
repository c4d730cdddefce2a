"""Browser and operating system from a ``User-Agent`` header (RFC 9110 10.1.5), for people to
recognise their own sessions in the account area.

A small table of tokens, not a database: enough to tell "Firefox on Windows" from "Safari on an
iPhone". The header is whatever the browser chose to send, so the result is a hint for the person,
never an input to a security decision. Browsers built on another's engine name that engine too
("Chrome" in Edge's header, "Safari" in Chrome's), so the more specific tokens are tried first.
"""

from __future__ import annotations

from dataclasses import dataclass

#: (token in the header, browser name), most specific first.
_BROWSERS: tuple[tuple[str, str], ...] = (
    ("Edg/", "Edge"),  # Chromium Edge on desktop
    ("EdgA/", "Edge"),  # Android
    ("EdgiOS/", "Edge"),  # iOS
    ("Edge/", "Edge"),  # the older EdgeHTML Edge
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chrome"),
    ("Safari/", "Safari"),
)

#: (token in the header, operating system), most specific first: iOS and Android headers also
#: say "like Mac OS X" and "Linux".
_SYSTEMS: tuple[tuple[str, str], ...] = (
    ("iPhone", "iOS"),
    ("iPad", "iOS"),
    ("iPod", "iOS"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("CrOS", "ChromeOS"),
    ("Macintosh", "macOS"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)


@dataclass(frozen=True)
class Device:
    """What a person would call the browser and system of a session; empty when not recognised."""

    browser: str
    os: str


def parse_user_agent(header: str | None) -> Device:
    """The browser and operating system named by a ``User-Agent`` header."""
    text = header or ""
    browser = next((name for token, name in _BROWSERS if token in text), "")
    system = next((name for token, name in _SYSTEMS if token in text), "")
    return Device(browser=browser, os=system)
