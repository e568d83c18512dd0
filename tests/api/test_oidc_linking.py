"""Issue 26, item 1: account takeover before the first single sign-on, against a real Dex.

The attacker registers the victim's address with their own password before the victim ever
signs in with single sign-on. The victim's first sign-in must not link to that account (the
attacker's password would keep reading everything the victim puts there); once the address
is verified from its own mailbox, it links."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.conftest import API, Api
from tests.conftest import start_or_fail
from tests.support.dex import USER_EMAIL, DexServer
from tests.support.processes import free_port
from tests.support.services import scratch_dir
from tests.support.smtp import SmtpServer, smtp_server

PORT = free_port()


@pytest.fixture(scope="module")
def dex() -> Iterator[DexServer]:
    uri = f"http://127.0.0.1:{PORT}/api/v1/auth/oidc/callback"
    server = start_or_fail("Dex", lambda: DexServer(scratch_dir("dex"), [uri]).start())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


def _sign_in(browser: httpx.Client, app: Api, dex: DexServer) -> httpx.Response:
    start = browser.get(f"{app.url}{API}/auth/oidc/login", params={"next": "/app"})
    assert start.status_code == 302, start.text
    return browser.get(dex.sign_in(browser, start.headers["location"]))


def test_sso_does_not_link_to_an_unverified_password_account(
    api: Api, dex: DexServer, smtp: SmtpServer
) -> None:
    from pydantic import SecretStr

    with api.variant(
        port=PORT,
        app_url=f"http://127.0.0.1:{PORT}",
        oidc_issuer=dex.issuer,
        oidc_client_id=dex.client_id,
        oidc_client_secret=SecretStr(dex.client_secret),
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_starttls=False,
    ) as app:
        password = "the attacker's own password"
        confirm = "Confirm your CharterFlow email"
        sent = len(smtp.messages_to(USER_EMAIL, confirm))  # by this module's other backend
        r = app.client.post(
            f"{API}/auth/register",
            json={"email": USER_EMAIL, "password": password, "name": "Not the victim"},
        )
        assert r.status_code == 201, r.text
        squatted = r.json()["user"]["id"]
        with httpx.Client(timeout=30) as victim:
            refused = _sign_in(victim, app, dex)
            assert refused.status_code == 409, refused.text
            assert "never verified" in refused.json()["detail"]
            assert victim.get(f"{app.url}{API}/auth/me").status_code == 401
        # The mailbox's holder verifies the address; then the same sign-in links.
        mail = smtp.wait_for(USER_EMAIL, count=sent + 1, subject=confirm)
        token = SmtpServer.link(mail).split("#token=", 1)[1]
        assert app.client.post(f"{API}/auth/verify-email", json={"token": token}).status_code == 200
        with httpx.Client(timeout=30) as owner:
            linked = _sign_in(owner, app, dex)
            assert linked.status_code == 303, linked.text
            assert owner.get(f"{app.url}{API}/auth/me").json()["id"] == squatted
