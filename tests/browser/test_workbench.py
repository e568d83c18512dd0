"""The notebook as a working surface in a real browser: a conversation with a follow-up, an
answer streamed and shown before it completes, a web page source, a charter drafted, edited
and exported; panels side by side on a wide screen and behind tabs on a phone; axe-core over
every page."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.api.test_charters import BRIEF
from tests.api.test_conversations import ATLAS, BOREALIS
from tests.api.test_sources import Site
from tests.browser.conftest import Browsing, LiveApp, open_page, serve_app
from tests.browser.flows import INGEST_TIMEOUT_MS, create_notebook, drop_file, register, wait_ready
from tests.browser.test_layout import assert_no_horizontal_scroll
from tests.support.llm import OpenAICompatible, StreamReply

pytestmark = pytest.mark.browser


def _ask(page: Page, question: str) -> Any:
    """Ask in the conversation; returns the new turn (focus is on it)."""
    turns = page.locator("#thread .turn")
    before = turns.count()
    page.get_by_label("Question", exact=True).fill(question)
    page.get_by_role("button", name="Ask").click()
    expect(turns).to_have_count(before + 1)
    return turns.nth(before)


def test_a_thread_with_a_follow_up_is_kept_noted_renamed_and_deleted(ui: Browsing) -> None:
    page = ui.page
    register(page)
    create_notebook(page, "Grants")
    drop_file(page, "borealis.txt", BOREALIS.decode())
    drop_file(page, "atlas.txt", ATLAS.decode())
    wait_ready(page, "borealis")
    wait_ready(page, "atlas")
    # Wide screen: the three panels side by side, no tabs.
    expect(page.locator(".panel-tabs")).to_be_hidden()
    for panel in ("#panel-sources", "#panel-conversation", "#panel-writing"):
        expect(page.locator(panel)).to_be_visible()
    boxes = [page.locator(p).bounding_box() for p in ("#panel-sources", "#panel-conversation")]
    assert boxes[0]
    assert boxes[1]
    assert boxes[0]["x"] + boxes[0]["width"] <= boxes[1]["x"]

    first = _ask(page, "When is the Borealis grant application due?")
    expect(first.locator(".turn-question")).to_be_focused()  # focus placed, not lost
    expect(first).to_have_attribute("data-status", "complete", timeout=60_000)
    expect(first.locator(".answer-text")).to_contain_text("fifteenth of May")
    expect(page.locator("#answer-status")).to_contain_text("Answer (quoted from your sources): ")

    follow_up = _ask(page, "and what about its page limit?")
    expect(follow_up).to_have_attribute("data-status", "complete", timeout=60_000)
    expect(follow_up.locator(".answer-text")).to_contain_text("five pages")
    expect(follow_up.locator(".citations li").first).to_contain_text("borealis")
    expect(follow_up.locator(".citations")).not_to_contain_text("atlas")
    ui.shot("01-thread")
    ui.audit("the notebook with a thread")

    follow_up.get_by_role("button", name="Save as note").click()
    expect(follow_up.get_by_role("status")).to_have_text("Saved to notes.")
    note = page.locator("#notes li").first
    expect(note).to_contain_text("and what about its page limit?")
    expect(
        note.get_by_role("link", name="Export and what about its page limit? as Markdown")
    ).to_be_visible()

    note.get_by_role("button", name="Edit note and what about its page limit?").click()
    editor = page.get_by_label("Text of note and what about its page limit?")
    expect(editor).to_be_focused()
    editor.fill("Five pages at most, references excluded [1].")
    page.get_by_role("button", name="Save note").click()
    expect(page.locator("#notes li .note-body")).to_have_text(
        "Five pages at most, references excluded [1]."
    )

    page.reload()  # the conversation is stored: the thread comes back
    expect(page.locator("#thread .turn")).to_have_count(2)
    expect(page.locator("#notes li .note-body")).to_have_text(
        "Five pages at most, references excluded [1]."
    )
    expect(page.locator("#conversation-select option:checked")).to_have_text(
        "When is the Borealis grant application due?"
    )

    # The thread is renamed, and the name is kept; then it is deleted with its turns.
    page.get_by_role("button", name="Rename").click()
    title = page.get_by_label("Thread title")
    expect(title).to_be_focused()
    expect(title).to_have_value("When is the Borealis grant application due?")
    title.fill("Borealis deadlines")
    page.get_by_role("button", name="Save title").click()
    expect(page.locator("#conversation-select option:checked")).to_have_text("Borealis deadlines")
    page.reload()
    expect(page.locator("#conversation-select option:checked")).to_have_text("Borealis deadlines")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#conversation-delete").click()
    expect(page.locator("#conversation-select option")).to_have_count(1)  # "New conversation"
    expect(page.locator("#thread .turn")).to_have_count(0)
    expect(page.locator("#conversation-delete")).to_be_hidden()
    page.reload()
    expect(page.locator("#conversation-select option")).to_have_count(1)
    expect(page.locator("#notes li .note-body")).to_have_count(1)  # the saved note stays
    ui.watch.assert_clean()


@pytest.fixture(scope="module")
def streaming_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An app whose model streams its answer and waits, after the first piece, for
    ``gate``; and a local web site it may fetch (``URL_FETCH_ALLOW``)."""
    gate = threading.Event()
    pieces = ["The Kestrel survey ", "counts nesting pairs ", "every April [1]."]
    site = Site()
    with (
        OpenAICompatible(lambda _path, _body: StreamReply(pieces, gate=gate)) as model,
        serve_app(
            tmp_path_factory.mktemp("streaming"),
            LLM_URL=model.url,
            LLM_MODEL="test-model",
            URL_FETCH_ALLOW="127.0.0.1",
        ) as app,
    ):
        yield {"app": app, "gate": gate, "site": site, "model": model}
    site.httpd.shutdown()
    site.httpd.server_close()


