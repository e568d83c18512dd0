"""Claims on an email address (issue 26, items 1 and 2): an address counts for admin rights
and for linking single sign-on only once its holder proved they read its mail.

The attacks: register someone else's address with your own password, and be made an admin
because that address is in ``ADMIN_EMAILS``, or keep that password once the address's owner
signs in with single sign-on (that half runs against Dex in test_oidc_linking.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from charterflow.models import User
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.api.conftest import API, Account, Api
from tests.support.smtp import SmtpServer, smtp_server

CONFIRM = "Confirm your CharterFlow email"
RESET = "Reset your CharterFlow password"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


def _register(api: Api, email: str, password: str = "attacker password 1") -> Account:  # noqa: S107
    r = api.client.post(
        f"{API}/auth/register", json={"email": email, "password": password, "name": "Someone"}
    )
    assert r.status_code == 201, r.text
    return Account(r.json()["user"], r.json()["access_token"], email, password)


def _token_of(message: object) -> str:
    return SmtpServer.link(message).split("#token=", 1)[1]  # type: ignore[arg-type]


def test_registering_a_listed_admin_email_gives_no_admin_until_verified(
    api: Api, smtp: SmtpServer
) -> None:
    boss = f"boss-{uuid.uuid4().hex[:8]}@corp.example"  # unlisted elsewhere, never registered
    with api.variant(
        admin_emails=[boss], smtp_host=smtp.host, smtp_port=smtp.port, smtp_starttls=False
    ) as app:
        squatter = _register(app, boss)
        assert squatter.user["email_verified"] is False
        assert app.client.get(f"{API}/admin/users", headers=squatter.headers).status_code == 403
        # Only the mailbox's holder has the link; with it the address is verified and counts.
        token = _token_of(smtp.wait_for(boss, subject=CONFIRM))
        assert token not in str(app.client.get(f"{API}/auth/me", headers=squatter.headers).json())
        r = app.client.post(f"{API}/auth/verify-email", json={"token": token})
        assert r.status_code == 200, r.text
        assert r.json()["email_verified"] is True
        assert app.client.get(f"{API}/admin/users", headers=squatter.headers).status_code == 200


def test_verification_tokens_name_their_user_and_address(api: Api, smtp: SmtpServer) -> None:
    with api.variant(smtp_host=smtp.host, smtp_port=smtp.port, smtp_starttls=False) as app:
        account = app.register("Checker")
        token = _token_of(smtp.wait_for(account.email, subject=CONFIRM))
        user_id, expires, mac = token.split("_")
        other = app.register("Other")
        forged = [
            f"{other.id}_{expires}_{mac}",  # another user with this MAC
            f"{user_id}_{int(expires) + 1}_{mac}",  # a longer life
            f"{user_id}_{expires}_{'0' * len(mac)}",
            "not-a-token",
        ]
        for bad in forged:
            r = app.client.post(f"{API}/auth/verify-email", json={"token": bad})
            assert r.status_code == 400, bad
        with Session(app.engine) as db:  # the account's email changes: the old link is void
            db.get(User, account.id).email = f"moved-{account.email}"  # type: ignore[union-attr]
            db.commit()
        assert app.client.post(f"{API}/auth/verify-email", json={"token": token}).status_code == 400
        resend = app.client.post(f"{API}/auth/verify-email/resend", headers=other.headers)
        assert resend.status_code == 202
        smtp.wait_for(other.email, count=2, subject=CONFIRM)


def test_without_smtp_nothing_is_sent_and_an_operator_can_verify(api: Api) -> None:
    account = api.register("Offline")
    r = api.client.post(f"{API}/auth/verify-email/resend", headers=account.headers)
    assert r.status_code == 409
    assert "sends no email" in r.json()["detail"]
    assert _verify_email_command(api, account.email.upper()).returncode == 0
    missing = _verify_email_command(api, "nobody@nowhere.example")
    assert missing.returncode == 1
    assert "no account" in missing.stderr
    assert api.client.get(f"{API}/auth/me", headers=account.headers).json()["email_verified"]


def _verify_email_command(api: Api, email: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CHARTERFLOW_", "DATABASE"))},
        "DATABASE_URL": api.settings.database_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "charterflow.cli", "verify-email", email],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_password_reset_verifies_the_email_and_voids_the_squatters_keys(
    api: Api, smtp: SmtpServer
) -> None:
    with api.variant(smtp_host=smtp.host, smtp_port=smtp.port, smtp_starttls=False) as app:
        victim = f"victim-{uuid.uuid4().hex[:8]}@corp.example"
        squatter = _register(app, victim)
        r = app.client.post(f"{API}/auth/tokens", json={"name": "kept"}, headers=squatter.headers)
        key = {"Authorization": f"Bearer {r.json()['token']}"}
        assert app.client.get(f"{API}/notebooks", headers=key).status_code == 200
        app.client.post(f"{API}/auth/password-reset", json={"email": victim})
        token = _token_of(smtp.wait_for(victim, subject=RESET))
        body = {"token": token, "new_password": "the real owner's password"}
        r = app.client.post(f"{API}/auth/password-reset/confirm", json=body)
        assert r.status_code == 200
        me = app.client.get(
            f"{API}/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
        assert me.json()["email_verified"] is True
        assert app.client.get(f"{API}/notebooks", headers=key).status_code == 401
        assert app.client.get(f"{API}/auth/me", headers=squatter.headers).status_code == 401
    with Session(api.engine) as db:
        assert db.scalar(select(User.email_verified_at).where(User.email == victim)) is not None


def test_registering_through_the_web_form_also_sends_the_link(api: Api, smtp: SmtpServer) -> None:
    import re

    import httpx

    with api.variant(smtp_host=smtp.host, smtp_port=smtp.port, smtp_starttls=False) as app:
        email = f"former-{uuid.uuid4().hex[:8]}@example.com"
        with httpx.Client(base_url=app.url) as browser:
            page = browser.get("/register")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            form = {"name": "Form", "email": email, "password": "long enough 1"}
            r = browser.post("/register", data={**form, "csrf_token": token.group(1)})
            assert r.status_code in (200, 303), r.text
        assert SmtpServer.link(smtp.wait_for(email, subject=CONFIRM)).startswith(
            f"{app.settings.app_url}/verify-email#token="
        )
