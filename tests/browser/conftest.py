"""Headless Chromium (Debian's `chromium`) driven by Playwright against pytest-django's live server."""

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.conftest import PASSWORD

# Playwright's sync API runs an event loop in this thread; Django's ORM refuses that without this.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
AXE = Path(__file__).resolve().parents[1] / "browser_assets" / "axe.min.js"
CHROMIUM = shutil.which("chromium")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if CHROMIUM is None and any("browser" in item.keywords for item in items):
        raise pytest.UsageError(
            "Browser tests need Debian's Chromium: `apt-get install chromium` (make test does it when run as root)."
        )


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900}, "timezone_id": "America/New_York"}


class Screen:
    """Helpers for one browser test: log in, screenshot, accessibility check."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.console_errors: list[str] = []
        page.on("console", self._on_console)
        page.set_default_timeout(10_000)

    def _on_console(self, msg: Any) -> None:
        # A 422 is how a form with errors answers; the browser reports it, but it is expected.
        if msg.type == "error" and "status of 422" not in msg.text:
            self.console_errors.append(msg.text)

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def login(self, username: str, password: str = PASSWORD) -> None:
        self.goto("/login/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state("networkidle")

    def logout(self) -> None:
        self.page.get_by_role("button", name="Log out").click()
        self.page.wait_for_url("**/login/")

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_accessible(self) -> None:
        """axe-core WCAG 2.x A/AA rules: no violations on the page as it stands."""
        # Injected over the DevTools protocol, which the page's CSP does not govern.
        self.page.evaluate(AXE.read_text())
        result = self.page.evaluate(
            "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
            "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})"
        )
        violations = [
            {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"]
        ]
        assert not violations, json.dumps(violations, indent=2)

    def assert_no_console_errors(self) -> None:
        assert not self.console_errors, self.console_errors


@pytest.fixture
def screen(page: Page, live_server: Any, django_db_serialized_rollback: None) -> Iterator[Screen]:
    # live_server makes the test transactional; serialized rollback restores the roles and
    # catalogs that migrations seeded, which a transactional test's flush would erase.
    s = Screen(page, live_server.url)
    yield s
