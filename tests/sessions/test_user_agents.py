"""The account area names each session's browser and system from real ``User-Agent`` headers, where
the engines a browser is built on also appear in its header."""

from __future__ import annotations

import pytest

from idp.sessions.user_agents import Device, parse_user_agent

#: Headers as the browsers send them (current versions, mid-2024 to 2025).
HEADERS = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/126.0.0.0 Safari/537.36",
        "Chrome",
        "Windows",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87",
        "Edge",
        "Windows",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Firefox",
        "Windows",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
        " Version/17.5 Safari/605.1.15",
        "Safari",
        "macOS",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Firefox",
        "macOS",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
        " Version/17.5 Mobile/15E148 Safari/604.1",
        "Safari",
        "iOS",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
        " CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
        "Chrome",
        "iOS",
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
        " FxiOS/127.0 Mobile/15E148 Safari/605.1.15",
        "Firefox",
        "iOS",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
        " EdgiOS/126.2592.86 Version/17.0 Mobile/15E148 Safari/604.1",
        "Edge",
        "iOS",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/126.0.6478.122 Mobile Safari/537.36",
        "Chrome",
        "Android",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko)"
        " SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
        "Samsung Internet",
        "Android",
    ),
    ("Mozilla/5.0 (Android 14; Mobile; rv:128.0) Gecko/128.0 Firefox/128.0", "Firefox", "Android"),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/126.0.0.0 Mobile Safari/537.36 EdgA/126.0.2592.80",
        "Edge",
        "Android",
    ),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox", "Linux"),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0",
        "Opera",
        "Linux",
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/126.0.0.0 Safari/537.36",
        "Chrome",
        "ChromeOS",
    ),
]


@pytest.mark.parametrize(("header", "browser", "system"), HEADERS, ids=[f"{b}-{s}" for _h, b, s in HEADERS])
def test_real_headers_name_their_browser_and_system(header: str, browser: str, system: str) -> None:
    assert parse_user_agent(header) == Device(browser=browser, os=system)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, Device("", "")),
        ("", Device("", "")),
        ("curl/8.5.0", Device("", "")),
        ("python-requests/2.32.3", Device("", "")),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64)", Device("", "Windows")),
    ],
    ids=["absent", "empty", "curl", "requests", "system-only"],
)
def test_what_it_does_not_recognise_stays_unnamed(header: str | None, expected: Device) -> None:
    assert parse_user_agent(header) == expected
