"""Identity journeys in Chromium: single sign-on through Dex's own login page, a password reset
and an invitation delivered over real SMTP (aiosmtpd on loopback), API keys used by a
script-like client, and an instance admin deactivating a user."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import PASSWORD, Browsing, LiveApp, open_page, serve_app
from tests.conftest import start_or_fail
from tests.support.dex import USER_EMAIL, USER_PASSWORD, DexServer
from tests.support.processes import free_port
from tests.support.smtp import SmtpServer, smtp_server

API = "/api/v1"
ADMIN_EMAIL = "browser-admin@example.com"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def sso_app(
    tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer
) -> Iterator[tuple[LiveApp, DexServer]]:
    """``charterflow dev`` with single sign-on (Dex), SMTP (aiosmtpd) and an admin email."""
    home = tmp_path_factory.mktemp("sso-app")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    dex = start_or_fail(
        "Dex",
        lambda: DexServer(home / "dex", [f"{url}/api/v1/auth/oidc/callback"]).start(),
    )
    try:
        with serve_app(
            home,
            port,
            APP_URL=url,
            LOG_LEVEL="DEBUG",
            OIDC_ISSUER=dex.issuer,
            OIDC_CLIENT_ID=dex.client_id,
            OIDC_CLIENT_SECRET=dex.client_secret,
            OIDC_DISPLAY_NAME="Dex",
            SMTP_HOST=smtp.host,
            SMTP_PORT=str(smtp.port),
            SMTP_STARTTLS="false",
            ADMIN_EMAILS=ADMIN_EMAIL,
        ) as app:
            yield app, dex
            log = app.process.log_path
    finally:
        dex.stop()
    _assert_no_secret_logged(log, dex)


# Every secret the journeys handle, to look for in the server's log afterwards.
SEEN_SECRETS: list[str] = []


def _assert_no_secret_logged(log: Path, dex: DexServer) -> None:
    text = log.read_text(errors="replace")
    assert "request" in text  # the log is there, with the access lines
    for secret in [*SEEN_SECRETS, dex.client_secret]:
        assert secret not in text, "a secret reached the server's log"


@pytest.fixture
def sso_ui(
    browser: Browser, sso_app: tuple[LiveApp, DexServer], request: pytest.FixtureRequest
) -> Iterator[Browsing]:
    app, dex = sso_app
    yield from open_page(
        browser,
        app,
        request,
        {"width": 1280, "height": 900},
        also_allowed=(dex.issuer.rsplit("/", 1)[0],),
    )


def _register(app: LiveApp, email: str, name: str = "Person") -> str:
    r = httpx.post(
        f"{app.url}{API}/auth/register", json={"email": email, "password": PASSWORD, "name": name}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["access_token"])


def _sign_in(ui: Browsing, email: str, password: str = PASSWORD, next_path: str = "/app") -> None:
    page = ui.page
    page.goto(f"/login?next={next_path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_sign_in_through_dex_login_page(
    sso_ui: Browsing, sso_app: tuple[LiveApp, DexServer]
) -> None:
    page = sso_ui.page
    page.goto("/login")
    page.get_by_role("link", name="Sign in with Dex").click()
    expect(page.locator("#login")).to_be_visible()  # Dex's own page
    assert page.url.startswith(sso_app[1].issuer)
    sso_ui.shot("dex-login")
    page.locator("#login").fill(USER_EMAIL)
    page.locator("#password").fill(USER_PASSWORD)
    page.locator("button[type=submit]").click()
    expect(page.get_by_role("heading", name="Your workspaces")).to_be_visible()
    expect(page.locator(".who")).to_have_attribute("title", USER_EMAIL)
    sso_ui.shot("signed-in")
    sso_ui.watch.assert_clean()


def test_reset_a_password_through_the_emailed_link(
    sso_ui: Browsing, sso_app: tuple[LiveApp, DexServer], smtp: SmtpServer
) -> None:
    app, page = sso_app[0], sso_ui.page
    email = f"forgetful-{uuid.uuid4().hex[:8]}@example.com"
    _register(app, email)
    page.goto("/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_text("If an account exists")).to_be_visible()
    link = SmtpServer.link(smtp.wait_for(email, subject="Reset your CharterFlow password"))
    SEEN_SECRETS.append(link.split("#token=")[1])
    page.goto("/login")  # the link opens as a new page, as from a mail client
    page.goto(link)
    expect(page.get_by_label("New password")).to_be_visible()
    assert "#token=" not in page.url  # taken out of the address bar
    page.get_by_label("New password").fill("a new password 2")
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_text("Your password is changed")).to_be_visible()
    sso_ui.shot("reset-done")
    _sign_in(sso_ui, email, "a new password 2")
    expect(page.get_by_role("heading", name="Your workspaces")).to_be_visible()
    sso_ui.watch.assert_clean()


def test_accept_an_invitation_delivered_by_email(
    sso_ui: Browsing, sso_app: tuple[LiveApp, DexServer], smtp: SmtpServer
) -> None:
    app, page = sso_app[0], sso_ui.page
    owner = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    invitee = f"invitee-{uuid.uuid4().hex[:8]}@example.com"
    _register(app, owner, "Olive Owner")
    _sign_in(sso_ui, owner)
    page.get_by_role("link", name="Members").first.click()
    page.get_by_label("Address to invite").fill(invitee)
    page.get_by_label("Role to give").select_option("viewer")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text(f"Invitation emailed to {invitee}")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()

    link = SmtpServer.link(smtp.wait_for(invitee))
    SEEN_SECRETS.append(link.split("#token=")[1])
    _register(app, invitee, "Ivy Invitee")
    page.goto(link)  # not signed in yet: the page keeps the token while they sign in
    page.get_by_role("link", name="Sign in").last.click()
    page.get_by_label("Email").fill(invitee)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("button", name="Accept the invitation").click()
    expect(page.get_by_role("heading", name="Olive Owner's workspace")).to_be_visible()
    expect(page.get_by_text("viewer").first).to_be_visible()
    sso_ui.shot("joined")
    sso_ui.watch.assert_clean()


def test_api_keys_page_and_a_script_using_a_key(
    sso_ui: Browsing, sso_app: tuple[LiveApp, DexServer]
) -> None:
    app, page = sso_app[0], sso_ui.page
    email = f"scripter-{uuid.uuid4().hex[:8]}@example.com"
    _register(app, email)
    _sign_in(sso_ui, email)
    page.get_by_role("link", name="Account").click()
    page.get_by_label("Name").fill("nightly export")
    page.get_by_role("button", name="Create API key").click()
    expect(page.locator("#new-key-value")).to_contain_text("cfp_")
    key = page.locator("#new-key-value").inner_text()
    assert key.startswith("cfp_")
    SEEN_SECRETS.append(key)
    sso_ui.shot("key-created")
    script = httpx.get(f"{app.url}{API}/notebooks", headers={"Authorization": f"Bearer {key}"})
    assert script.status_code == 200
    page.reload()
    row = page.locator("#api-keys .member").filter(has_text="nightly export")
    expect(row).to_contain_text("last used")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("#api-keys")).to_contain_text("No API keys.")
    again = httpx.get(f"{app.url}{API}/notebooks", headers={"Authorization": f"Bearer {key}"})
    assert again.status_code == 401
    sso_ui.watch.assert_clean()


def test_an_admin_deactivates_a_user(
    sso_ui: Browsing, sso_app: tuple[LiveApp, DexServer], smtp: SmtpServer
) -> None:
    app, page = sso_app[0], sso_ui.page
    with httpx.Client() as c:
        if (
            c.post(
                f"{app.url}{API}/auth/login", json={"email": ADMIN_EMAIL, "password": PASSWORD}
            ).status_code
            != 200
        ):
            _register(app, ADMIN_EMAIL, "Ada Admin")
            # ADMIN_EMAILS counts a verified email only: the emailed link verifies it.
            mail = smtp.wait_for(ADMIN_EMAIL, subject="Confirm your CharterFlow email")
            link = SmtpServer.link(mail)
            SEEN_SECRETS.append(link.split("#token=")[1])
            page.goto(link)
            expect(page.get_by_text("Your email is verified.")).to_be_visible()
    leaver = f"leaver-{uuid.uuid4().hex[:8]}@example.com"
    token = _register(app, leaver)
    _sign_in(sso_ui, ADMIN_EMAIL)
    page.goto(f"/admin?q={leaver}")
    row = page.locator("#users .member").filter(has_text=leaver)
    expect(row).to_contain_text("active")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Deactivate").click()
    expect(page.locator("#users .member").filter(has_text=leaver)).to_contain_text("deactivated")
    sso_ui.shot("deactivated")
    me = httpx.get(f"{app.url}{API}/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401
    sso_ui.watch.assert_clean()
