"""A real browser against a real server: Playwright driving Debian's chromium, the app in a
werkzeug server thread on a free loopback port with the console SMS backend.

Without /usr/bin/chromium the browser tests skip with the reason; in CI (CI=true) they fail
instead, because CI installs chromium and a skip there would hide a broken pipeline.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from coachbot.app import create_app
from coachbot.runtime import Runtime

CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture
def chromium() -> Iterator[Any]:
    # Per test, not per session: Playwright's sync API keeps an asyncio loop running in this
    # thread while it is open, which would break later tests that call asyncio.run().
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} not found (apt-get install -y chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is a test dependency
        problem = "the playwright package is not installed"
    if problem:
        if IN_CI:
            pytest.fail(f"browser tests cannot run in CI: {problem}")
        pytest.skip(f"browser tests skipped: {problem}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live_server(runtime: Runtime) -> Iterator[str]:
    app = create_app(runtime=runtime)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def page(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = chromium.new_context(accept_downloads=True)
    context.set_default_timeout(15_000)
    browser_page = context.new_page()
    yield browser_page
    context.close()


class Screenshots:
    """Keeps a screenshot of each page visited, named in order, under test-artifacts/."""

    def __init__(self, page: Any, name: str) -> None:
        self.page = page
        self.folder = ARTIFACTS / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def take(self, label: str) -> None:
        self.count += 1
        self.page.screenshot(
            path=str(self.folder / f"{self.count:02d}-{label}.png"), full_page=True
        )


@pytest.fixture
def shots(page: Any, request: pytest.FixtureRequest) -> Screenshots:
    return Screenshots(page, request.node.name)
