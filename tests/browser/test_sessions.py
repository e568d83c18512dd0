"""Cookie sessions and CSRF over real HTTP: what the browser UI relies on, and what it must
not open up (cross-site requests riding the cookie, probing other users' notebooks)."""

from __future__ import annotations

import re

import httpx

from tests.browser.conftest import PASSWORD, LiveApp

API = "/api/v1"
_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_token(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200
    match = _FIELD.search(page.text)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def signed_in(app: LiveApp, email: str) -> httpx.Client:
    client = httpx.Client(base_url=app.url)
    token = form_token(client, "/register")
    r = client.post(
        "/register",
        data={"name": "Cookie User", "email": email, "password": PASSWORD, "csrf_token": token},
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/app"
    return client


def test_pages_send_a_strict_csp_and_no_inline_script(live_app: LiveApp) -> None:
    r = httpx.get(f"{live_app.url}/login")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert r.headers["cache-control"] == "no-store"
    assert re.search(r"<script(?![^>]*\bsrc=)", r.text) is None, "no inline <script>"
    assert re.search(r"\sstyle=|<style", r.text) is None, "no inline styles"
    assert httpx.get(f"{live_app.url}/static/app.js").status_code == 200


def test_session_cookies_are_httponly_samesite(live_app: LiveApp) -> None:
    client = httpx.Client(base_url=live_app.url)
    token = form_token(client, "/register")
    r = client.post(
        "/register",
        data={
            "name": "N",
            "email": "cookie@example.com",
            "password": PASSWORD,
            "csrf_token": token,
        },
    )
    cookies = {c.split("=", 1)[0]: c.lower() for c in r.headers.get_list("set-cookie")}
    assert "httponly" in cookies["cf_session"]
    assert "samesite=lax" in cookies["cf_session"]
    assert "httponly" in cookies["cf_csrf"]
    assert "samesite=strict" in cookies["cf_csrf"]
    assert client.cookies["cf_csrf"] != token, "signing in rotates the CSRF token"


def test_forms_refuse_a_missing_or_foreign_csrf_token(live_app: LiveApp) -> None:
    client = httpx.Client(base_url=live_app.url)
    form_token(client, "/register")  # the browser holds a valid CSRF cookie
    fields = {"name": "N", "email": "forged@example.com", "password": PASSWORD}
    for forged in ("", "abc.def", client.cookies["cf_csrf"] + "x"):
        r = client.post("/register", data={**fields, "csrf_token": forged})
        assert r.status_code == 403
        assert "cf_session" not in client.cookies
    # The account was never created: registering it properly now succeeds.
    assert signed_in(live_app, "forged@example.com").get("/app").status_code == 200


def test_api_accepts_the_cookie_only_with_the_csrf_header(live_app: LiveApp) -> None:
    client = signed_in(live_app, "api-cookie@example.com")
    me = client.get(f"{API}/auth/me")
    assert me.status_code == 200
    assert me.json()["email"] == "api-cookie@example.com"

    body = {"title": "Via cookie"}
    missing = client.post(f"{API}/notebooks", json=body)
    assert missing.status_code == 403
    assert "CSRF" in missing.json()["detail"]
    wrong = client.post(f"{API}/notebooks", json=body, headers={"X-CSRF-Token": "a.b"})
    assert wrong.status_code == 403
    # A token this server did not sign fails even when cookie and header agree.
    attacker = httpx.Client(
        base_url=live_app.url,
        cookies={"cf_session": client.cookies["cf_session"], "cf_csrf": "attacker.minted"},
    )
    planted = attacker.post(
        f"{API}/notebooks", json=body, headers={"X-CSRF-Token": "attacker.minted"}
    )
    assert planted.status_code == 403
    listed = client.get(f"{API}/notebooks").json()
    assert listed["total"] == 0, "no refused request created anything"

    token = form_token(client, "/app")  # the page hands out a fresh signed token
    ok = client.post(f"{API}/notebooks", json=body, headers={"X-CSRF-Token": token})
    assert ok.status_code == 201, ok.text


def test_bearer_clients_are_unchanged(live_app: LiveApp) -> None:
    _, token = live_app.register()
    r = httpx.post(
        f"{live_app.url}{API}/notebooks",
        json={"title": "Bearer"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201
    anonymous = httpx.get(f"{live_app.url}{API}/notebooks")
    assert anonymous.status_code == 401


def test_another_users_notebook_page_is_not_found(live_app: LiveApp) -> None:
    _, token = live_app.register("Owner")
    notebook = httpx.post(
        f"{live_app.url}{API}/notebooks",
        json={"title": "Private plans"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    stranger = signed_in(live_app, "stranger@example.com")
    r = stranger.get(f"/app/notebooks/{notebook['id']}")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "Private plans" not in r.text
    assert stranger.get("/app/notebooks/not-an-id").status_code == 404


def test_sign_out_needs_the_token_and_ends_the_session(live_app: LiveApp) -> None:
    client = signed_in(live_app, "bye@example.com")
    assert client.post("/logout", data={"csrf_token": "nope"}).status_code == 403
    assert client.get("/app").status_code == 200, "a refused sign-out leaves the session"
    r = client.post("/logout", data={"csrf_token": form_token(client, "/app")})
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
    after = client.get("/app")
    assert after.status_code == 303
    assert after.headers["location"] == "/login?next=/app"
    assert client.get("/").headers["location"] == "/login"


def test_sign_in_errors_are_explained_and_next_stays_on_site(live_app: LiveApp) -> None:
    email, _ = live_app.register()
    client = httpx.Client(base_url=live_app.url)
    token = form_token(client, "/login")
    bad = client.post(
        "/login", data={"email": email, "password": "wrong-pass", "csrf_token": token}
    )
    assert bad.status_code == 401
    assert "Incorrect email or password" in bad.text
    for target, expected in (
        ("/app/workspaces/x", "/app/workspaces/x"),
        ("//evil.example", "/app"),
    ):
        client.cookies.clear()
        token = form_token(client, "/login")
        data = {"email": email, "password": PASSWORD, "csrf_token": token, "next": target}
        r = client.post("/login", data=data)
        assert r.status_code == 303
        assert r.headers["location"] == expected


def test_csrf_token_of_another_session_is_refused(live_app: LiveApp) -> None:
    victim = signed_in(live_app, "csrf-victim@example.com")
    mallory = signed_in(live_app, "csrf-mallory@example.com")
    anonymous = httpx.Client(base_url=live_app.url)
    foreign = {
        "another user's": form_token(mallory, "/app"),
        "the sign-in page's": form_token(anonymous, "/login"),
    }
    for whose, token in foreign.items():
        forged = httpx.Client(
            base_url=live_app.url,
            cookies={"cf_session": victim.cookies["cf_session"], "cf_csrf": token},
        )
        r = forged.post(f"{API}/notebooks", json={"title": "x"}, headers={"X-CSRF-Token": token})
        assert r.status_code == 403, f"{whose} CSRF token was accepted"
        assert forged.post("/logout", data={"csrf_token": token}).status_code == 403
    own = form_token(victim, "/app")
    r = victim.post(f"{API}/notebooks", json={"title": "mine"}, headers={"X-CSRF-Token": own})
    assert r.status_code == 201


def test_sign_out_revokes_the_token_itself(live_app: LiveApp) -> None:
    client = signed_in(live_app, "revoked@example.com")
    stolen = client.cookies["cf_session"]  # a copy, as a thief or a shared computer keeps it
    assert (
        client.post("/logout", data={"csrf_token": form_token(client, "/app")}).status_code == 303
    )
    replay = httpx.Client(base_url=live_app.url, cookies={"cf_session": stolen})
    assert replay.get(f"{API}/auth/me").status_code == 401
    assert replay.get("/app").headers["location"] == "/login?next=/app"
    bearer = httpx.get(
        f"{live_app.url}{API}/auth/me", headers={"Authorization": f"Bearer {stolen}"}
    )
    assert bearer.status_code == 401
