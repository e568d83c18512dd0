"""Citations people can check, in a real browser: the cited sentence marked inside its
paragraph, a source's text previewed, a PDF opened in the app at the cited page with the
passage highlighted (pdf.js served by the app, nothing from elsewhere, the CSP unchanged),
uploads that report each document's real stage until it is ready, and a question limited to
the sources chosen for it."""

from __future__ import annotations

import re

import pytest
from charterflow.web import vendor
from playwright.sync_api import Page, expect

from tests.api.test_conversations import ATLAS, BOREALIS
from tests.browser.conftest import IN_CI, Browsing
from tests.browser.flows import INGEST_TIMEOUT_MS, create_notebook, drop_file, register, wait_ready
from tests.browser.test_layout import assert_no_horizontal_scroll
from tests.ingest.samples import PDF_PAGE_1, PDF_PAGE_2, PDF_PAGE_3, pdf

pytestmark = pytest.mark.browser

# Markdown: headings, and paragraphs separated by blank lines, as the parser's blocks are.
HANDBOOK = "\n\n".join(
    [
        "# Harbour operations handbook",
        "## Pilots",
        "Tugs are assigned by the duty pilot for every vessel over ninety metres. The pilot "
        "boards at the outer buoy, never inside the breakwater.",
        "## Moorings",
        "Mooring lines are checked by the deck crew before each shift. Every mooring line is "
        "inspected at seven in the morning by the harbour master. A frayed line is replaced "
        "before the next tide, and the replacement is logged.",
        "Visitors sign in at the gatehouse and wear a high-visibility vest on the quay.",
    ]
)
PARAGRAPH = HANDBOOK.split("\n\n")[4]


@pytest.fixture(scope="module")
def pdfjs() -> None:
    """pdf.js in static/vendor (what `make dev`/`make test` and the image build do): vendored
    here if missing; a machine that cannot fetch it fails under CI=true."""
    try:
        vendor.ensure()
    except vendor.VendorError as exc:
        if IN_CI:
            pytest.fail(f"pdf.js could not be vendored: {exc}", pytrace=False)
        pytest.skip(f"pdf.js could not be vendored: {exc}")


def _ask(page: Page, question: str) -> object:
    turns = page.locator("#thread .turn")
    before = turns.count()
    page.get_by_label("Question", exact=True).fill(question)
    page.get_by_role("button", name="Ask").click()
    expect(turns).to_have_count(before + 1)
    turn = turns.nth(before)
    expect(turn).to_have_attribute("data-status", "complete", timeout=60_000)
    return turn


def test_a_citation_shows_its_sentence_marked_in_its_paragraph(ui: Browsing) -> None:
    page = ui.page
    register(page)
    create_notebook(page, "Harbour")
    drop_file(page, "handbook.md", HANDBOOK, "text/markdown")
    wait_ready(page, "handbook")

    turn = _ask(page, "When is every mooring line inspected by the harbour master?")
    expect(turn.locator(".answer-text")).to_contain_text("seven in the morning")
    # Nothing tells a quoted answer from a written one but this label: it must be there.
    expect(turn.locator(".answer-mode")).to_have_text("Quoted from your sources")
    cited = turn.locator(".citations li").filter(has_text="seven in the morning").first
    cited.locator(".passage-link").click()

    dialog = page.locator("dialog#passage")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#passage-title")).to_have_text("handbook")
    mark = dialog.locator(".passage-text mark")
    expect(mark).to_have_count(1)
    expect(mark).to_contain_text("inspected at seven in the morning")
    # The whole paragraph around it, and only that paragraph.
    expect(dialog.locator(".passage-text p")).to_have_count(1)
    expect(dialog.locator(".passage-text p")).to_have_text(PARAGRAPH)
    expect(dialog.locator(".passage-text")).not_to_contain_text("Visitors sign in")
    expect(dialog.locator(".pdf-view")).to_be_hidden()  # a text file has no page to show
    expect(dialog.locator('[data-field="where"]')).to_have_text(
        "Section: Harbour operations handbook \u203a Moorings"
    )
    ui.shot("01-citation-in-its-paragraph")
    ui.audit("the citation view")

    # From there, the whole text with the same sentence marked.
    dialog.get_by_role("button", name="Show in the whole text").click()
    preview = page.locator("dialog#preview")
    expect(preview).to_be_visible()
    expect(dialog).to_be_hidden()
    expect(preview.locator("#preview-title")).to_have_text("handbook")
    paragraphs = [b for b in HANDBOOK.split("\n\n") if not b.startswith("#")]
    for paragraph in paragraphs:  # each paragraph, once, as one
        expect(preview.locator(".preview-text p").filter(has_text=paragraph)).to_have_count(1)
    expect(preview.locator(".preview-text mark")).to_contain_text("seven in the morning")
    ui.shot("02-whole-text")
    page.keyboard.press("Escape")
    expect(preview).to_be_hidden()

    # A source row opens the same preview; closing it gives focus back to the row's button.
    button = page.get_by_role("button", name="Preview the text of handbook")
    button.click()
    expect(preview).to_be_visible()
    expect(preview.locator(".preview-text p").first).to_contain_text("Harbour operations handbook")
    expect(preview.locator(".preview-text mark")).to_have_count(0)
    expect(preview.locator('[data-field="meta"]')).to_contain_text("characters of extracted text")
    ui.audit("the text preview")
    preview.get_by_role("button", name="Close").click()
    expect(button).to_be_focused()
    ui.watch.assert_clean()


