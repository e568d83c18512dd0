"""The main path through the UI in a real browser: sign up, create a notebook, upload, wait
for ingestion, ask, and open a cited passage; then the workspace's members and sign-out."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Browsing
from tests.browser.flows import create_notebook, drop_file, register, wait_ready

pytestmark = pytest.mark.browser

RUNBOOK = (
    "Launch runbook\n\n"
    "The launch window opens at 09:00 UTC on Tuesday, after the database backup finishes.\n"
    "A rollback requires approval from the on-call lead and a post-mortem within two days.\n"
)


def test_register_upload_ask_and_open_a_citation(ui: Browsing) -> None:
    page = ui.page
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    ui.shot("01-login")

    register(page)
    expect(page.get_by_role("heading", name="Your workspaces")).to_be_visible()
    expect(page.get_by_text("No notebooks here yet.")).to_be_visible()
    ui.shot("02-dashboard-empty")

    create_notebook(page, "Launch plan")
    expect(page.get_by_role("heading", name="Launch plan", level=1)).to_be_visible()
    expect(page.locator("#documents-empty")).to_be_visible()
    ui.shot("03-notebook-empty")

    drop_file(page, "runbook.txt", RUNBOOK)
    upload = page.locator("#uploads .upload").filter(has_text="runbook.txt")
    expect(upload.locator("progress")).to_have_attribute("value", "100")
    expect(page.locator("#documents-empty")).to_be_hidden()
    # An unsupported file, chosen with the file picker, fails with the API's reason (415).
    page.locator("#file-input").set_input_files(
        files=[
            {"name": "tool.bin", "mimeType": "application/octet-stream", "buffer": b"\x00\x01\x02"}
        ]
    )
    rejected = page.locator("#uploads .upload").filter(has_text="tool.bin")
    expect(rejected).to_have_attribute("data-state", "failed")
    expect(rejected).to_contain_text("Unsupported file")
    wait_ready(page, "runbook")  # the status updates by itself, without a reload
    # The upload list agrees with the document's real state.
    expect(upload).to_have_attribute("data-state", "ready")
    expect(upload.locator(".upload-state")).to_have_text(
        "Uploaded · Ready: it can be searched and asked about."
    )
    ui.shot("04-notebook-ready")

    page.get_by_label("Question", exact=True).fill("When does the launch window open?")
    page.get_by_role("button", name="Ask").click()
    answer = page.locator("#thread .turn").last
    expect(answer).to_have_attribute("data-status", "complete", timeout=60_000)
    expect(answer.locator(".answer-text")).not_to_be_empty()
    citation = answer.locator(".citations .passage-link").first
    expect(citation).to_contain_text("runbook")
    ui.shot("05-answer")

    citation.click()
    dialog = page.locator("dialog#passage")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#passage-title")).to_have_text("runbook")
    expect(dialog.locator(".passage-text")).to_contain_text("09:00 UTC")
    ui.shot("06-citation")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.get_by_label("Search terms").fill("rollback approval")
    page.get_by_role("button", name="Search").click()
    hit = page.locator("#search-results .passage-link").first
    expect(hit).to_contain_text("runbook")
    hit.click()
    expect(dialog.locator(".passage-text")).to_contain_text("rollback")
    ui.shot("07-search-passage")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()

    page.reload()  # the server-rendered list shows the same state
    expect(page.locator('#documents .document[data-status="ready"]')).to_have_count(1)
    ui.watch.assert_clean()


def test_members_errors_and_sign_out(ui: Browsing) -> None:
    page = ui.page
    colleague, colleague_token = ui.app.register("Grace Hopper")
    register(page)
    page.get_by_role("link", name="Members").first.click()
    expect(page).to_have_url(re.compile(r"/app/workspaces/[0-9a-f]{32}$"))
    page.wait_for_load_state("domcontentloaded")
    expect(page.locator(".member")).to_have_count(1)

    # People join by invitation only (the same answer whether or not they have an account).
    page.get_by_label("Address to invite").fill(colleague)
    page.get_by_label("Role to give").select_option("viewer")
    page.get_by_role("button", name="Send invitation").click()
    result = page.locator("#invite-result")
    expect(result).to_contain_text(f"send {colleague} this link")
    token = re.search(r"#token=([\w-]+)", result.inner_text())
    assert token, result.inner_text()
    accepted = httpx.post(
        f"{ui.app.url}/api/v1/invitations/accept",
        json={"token": token.group(1)},
        headers={"Authorization": f"Bearer {colleague_token}"},
    )
    assert accepted.status_code == 200, accepted.text
    page.reload()
    member = page.locator(".member").filter(has_text=colleague)
    expect(member).to_be_visible()
    expect(member.get_by_label("Role of Grace Hopper")).to_have_value("viewer")
    ui.shot("01-members")

    member.get_by_label("Role of Grace Hopper").select_option("editor")
    with page.expect_navigation():  # the page reloads to show the saved state
        member.get_by_role("button", name="Save role").click()
    expect(
        page.locator(".member").filter(has_text=colleague).get_by_label("Role of Grace Hopper")
    ).to_have_value("editor")

    me = page.locator(".member").filter(has_text="(you)")
    me.get_by_label("Role of Ada Lovelace").select_option("viewer")
    me.get_by_role("button", name="Save role").click()
    expect(me.locator(".form-error:visible")).to_contain_text("at least one owner")  # 409
    ui.shot("02-members-error")

    page.once("dialog", lambda d: d.accept())
    page.locator(".member").filter(has_text=colleague).get_by_role("button", name="Remove").click()
    expect(page.locator(".member")).to_have_count(1)

    page.goto("/app/notebooks/" + "0" * 32)
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    ui.shot("03-not-found")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/app")
    expect(page).to_have_url(re.compile(r"/login\?next=/app$"))
    ui.watch.assert_clean()


def test_every_api_error_status_reads_as_a_clear_message(ui: Browsing) -> None:
    """The one function all page scripts use to explain an API failure, run in the browser."""
    ui.page.goto("/login")
    cases = [
        (0, None, None, "Could not reach CharterFlow"),
        (401, {"detail": "Invalid or expired token"}, None, "session has expired"),
        (403, {"detail": "Requires the editor role"}, None, "Not allowed: Requires the editor"),
        (404, {"detail": "Notebook not found"}, None, "Not found. It may have been deleted"),
        (409, {"detail": "Already a member"}, None, "Already a member"),
        (413, {"detail": "the limit is 1.0 kB"}, None, "Too large: the limit is 1.0 kB"),
        (415, {"detail": "Unsupported file (zip)"}, None, "Unsupported file (zip)"),
        (
            422,
            {"detail": [{"loc": ["body", "title"], "msg": "Field required"}]},
            None,
            "Please check: Title: Field required",
        ),
        (429, {"detail": "Too many requests"}, "7", "Try again in 7 seconds"),
        (503, {"detail": "Storage is unavailable"}, "5", "temporarily unavailable"),
    ]
    for status, body, retry_after, expected in cases:
        message = ui.page.evaluate(
            "([s, b, r]) => window.CharterFlow.describeError(s, b, r)", [status, body, retry_after]
        )
        assert expected in message, (status, message)
