"""Headless Chromium for the browser tests: Debian's chromium and chromium-driver, the flags
it needs here (running as root, no network chatter), a fresh profile each time, English first."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from werkzeug.serving import BaseWSGIServer, make_server

from tests.support.needs import unavailable

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1100,900",
)
#: Seconds an explicit wait may take.
WAIT = 15


def require_browser() -> None:
    """Skip locally (fail in CI) when Chromium or its driver is missing."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        unavailable(f"{', '.join(missing)} missing: apt-get install -y chromium chromium-driver")


def serve(app: Any, host: str, port: int) -> tuple[BaseWSGIServer, threading.Thread]:
    """Serve a WSGI app on a real socket in a daemon thread."""
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def chromium() -> Iterator[WebDriver]:
    """A fresh headless Chromium (own profile, English first, console logged), quit afterwards.

    Use as the body of a pytest fixture: ``yield from chromium()``.
    """
    require_browser()
    profile = tempfile.mkdtemp(prefix="hawiya-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        # An explicit driver path: Selenium Manager would otherwise try the network.
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            yield driver
        finally:
            driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