def _open_the_budget_citation(page: Page) -> None:
    """Upload a three-page PDF, ask what its page 2 says, open that citation."""
    register(page)
    create_notebook(page, "Falcon")
    page.locator("#file-input").set_input_files(
        files=[
            {
                "name": "falcon-plan.pdf",
                "mimeType": "application/pdf",
                "buffer": pdf([PDF_PAGE_1, PDF_PAGE_2, PDF_PAGE_3]),
            }
        ]
    )
    upload = page.locator("#uploads .upload").filter(has_text="falcon-plan.pdf")
    expect(upload).to_have_attribute("data-state", "ready", timeout=INGEST_TIMEOUT_MS)
    wait_ready(page, "falcon-plan")
    row = page.locator("#documents .document").filter(has_text="falcon-plan")
    stage = row.get_attribute("data-stage")
    assert stage in {"", "ready"}  # "" from an API without stages
    tab = page.locator("#tab-conversation")
    if tab.is_visible():  # a phone shows one panel at a time
        tab.click()
    turn = _ask(page, "How much is the Falcon pilot budget capped at?")
    cited = turn.locator(".citations li").filter(has_text="forty-eight thousand euros").first
    expect(cited).to_contain_text("page 2")
    cited.locator(".passage-link").click()


def test_a_pdf_citation_opens_the_cited_page_with_the_passage_highlighted(
    ui: Browsing, pdfjs: None
) -> None:
    page = ui.page
    _open_the_budget_citation(page)

    dialog = page.locator("dialog#passage")
    expect(dialog.locator('[data-field="where"]')).to_contain_text("Page 2")
    expect(dialog.locator(".passage-text mark")).to_contain_text("forty-eight thousand euros")
    viewer = dialog.locator(".pdf-view")
    expect(viewer).to_be_visible()
    expect(viewer.locator('.pdf-page[data-page="2"]')).to_be_visible(timeout=30_000)
    expect(viewer.get_by_role("status")).to_have_text(
        "Page 2 of 3: the cited passage is highlighted"
    )
    marked = viewer.locator(".textLayer span.cited")
    expect(marked.first).to_be_visible()
    tinted = " ".join(marked.all_text_contents())
    assert "forty-eight thousand euros" in tinted
    assert "Budget." not in tinted  # the cited sentence, not the whole line it is on
    assert "kickoff" not in tinted  # page 1's text is not there
    # The page was drawn: the canvas is not blank.
    inked = viewer.locator("canvas").evaluate(
        """(canvas) => {
            const ctx = canvas.getContext("2d");
            const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
            let dark = 0;
            for (let i = 0; i < data.length; i += 4) if (data[i] < 128) dark += 1;
            return dark;
        }"""
    )
    assert inked > 500
    ui.shot("01-pdf-page-2")
    ui.audit("the PDF viewer")

    viewer.get_by_role("button", name="Next page").click()
    expect(viewer.locator('.pdf-page[data-page="3"]')).to_be_visible()
    expect(viewer.get_by_role("status")).to_have_text("Page 3 of 3")
    expect(viewer.get_by_role("button", name="Next page")).to_be_disabled()
    viewer.get_by_role("button", name="Previous page").click()
    expect(viewer.locator('.pdf-page[data-page="2"]')).to_be_visible()
    expect(viewer.locator(".textLayer span.cited").first).to_be_visible()
    page.keyboard.press("Escape")
    # Everything came from the app: pdf.js, its worker and fonts, the PDF's bytes.
    ui.watch.assert_clean()

    # Without the vendored files (a machine that could not fetch them), the text view stays.
    page.route("**/static/vendor/**", lambda route: route.fulfill(status=404, body="missing"))
    page.reload()
    turn = page.locator("#thread .turn").last
    turn.locator(".citations li").filter(has_text="forty-eight").first.locator("button").click()
    expect(dialog.locator('[data-field="note"]')).to_have_text(
        "The PDF viewer is not available here, so the passage is shown as text."
    )
    expect(dialog.locator(".pdf-view")).to_be_hidden()
    expect(dialog.locator(".passage-text mark")).to_contain_text("forty-eight thousand euros")


