"""Document text is data, never markup: an uploaded HTML file with scripts, and titles made of
tags, render inert in the notebook, the answer and the citation dialog."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Browsing
from tests.browser.flows import create_notebook, csrf_token, register, wait_ready

pytestmark = pytest.mark.browser

LITERAL = '<img src=x onerror="window.__xss=2">'
HOSTILE_HTML = f"""<!doctype html>
<html><head><title>Checklist</title><script>window.__xss = 1</script></head>
<body>
<h1>Launch checklist</h1>
<p>Launch checklist: verify the backups {LITERAL.replace("<", "&lt;").replace(">", "&gt;")}
before the release, then page the on-call lead.</p>
<img src="x" onerror="window.__xss = 3">
<script>document.body.dataset.owned = "yes"</script>
</body></html>
"""
HOSTILE_TITLE = "<script>window.__xss=4</script>Ops <b>runbook</b>"
NOTEBOOK_TITLE = '<img src=x onerror="window.__xss=5">Release'


def assert_inert(page: Page) -> None:
    """No injected code ran and no element came from data."""
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("document.body.dataset.owned") is None
    sources = page.evaluate("[...document.scripts].map((s) => s.getAttribute('src'))")
    assert sources, "the page's own scripts are there"
    assert all(src and src.startswith("/static/") for src in sources), sources
    assert page.locator("#main img, #main b, dialog img").count() == 0


def test_uploaded_html_and_tag_titles_render_as_text(ui: Browsing) -> None:
    page = ui.page
    register(page, "Mallory Tester")
    notebook_id = create_notebook(page, NOTEBOOK_TITLE)
    expect(page.locator("h1")).to_have_text(NOTEBOOK_TITLE)

    page.locator("#file-input").set_input_files(
        files=[{"name": "checklist.html", "mimeType": "text/html", "buffer": HOSTILE_HTML.encode()}]
    )
    # A title made of tags, through the JSON API with the session cookie and CSRF header.
    created = page.request.post(
        f"/api/v1/notebooks/{notebook_id}/documents",
        multipart={
            "file": {"name": "ops.txt", "mimeType": "text/plain", "buffer": b"Ops runbook text."},
            "title": HOSTILE_TITLE,
        },
        headers={"X-CSRF-Token": csrf_token(page)},
    )
    assert created.status == 202, created.text()
    wait_ready(page, "checklist")
    page.reload()  # the hostile title, rendered by the server this time
    wait_ready(page, "checklist")
    expect(page.locator(".doc-title").filter(has_text="Ops")).to_have_text(HOSTILE_TITLE)
    wait_ready(page, "Ops")
    assert_inert(page)
    ui.shot("01-notebook")

    page.get_by_label("Question", exact=True).fill(
        "What does the launch checklist say about backups?"
    )
    page.get_by_role("button", name="Ask").click()
    cited = page.locator("#thread .turn .citations li").filter(has_text="verify the backups")
    expect(cited.first).to_contain_text(LITERAL, timeout=60_000)  # in the list, as text
    cited.first.get_by_role("button").click()
    passage = page.locator("dialog#passage .passage-text")
    expect(passage).to_contain_text("Launch checklist")
    expect(passage).to_contain_text(LITERAL)  # the markup shows as the characters it is
    # Only the citation view's own elements (a paragraph, the mark): none from the document.
    tags = passage.evaluate("(el) => [...el.querySelectorAll('*')].map((e) => e.tagName)")
    assert set(tags) <= {"P", "MARK"}, tags
    expect(passage.locator("mark")).to_contain_text(LITERAL)
    assert_inert(page)
    ui.shot("02-citation")

    page.goto("/app")
    expect(page.get_by_role("link", name=NOTEBOOK_TITLE)).to_be_visible()
    assert_inert(page)

    # The original file is only ever a download, sandboxed by the API's CSP.
    documents = page.request.get(f"/api/v1/notebooks/{notebook_id}/documents").json()["items"]
    html_doc = next(d for d in documents if d["filename"] == "checklist.html")
    raw = page.request.get(f"/api/v1/documents/{html_doc['id']}/content")
    assert raw.headers["content-disposition"].startswith("attachment")
    assert raw.headers["content-security-policy"].startswith("default-src 'none'")
    ui.watch.assert_clean()
