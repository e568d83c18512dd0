"""Usable on a phone and by keyboard: no sideways scrolling at 390x844, a visible focus ring,
and forms that work without a mouse."""

from __future__ import annotations

import contextlib

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.conftest import PASSWORD, Browsing
from tests.browser.flows import create_notebook, drop_file, register

pytestmark = pytest.mark.browser

LONG = "Quarterly-operations-review-with-an-unbreakable-title-" * 3


def assert_no_horizontal_scroll(page: Page) -> None:
    """The document is no wider than the window once the page has settled (scripts fill
    some parts after the load event); names what sticks out if it stays wider."""
    fits = "() => document.documentElement.scrollWidth <= window.innerWidth"
    with contextlib.suppress(PlaywrightTimeoutError):
        page.wait_for_function(fits, timeout=5_000)
    found = page.evaluate(
        """() => ({
            doc: document.documentElement.scrollWidth,
            view: window.innerWidth,
            stylesheets: [...document.styleSheets].map((s) => s.href),
            wide: [...document.body.querySelectorAll("*")]
                .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                .map((e) => `${e.tagName.toLowerCase()}.${e.className}`)
                .slice(0, 5),
        })"""
    )
    assert found["doc"] <= found["view"], f"page scrolls sideways on {page.url}: {found}"


def test_phone_sized_screen_has_no_horizontal_scroll(phone: Browsing) -> None:
    page = phone.page
    page.goto("/login")
    assert_no_horizontal_scroll(page)
    register(page, "Phone " + "User" * 12)
    assert_no_horizontal_scroll(page)
    notebook_id = create_notebook(page, LONG)
    drop_file(page, LONG + ".txt", "A source with a very long file name. " * 20)
    expect(page.locator("#documents .document")).to_have_count(1)
    assert_no_horizontal_scroll(page)
    phone.shot("01-notebook")
    page.goto("/app")
    assert_no_horizontal_scroll(page)
    phone.shot("02-dashboard")
    page.get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", name="Members")).to_be_visible()
    assert_no_horizontal_scroll(page)
    phone.shot("03-members")
    page.goto(f"/app/notebooks/{notebook_id}")
    expect(page.locator("h1")).to_have_text(LONG)
    phone.watch.assert_clean()


def focus_ring(page: Page) -> dict[str, str]:
    return page.evaluate(
        """() => {
            const style = getComputedStyle(document.activeElement);
            return { tag: document.activeElement.tagName, text: document.activeElement.textContent,
                     outline: style.outlineStyle, width: style.outlineWidth };
        }"""
    )


def test_keyboard_focus_is_visible_and_forms_submit_by_keyboard(ui: Browsing) -> None:
    page = ui.page
    email, _ = ui.app.register("Keyboard User")
    page.goto("/login")
    expect(page.get_by_label("Email")).to_be_focused()  # the form is ready to type into
    assert focus_ring(page)["outline"] != "none"
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    assert focus_ring(page)["outline"] != "none"
    page.keyboard.type(PASSWORD)
    ui.shot("01-login-focus")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your workspaces")).to_be_visible()

    page.keyboard.press("Tab")
    ring = focus_ring(page)
    assert ring["text"] == "Skip to content"
    assert ring["outline"] != "none"
    assert ring["width"] != "0px"
    expect(page.get_by_role("link", name="Skip to content")).to_be_in_viewport()
    ui.shot("02-skip-link")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # the first control of the page's content, past the header
    expect(page.get_by_label("Title")).to_be_focused()
    page.keyboard.type("Made by keyboard")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Made by keyboard", level=1)).to_be_visible()
    ui.watch.assert_clean()