def test_on_a_phone_the_pdf_page_fits_the_screen(phone: Browsing, pdfjs: None) -> None:
    page = phone.page
    _open_the_budget_citation(page)
    dialog = page.locator("dialog#passage")
    expect(dialog.locator('.pdf-page[data-page="2"]')).to_be_visible(timeout=30_000)
    expect(dialog.locator(".textLayer span.cited").first).to_be_in_viewport()
    box = dialog.locator(".pdf-page").bounding_box()
    assert box
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 390
    assert_no_horizontal_scroll(page)
    phone.shot("01-pdf-on-a-phone")
    # Zoomed in, the page is wider than the screen and scrolls inside its own frame.
    dialog.get_by_role("button", name="Zoom in").click()
    dialog.get_by_role("button", name="Zoom in").click()
    expect(dialog.get_by_role("button", name="Zoom out")).to_be_enabled()
    page.wait_for_function(
        "() => document.querySelector('.pdf-page').getBoundingClientRect().width > 600"
    )
    expect(dialog.locator(".textLayer span.cited").first).to_be_in_viewport()
    assert_no_horizontal_scroll(page)
    phone.shot("02-pdf-zoomed")
    phone.audit("the PDF viewer on a phone")
    phone.watch.assert_clean()


def test_ask_only_these_limits_a_question_to_the_chosen_source(ui: Browsing) -> None:
    page = ui.page
    register(page)
    create_notebook(page, "Grants")
    drop_file(page, "borealis.txt", BOREALIS.decode())
    drop_file(page, "atlas.txt", ATLAS.decode())
    wait_ready(page, "borealis")
    wait_ready(page, "atlas")

    scope = page.locator("#ask-scope")
    expect(scope.locator("summary")).to_have_text("Answer from all sources")
    scope.locator("summary").click()
    scope.get_by_role("checkbox", name="atlas").check()
    expect(scope.locator("summary")).to_have_text("Answer only from 1 of 2 sources")
    ui.audit("the sources chosen for a question")
    atlas_id = (
        page.locator("#documents .document")
        .filter(has_text="atlas")
        .get_attribute("data-document-id")
    )
    with page.expect_request(re.compile(r"/api/v1/conversations/[0-9a-f]+/messages$")) as sent:
        turn = _ask(page, "When is the Borealis grant application due?")
    assert sent.value.post_data_json["document_ids"] == [atlas_id]
    expect(turn.locator(".turn-scope")).to_have_text("Asked of: atlas")
    ui.shot("01-asked-of-one-source")
    expect(turn.locator(".citations")).not_to_contain_text("borealis")

    # Back to all sources: the same question finds the Borealis deadline.
    scope.get_by_role("button", name="Use all sources").click()
    expect(scope.locator("summary")).to_have_text("Answer from all sources")
    turn = _ask(page, "When is the Borealis grant application due?")
    expect(turn.locator(".turn-scope")).to_be_hidden()
    expect(turn.locator(".citations li").first).to_contain_text("borealis")
    ui.watch.assert_clean()
