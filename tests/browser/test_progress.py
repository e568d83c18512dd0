"""Truthful progress in a real browser: a document row says what ingestion is doing (queued,
reading page n of N, splitting, embedding, ready, or failed with the reason), and the upload
list follows the same document to the same end instead of a fixed "processing starts"."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Browsing
from tests.browser.flows import INGEST_TIMEOUT_MS, create_notebook, register, wait_ready
from tests.ingest.samples import CORRUPT_PDF, PDF_PAGE_1, PDF_PAGE_2, PDF_PAGE_3, pdf

pytestmark = pytest.mark.browser

# Every label a row may show on its way (the stage's, or the status's on an API without one).
LABELS = r"^(Queued|Processing|Reading|Reading page \d+ of \d+|Splitting into passages|Embedding passages|Embedding passages: \d+ of \d+|Ready|Failed)$"  # noqa: E501

WATCH_ROWS = """() => {
    window.seenLabels = [];
    const record = () => {
        for (const el of document.querySelectorAll("#documents .status")) {
            const last = window.seenLabels[window.seenLabels.length - 1];
            if (el.textContent !== last) window.seenLabels.push(el.textContent);
        }
    };
    new MutationObserver(record).observe(document.getElementById("documents"),
        { subtree: true, childList: true, characterData: true });
}"""


def test_uploads_and_rows_follow_each_document_to_ready_or_failed(ui: Browsing) -> None:
    page = ui.page
    register(page)
    create_notebook(page, "Stages")
    page.evaluate(WATCH_ROWS)
    page.locator("#file-input").set_input_files(
        files=[
            {
                "name": "plan.pdf",
                "mimeType": "application/pdf",
                "buffer": pdf([PDF_PAGE_1, PDF_PAGE_2, PDF_PAGE_3]),
            },
            {"name": "broken.pdf", "mimeType": "application/pdf", "buffer": CORRUPT_PDF},
        ]
    )
    good = page.locator("#uploads .upload").filter(has_text="plan.pdf")
    bad = page.locator("#uploads .upload").filter(has_text="broken.pdf")
    expect(good).to_have_attribute("data-state", "ready", timeout=INGEST_TIMEOUT_MS)
    expect(good.locator(".upload-state")).to_have_text(
        "Uploaded · Ready: it can be searched and asked about."
    )
    expect(bad).to_have_attribute("data-state", "failed", timeout=INGEST_TIMEOUT_MS)
    expect(bad.locator(".upload-state")).to_contain_text("Uploaded · Failed: ")
    wait_ready(page, "plan")
    failed = page.locator("#documents .document").filter(has_text="broken")
    expect(failed.locator(".status")).to_have_text("Failed")
    reason = failed.locator(".doc-error")
    expect(reason).to_be_visible()
    # The upload list gives the same reason as the row.
    expect(bad.locator(".upload-state")).to_have_text(f"Uploaded · Failed: {reason.inner_text()}")
    seen = page.evaluate("() => window.seenLabels")
    assert seen, "the rows were never filled in"
    for label in seen:
        assert re.match(LABELS, label), (label, seen)
    ui.shot("01-ready-and-failed")
    ui.audit("uploads settled")
    page.reload()  # the server renders the same words
    expect(
        page.locator("#documents .document").filter(has_text="plan").locator(".status")
    ).to_have_text("Ready")
    expect(failed.locator(".status")).to_have_text("Failed")
    ui.watch.assert_clean()


def test_each_stage_reads_as_what_ingestion_is_doing(ui: Browsing) -> None:
    """The words for every stage, shown through the page's own update path with documents as
    the API describes them while they are being ingested (too brief to catch on a real one)."""
    page = ui.page
    register(page)
    create_notebook(page, "Words")
    base = {
        "id": "f" * 32, "title": "manual", "filename": "manual.pdf", "size_bytes": 2048,
        "media_type": "application/pdf", "error": None,
    }  # fmt: skip
    row = page.locator('#documents .document[data-document-id="' + "f" * 32 + '"]')
    cases = [
        ({"status": "pending", "stage": "queued", "progress": None}, "Queued", None),
        (
            {"status": "processing", "stage": "reading", "progress": {"done": 1, "total": 3}},
            "Reading page 2 of 3",
            ("1", "3"),
        ),
        (
            {"status": "processing", "stage": "chunking", "progress": None},
            "Splitting into passages",
            None,
        ),
        (
            {"status": "processing", "stage": "embedding", "progress": {"done": 40, "total": 50}},
            "Embedding passages: 40 of 50",
            ("40", "50"),
        ),
        ({"status": "processing", "progress": None}, "Processing", None),  # an API without stages
        ({"status": "ready", "stage": "ready", "progress": None}, "Ready", None),
    ]
    for fields, label, bar in cases:
        page.evaluate(
            "(doc) => window.CharterFlow.notebook.upsertDocument(doc)", {**base, **fields}
        )
        expect(row.locator(".status")).to_have_text(label)
        progress = row.locator("progress")
        if bar:
            expect(progress).to_be_visible()
            expect(progress).to_have_attribute("value", bar[0])
            expect(progress).to_have_attribute("max", bar[1])
            expect(progress).to_have_accessible_name(f"{label}: manual")
        else:
            expect(progress).to_be_hidden()
    expect(row.get_by_role("button", name="Preview the text of manual")).to_be_visible()
    failed = {
        "status": "failed",
        "stage": "failed",
        "progress": None,
        "error": "the PDF is damaged",
    }
    page.evaluate("(doc) => window.CharterFlow.notebook.upsertDocument(doc)", {**base, **failed})
    expect(row.locator(".status")).to_have_text("Failed")
    expect(row.locator(".doc-error")).to_have_text("the PDF is damaged")
    expect(row.get_by_role("button", name="Preview the text of manual")).to_be_hidden()
    ui.watch.assert_clean()
