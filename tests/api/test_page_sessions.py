"""Issue 26, item 5: pages accept session tokens (JWTs) only, never an API key as the cookie.

Before: a read-only admin key set as ``cf_session`` rendered ``/admin`` with every user's
email, and a full key as the cookie could post ``/app/account/logout-all``, which the API
refuses to keys (its CSRF token was bound to "anonymous")."""

from __future__ import annotations

import re
import uuid

import httpx
from charterflow.web.session import CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE

from tests.api.conftest import API, Account, Api, verify_email


def _key(api: Api, account: Account, read_only: bool) -> str:
    r = api.client.post(
        f"{API}/auth/tokens",
        json={"name": "cookie", "read_only": read_only},
        headers=account.headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def test_an_api_key_as_the_session_cookie_is_no_one(api: Api) -> None:
    admin_email = f"keyadmin-{uuid.uuid4().hex[:8]}@example.com"
    with api.variant(admin_emails=[admin_email]) as app:
        r = app.client.post(
            f"{API}/auth/register",
            json={"email": admin_email, "password": "admin password 1", "name": "Admin"},
        )
        admin = Account(r.json()["user"], r.json()["access_token"], admin_email, "x")
        verify_email(app, admin.id)
        other = app.register("Bystander")
        assert app.client.get(f"{API}/admin/users", headers=admin.headers).status_code == 200
        read_only, full = _key(app, admin, True), _key(app, admin, False)

        with httpx.Client(base_url=app.url, cookies={SESSION_COOKIE: read_only}) as browser:
            page = browser.get("/admin", follow_redirects=False)
            assert page.status_code == 303, page.status_code
            assert page.headers["location"].startswith("/login")
            assert other.email not in page.text
            assert browser.get(f"{API}/auth/me").status_code == 401  # nor the API's cookie path

        with httpx.Client(base_url=app.url, cookies={SESSION_COOKIE: full}) as browser:
            assert browser.get("/app/account", follow_redirects=False).status_code == 303
            login = browser.get("/login")  # a CSRF token, bound to no session
            token = re.search(r'name="csrf-token" content="([^"]+)"', login.text)
            assert token is not None
            browser.cookies.set(CSRF_COOKIE, login.cookies.get(CSRF_COOKIE) or token.group(1))
            browser.post(
                "/app/account/logout-all",
                data={CSRF_FIELD: token.group(1)},
                follow_redirects=False,
            )
        # Nothing was signed out: the admin's session token still works.
        assert app.client.get(f"{API}/auth/me", headers=admin.headers).status_code == 200
