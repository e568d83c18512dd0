"""Steps that several browser tests take, written as a person would take them."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect

from tests.browser.conftest import PASSWORD

# Ingestion runs in the server process; a slow shared machine gets generous time.
INGEST_TIMEOUT_MS = 120_000


def register(page: Page, name: str = "Ada Lovelace") -> str:
    """Sign up through the form; returns the email. Ends on the dashboard."""
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    page.goto("/register")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/app$"))
    return email


def create_notebook(page: Page, title: str) -> str:
    """Create a notebook from the dashboard; returns its id. Ends on the notebook page."""
    page.goto("/app")
    page.get_by_label("Title").fill(title)
    page.get_by_role("button", name="Create notebook").click()
    expect(page).to_have_url(re.compile(r"/app/notebooks/[0-9a-f]{32}$"))
    page.wait_for_load_state("domcontentloaded")  # the page's deferred scripts have run
    return page.url.rsplit("/", 1)[-1]


def drop_file(page: Page, name: str, content: str, media_type: str = "text/plain") -> None:
    """Drop a file on the drop zone, as dragging it from the desktop does."""
    transfer = page.evaluate_handle(
        """([name, content, type]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([content], name, { type }));
            return transfer;
        }""",
        [name, content, media_type],
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})


def wait_ready(page: Page, title: str) -> None:
    row = page.locator("#documents .document").filter(has_text=title)
    expect(row).to_have_attribute("data-status", "ready", timeout=INGEST_TIMEOUT_MS)
    expect(row.locator(".status")).to_have_text("Ready")


def csrf_token(page: Page) -> str:
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token
    return token