@pytest.fixture
def streaming_ui(
    browser: Browser, streaming_app: dict[str, Any], request: pytest.FixtureRequest
) -> Iterator[Browsing]:
    app: LiveApp = streaming_app["app"]
    yield from open_page(browser, app, request, {"width": 1280, "height": 900})


def test_a_web_page_source_and_an_answer_shown_while_it_streams(
    streaming_ui: Browsing, streaming_app: dict[str, Any]
) -> None:
    page, gate = streaming_ui.page, streaming_app["gate"]
    register(page)
    create_notebook(page, "Field notes")
    url = streaming_app["site"].url("/page.html")
    page.get_by_label("Web page address").fill(url)
    page.get_by_role("button", name="Add web page").click()
    row = page.locator("#documents .document").first
    expect(row).to_have_attribute("data-status", "ready", timeout=INGEST_TIMEOUT_MS)
    expect(row.locator(".doc-title")).to_have_text(url)  # a URL source is titled by its URL

    turn = _ask(page, "How often does the Kestrel survey count nesting pairs?")
    # The first piece is on screen while the model still holds back the rest.
    expect(turn.locator(".answer-text")).to_have_text("The Kestrel survey ")
    expect(turn).to_have_attribute("data-status", "streaming")
    expect(turn.locator(".citations li")).to_have_count(1)  # citations came first
    expect(turn.locator(".turn-question")).to_be_focused()
    streaming_ui.shot("01-streaming")
    gate.set()
    expect(turn).to_have_attribute("data-status", "complete", timeout=30_000)
    expect(turn.locator(".answer-text")).to_have_text(
        "The Kestrel survey counts nesting pairs every April [1]."
    )
    # The answer says which mode wrote it (a model, named when the API names it).
    written = r"[Ww]ritten by (test-model|a language model) from your sources"
    expect(turn.locator(".answer-mode")).to_have_text(re.compile(f"^{written}$"))
    expect(page.locator("#answer-status")).to_have_text(
        re.compile(
            rf"^Answer \({written}\): The Kestrel survey counts nesting pairs every April \[1\]\.$"
        )
    )
    streaming_ui.audit("the notebook after a streamed answer")
    streaming_ui.watch.assert_clean()


