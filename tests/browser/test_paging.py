"""A notebook with more documents than one page: the rest are a click away, and their status
keeps updating like the first page's."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Browsing
from tests.browser.flows import create_notebook, csrf_token, register, wait_ready

pytestmark = pytest.mark.browser

PAGE = 100  # the API's largest page, which the notebook page shows first
COUNT = PAGE + 5


def test_documents_past_the_first_page_are_shown_on_request(ui: Browsing) -> None:
    page = ui.page
    register(page, "Paige Turner")
    notebook_id = create_notebook(page, "Archive")
    token = csrf_token(page)
    for i in range(COUNT):
        created = page.request.post(
            f"/api/v1/notebooks/{notebook_id}/documents",
            multipart={
                "file": {
                    "name": f"memo-{i:03d}.txt",
                    "mimeType": "text/plain",
                    "buffer": f"Memo number {i} of the archive.".encode(),
                },
                "title": f"Memo {i:03d}",
            },
            headers={"X-CSRF-Token": token},
        )
        assert created.status == 202, created.text()

    page.reload()
    rows = page.locator("#documents .document")
    expect(rows).to_have_count(PAGE)
    more = page.get_by_role("button", name="Show more")
    expect(more).to_contain_text(f"{PAGE} of {COUNT} shown")
    more.click()
    expect(rows).to_have_count(COUNT)
    expect(more).to_be_hidden()
    # Past the first page, in order, and kept up to date by the page's polling.
    expect(rows.last.locator(".doc-title")).to_have_text(f"Memo {COUNT - 1:03d}")
    wait_ready(page, f"Memo {COUNT - 1:03d}")
    ui.shot("01-all-documents")
    ui.watch.assert_clean()
