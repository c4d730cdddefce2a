"""Fixtures for the session tests: people at browsers that name themselves (a ``User-Agent`` and an
address of their own), the agency of the test world, and a recorder of ended sessions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from flask import Flask

from idp.clock import FrozenClock
from idp.sessions.service import SsoSession
from tests.conftest import PASSWORD, World
from tests.support.mfa import MfaPerson

FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0.6478.122 Mobile Safari/537.36"
)


@dataclass
class Ended:
    """An end listener that remembers what it was told."""

    calls: list[tuple[SsoSession, str]] = field(default_factory=list)

    def __call__(self, session: SsoSession, reason: str) -> None:
        self.calls.append((session, reason))

    @property
    def reasons(self) -> list[str]:
        """The reasons, in the order the sessions ended."""
        return [reason for _session, reason in self.calls]


@pytest.fixture
def ended() -> Ended:
    """A fresh recorder of ended sessions."""
    return Ended()


@pytest.fixture
def browser(app: Flask, world: World, clock: FrozenClock) -> Callable[..., MfaPerson]:
    """A person at a new browser: ``browser("citizen", FIREFOX_WINDOWS, "192.0.2.10")``."""

    def open_browser(username: str, user_agent: str, ip: str = "127.0.0.1") -> MfaPerson:
        person = MfaPerson(app, username, PASSWORD, clock=clock)
        person.headers["User-Agent"] = user_agent
        person.browser.environ_base["REMOTE_ADDR"] = ip
        return person

    return open_browser