def test_a_charter_is_drafted_edited_restored_and_exported(ui: Browsing, tmp_path: Path) -> None:
    page = ui.page
    register(page)
    create_notebook(page, "Harbor")
    drop_file(page, "brief.txt", BRIEF.decode())
    wait_ready(page, "brief")

    page.get_by_label("Template").select_option("product-charter")
    page.get_by_label("Charter title").fill("Harbor intake")
    page.get_by_role("button", name="Draft charter").click()
    charter = page.locator("#charter")
    expect(charter.locator("#charter-title-shown")).to_have_text("Harbor intake", timeout=60_000)
    expect(charter.locator('[data-field="meta"]')).to_have_text("Product charter · version 1")
    problem = charter.locator('.charter-section[data-key="problem"]')
    expect(problem.locator(".section-body")).to_contain_text("recorded on paper. [1]")
    expect(problem.locator(".answer-mode")).to_have_text("Quoted from your sources")
    expect(charter.locator('.charter-section[data-key="success-measures"]')).to_have_attribute(
        "data-status", "unsupported"
    )
    ui.shot("01-charter")
    ui.audit("the notebook with a charter")

    problem.get_by_role("button", name="Edit Problem").click()
    editor = page.get_by_label("Text of Problem")
    expect(editor).to_be_focused()
    editor.fill("Donations are recorded on paper [1].")
    page.get_by_role("button", name="Save section").click()
    expect(problem.locator(".section-body")).to_have_text("Donations are recorded on paper [1].")
    expect(page.locator("#section-problem")).to_be_focused()
    expect(charter.locator('[data-field="meta"]')).to_have_text("Product charter · version 2")

    users = charter.locator('.charter-section[data-key="users"]')
    users.get_by_role("button", name="Edit Users").click()
    # The safe choice is the default: citations the new text no longer cites are dropped.
    page.get_by_label("Text of Users").fill("Volunteers and coordinators.")
    expect(users.get_by_role("radio", name="Drop the citations the new text")).to_be_checked()
    expect(users.get_by_role("radio", name="Keep all its citations")).not_to_be_checked()
    ui.audit("a charter section being edited")
    page.get_by_role("button", name="Save section").click()
    expect(users.locator(".section-body")).to_have_text("Volunteers and coordinators.")
    expect(users.locator(".citations")).to_have_count(0)

    with page.expect_download() as download:
        charter.get_by_role("link", name="Export Harbor intake as Markdown").click()
    saved = tmp_path / "charter.md"
    download.value.save_as(saved)
    markdown = saved.read_text()
    assert markdown.startswith("# Harbor intake\n\n_Product charter · version 3_\n")
    assert "## Problem\n\nDonations are recorded on paper [1].\n" in markdown
    assert "## Users\n\nVolunteers and coordinators.\n" in markdown
    assert '\n## References\n\n1. brief — "The problem is' in markdown

    charter.locator("summary").click()
    charter.get_by_role("button", name="Restore version 1").click()
    expect(charter.locator('[data-field="meta"]')).to_have_text("Product charter · version 4")
    expect(problem.locator(".section-body")).to_contain_text("recorded on paper. [1]")
    ui.audit("the notebook with a charter's versions open")
    ui.watch.assert_clean()


def test_on_a_phone_the_panels_are_tabs_without_sideways_scrolling(phone: Browsing) -> None:
    page = phone.page
    register(page, "Phone")
    create_notebook(page, "Pocket")
    tabs = page.get_by_role("tablist", name="Notebook panels")
    expect(tabs).to_be_visible()
    expect(page.locator("#panel-sources")).to_be_visible()
    expect(page.locator("#panel-conversation")).to_be_hidden()
    phone.audit("the notebook's sources tab on a phone")

    tabs.get_by_role("tab", name="Conversation").click()
    expect(page.locator("#panel-sources")).to_be_hidden()
    turn = _ask(page, "Is anything here yet?")
    expect(turn).to_have_attribute("data-status", "complete", timeout=60_000)
    assert_no_horizontal_scroll(page)
    phone.shot("01-conversation")
    phone.audit("the notebook's conversation tab on a phone")

    page.keyboard.press("Shift+Tab")  # keyboard: arrows move between the tabs
    tabs.get_by_role("tab", name="Conversation").focus()
    page.keyboard.press("ArrowRight")
    expect(tabs.get_by_role("tab", name="Notes & charters")).to_be_focused()
    expect(page.locator("#panel-writing")).to_be_visible()
    page.get_by_label("Charter title").fill("An SOP for nothing in particular at all")
    page.get_by_label("Template").select_option("sop")
    page.get_by_role("button", name="Draft charter").click()
    expect(page.locator(".charter-section")).to_have_count(5, timeout=60_000)
    assert_no_horizontal_scroll(page)
    phone.shot("02-charter")
    phone.audit("the notebook's notes and charters tab on a phone")
    phone.watch.assert_clean()


@pytest.mark.parametrize("viewport", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
def test_axe_finds_nothing_on_any_page(
    browser: Browser,
    live_app: LiveApp,
    request: pytest.FixtureRequest,
    viewport: tuple[int, int],
) -> None:
    size = {"width": viewport[0], "height": viewport[1]}
    for browsing in open_page(browser, live_app, request, size):
        page = browsing.page
        for path in ("/login", "/register"):
            page.goto(path)
            browsing.audit(path)
        register(page)
        browsing.audit("the empty dashboard")
        create_notebook(page, "Audited")
        browsing.audit("an empty notebook")
        page.goto("/app")
        browsing.audit("the dashboard")
        page.get_by_role("link", name="Members").first.click()
        browsing.audit("a workspace's members")
        page.goto("/app/notebooks/" + "0" * 32)
        browsing.audit("the not-found page")
        browsing.watch.assert_clean()
