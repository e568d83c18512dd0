"""A real CharterFlow server (``charterflow dev``: SQLite, local uploads, in-process jobs) and
Debian's Chromium driven by Playwright.

Screenshots go to ``test-artifacts/browser/<test>/`` at the repository root (git-ignored).
Every page is watched for script errors, Content-Security-Policy violations and requests to
any host but the app's own; tests assert that each list stays empty.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, sync_playwright

from tests.support.axe import axe_source
from tests.support.devserver import dev_server
from tests.support.processes import ManagedProcess

CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
PASSWORD = "correct horse battery"


@dataclass
class LiveApp:
    url: str
    process: ManagedProcess

    def register(self, name: str = "API User") -> tuple[str, str]:
        """A user made through the JSON API: ``(email, bearer token)``."""
        email = f"{uuid.uuid4().hex[:10]}@example.com"
        r = httpx.post(
            f"{self.url}/api/v1/auth/register",
            json={"email": email, "password": PASSWORD, "name": name},
        )
        assert r.status_code == 201, r.text
        return email, r.json()["access_token"]


@contextmanager
def serve_app(home: Path, port: int | None = None, **extra_env: str) -> Iterator[LiveApp]:
    """``charterflow dev`` in the scratch folder ``home``, exactly as a developer runs it."""
    with dev_server(home, port, **extra_env) as (url, proc):
        yield LiveApp(url=url, process=proc)


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    with serve_app(tmp_path_factory.mktemp("webapp")) as app:
        yield app


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium (never a downloaded browser); missing fails under CI=true."""
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing: run `make system-deps` (scripts/system-deps)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_path: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), headless=True)
        yield browser
        browser.close()


@dataclass
class Watch:
    """What a page did that it must not: script errors, CSP violations, outside requests."""

    errors: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.errors == [], f"script errors: {self.errors}"
        assert self.csp == [], f"Content-Security-Policy violations: {self.csp}"
        assert self.outside == [], f"requests to other hosts: {self.outside}"


@dataclass
class Browsing:
    page: Page
    watch: Watch
    app: LiveApp
    shots: Path

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def audit(self, where: str) -> None:
        """axe-core over the page as it is now: no accessibility violation of any impact."""
        if not self.page.evaluate("() => typeof window.axe === 'object'"):
            self.page.evaluate(axe_source() + "\n;0")  # via DevTools: CSP stays as it is
        violations = self.page.evaluate(
            """async () => {
                const result = await window.axe.run(document, { resultTypes: ["violations"] });
                return result.violations.map((v) => ({ id: v.id, impact: v.impact,
                    nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
            }"""
        )
        assert violations == [], f"axe-core on {where}: {violations}"


def _artifact_dir(nodeid: str) -> Path:
    path = ARTIFACTS / re.sub(r"[^\w.-]+", "_", nodeid.split("::")[-1])
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.png"):
        old.unlink()
    return path


def open_page(
    browser: Browser,
    app: LiveApp,
    request: pytest.FixtureRequest,
    viewport: dict[str, int],
    also_allowed: tuple[str, ...] = (),
) -> Iterator[Browsing]:
    """A fresh context that may reach only the app (and the origins in ``also_allowed``)."""
    context = browser.new_context(viewport=viewport, base_url=app.url)
    context.set_default_timeout(15_000)
    watch = Watch()

    def guard(route: Route) -> None:
        url = route.request.url
        allowed = (app.url + "/", "data:", "blob:", *(f"{a}/" for a in also_allowed))
        if url.startswith(allowed):
            route.continue_()
        else:
            watch.outside.append(url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.on("pageerror", lambda exc: watch.errors.append(str(exc)))

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            watch.csp.append(message.text)

    page.on("console", console)
    shots = _artifact_dir(request.node.nodeid)
    print(f"\nscreenshots: {shots}")
    try:
        yield Browsing(page=page, watch=watch, app=app, shots=shots)
    finally:
        context.close()


@pytest.fixture
def ui(browser: Browser, live_app: LiveApp, request: pytest.FixtureRequest) -> Iterator[Browsing]:
    """A fresh browser context (no cookies) on a desktop-sized window."""
    yield from open_page(browser, live_app, request, {"width": 1280, "height": 900})


@pytest.fixture
def phone(
    browser: Browser, live_app: LiveApp, request: pytest.FixtureRequest
) -> Iterator[Browsing]:
    """A fresh browser context the size of a phone (390x844 CSS pixels)."""
    yield from open_page(browser, live_app, request, {"width": 390, "height": 844})
