"""API keys, signing-key rotation, password change, sessions and instance admins."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from charterflow.models import ApiToken, AuditEvent
from charterflow.security import key_id
from charterflow.web.session import SESSION_COOKIE, csrf_token_valid
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.api.conftest import API, Account, Api, verify_email


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _new_key(api: Api, account: Account, **body: object) -> dict[str, object]:
    r = api.client.post(
        f"{API}/auth/tokens", json={"name": "script", **body}, headers=account.headers
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _login(api: Api, email: str, password: str) -> str | None:
    r = api.client.post(f"{API}/auth/login", json={"email": email, "password": password})
    return str(r.json()["access_token"]) if r.status_code == 200 else None


def test_an_api_key_is_shown_once_stored_hashed_and_acts_as_its_user(api: Api) -> None:
    account = api.register("Scripter")
    created = _new_key(api, account)
    token = str(created["token"])
    assert token.startswith("cfp_")
    assert len(token) > 40
    assert str(created["prefix"]) == token[:12]
    listed = api.client.get(f"{API}/auth/tokens", headers=account.headers).json()
    assert [k["id"] for k in listed["items"]] == [created["id"]]
    assert "token" not in listed["items"][0]
    assert listed["items"][0]["last_used_at"] is None
    with Session(api.engine) as db:
        row = db.get(ApiToken, str(created["id"]))
        assert row is not None
        assert token not in row.token_hash
        assert len(row.token_hash) == 64
    # A script-like client: the key alone, no session.
    me = api.client.get(f"{API}/auth/me", headers=_bearer(token))
    assert me.status_code == 200
    assert me.json()["id"] == account.id
    notebook = api.client.post(
        f"{API}/notebooks", json={"title": "via key"}, headers=_bearer(token)
    )
    assert notebook.status_code == 201
    listed = api.client.get(f"{API}/auth/tokens", headers=account.headers).json()
    assert listed["items"][0]["last_used_at"] is not None
    with Session(api.engine) as db:
        actions = db.scalars(select(AuditEvent.action).where(AuditEvent.actor_id == account.id))
        assert "api_key.create" in set(actions)


def test_a_revoked_key_is_refused_at_once_and_a_key_cannot_mint_keys(api: Api) -> None:
    account = api.register()
    token = str(_new_key(api, account)["token"])
    other = str(_new_key(api, account, name="other")["token"])
    assert (
        api.client.post(
            f"{API}/auth/tokens", json={"name": "more"}, headers=_bearer(token)
        ).status_code
        == 403
    )
    assert (
        api.client.post(
            f"{API}/auth/password",
            json={"current_password": account.password, "new_password": "x" * 12},
            headers=_bearer(token),
        ).status_code
        == 403
    )
    ids = {
        k["name"]: k["id"]
        for k in api.client.get(f"{API}/auth/tokens", headers=account.headers).json()["items"]
    }
    # One key cannot revoke another; it may revoke itself.
    r = api.client.delete(f"{API}/auth/tokens/{ids['script']}", headers=_bearer(other))
    assert r.status_code == 403
    r = api.client.delete(f"{API}/auth/tokens/{ids['script']}", headers=account.headers)
    assert r.status_code == 204
    assert api.client.get(f"{API}/auth/me", headers=_bearer(token)).status_code == 401
    r = api.client.delete(f"{API}/auth/tokens/{ids['other']}", headers=_bearer(other))
    assert r.status_code == 204
    assert api.client.get(f"{API}/auth/me", headers=_bearer(other)).status_code == 401
    assert api.client.get(f"{API}/auth/tokens", headers=account.headers).json()["total"] == 0


def test_another_users_key_is_404_and_unknown_keys_are_401(api: Api) -> None:
    owner, stranger = api.register("Owner"), api.register("Stranger")
    key_id_ = _new_key(api, owner)["id"]
    r = api.client.delete(f"{API}/auth/tokens/{key_id_}", headers=stranger.headers)
    assert r.status_code == 404
    assert api.client.delete(f"{API}/auth/tokens/nope", headers=owner.headers).status_code == 404
    fake = "cfp_" + "A" * 43
    assert api.client.get(f"{API}/auth/me", headers=_bearer(fake)).status_code == 401


def test_a_read_only_key_reads_but_does_not_write(api: Api) -> None:
    account = api.register()
    token = str(_new_key(api, account, read_only=True)["token"])
    assert api.client.get(f"{API}/notebooks", headers=_bearer(token)).status_code == 200
    r = api.client.post(f"{API}/notebooks", json={"title": "no"}, headers=_bearer(token))
    assert r.status_code == 403


def test_workspace_roles_still_decide_what_a_key_reaches(api: Api) -> None:
    owner, stranger = api.register("Owner"), api.register("Stranger")
    notebook = api.notebook(owner)
    token = str(_new_key(api, stranger)["token"])
    r = api.client.get(f"{API}/notebooks/{notebook['id']}", headers=_bearer(token))
    assert r.status_code == 404


def test_an_expired_key_is_refused_and_a_past_expiry_is_422(api: Api) -> None:
    account = api.register()
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    r = api.client.post(
        f"{API}/auth/tokens", json={"name": "old", "expires_at": past}, headers=account.headers
    )
    assert r.status_code == 422
    created = _new_key(api, account, expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    assert (
        api.client.get(f"{API}/auth/me", headers=_bearer(str(created["token"]))).status_code == 200
    )
    with Session(api.engine) as db:  # the day passes
        row = db.get(ApiToken, str(created["id"]))
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.commit()
    assert (
        api.client.get(f"{API}/auth/me", headers=_bearer(str(created["token"]))).status_code == 401
    )


def test_each_key_has_its_own_rate_limit(api: Api) -> None:
    with api.variant(api_key_rate_limit_per_minute=3) as limited:
        account = limited.register()
        one, two = (str(_new_key(limited, account, name=n)["token"]) for n in ("a", "b"))
        codes = [
            limited.client.get(f"{API}/auth/me", headers=_bearer(one)).status_code for _ in range(4)
        ]
        assert codes == [200, 200, 200, 429]
        assert limited.client.get(f"{API}/auth/me", headers=_bearer(two)).status_code == 200


def test_tokens_name_their_key_and_a_rotation_signs_no_one_out(api: Api) -> None:
    account = api.register("Rotating")
    old_secret = api.settings.jwt_secret.get_secret_value()
    header = jwt.get_unverified_header(account.token)
    assert header["kid"] == key_id(old_secret)
    new_secret = "rotated-signing-key-" + uuid.uuid4().hex
    # Step 1 of the runbook: the new key signs, the old one is still accepted.
    with api.variant(
        jwt_secret=SecretStr(new_secret), jwt_previous_secrets=[SecretStr(old_secret)]
    ) as rotated:
        assert rotated.client.get(f"{API}/auth/me", headers=account.headers).status_code == 200
        fresh = _login(rotated, account.email, account.password)
        assert fresh is not None
        assert jwt.get_unverified_header(fresh)["kid"] == key_id(new_secret)
        assert rotated.client.get(f"{API}/auth/me", headers=_bearer(fresh)).status_code == 200
    # Step 2, after the grace period: the old key is dropped; its tokens are refused.
    with api.variant(jwt_secret=SecretStr(new_secret), jwt_previous_secrets=[]) as done:
        assert done.client.get(f"{API}/auth/me", headers=account.headers).status_code == 401
        assert done.client.get(f"{API}/auth/me", headers=_bearer(fresh)).status_code == 200
    # A token naming a key id that is not ours is refused, whatever it is signed with.
    claims = jwt.decode(account.token, options={"verify_signature": False})
    forged = jwt.encode(claims, old_secret, algorithm="HS256", headers={"kid": "f" * 16})
    assert api.client.get(f"{API}/auth/me", headers=_bearer(forged)).status_code == 401


def test_password_change_needs_the_current_one_and_ends_other_sessions(api: Api) -> None:
    account = api.register()
    other_session = _login(api, account.email, account.password)
    key = str(_new_key(api, account)["token"])
    for token in (account.token, other_session):  # read-only requests remember their caller
        assert api.client.get(f"{API}/auth/me", headers=_bearer(str(token))).status_code == 200
    r = api.client.post(
        f"{API}/auth/password",
        json={"current_password": "wrong password", "new_password": "a new password 1"},
        headers=account.headers,
    )
    assert r.status_code == 400
    r = api.client.post(
        f"{API}/auth/password",
        json={"current_password": account.password, "new_password": "a new password 1"},
        headers=account.headers,
    )
    assert r.status_code == 200
    new_token = r.json()["access_token"]
    assert api.client.get(f"{API}/auth/me", headers=_bearer(new_token)).status_code == 200
    for stale in (account.token, other_session):
        assert api.client.get(f"{API}/auth/me", headers=_bearer(str(stale))).status_code == 401
    assert api.client.get(f"{API}/auth/me", headers=_bearer(key)).status_code == 200
    assert _login(api, account.email, account.password) is None
    assert _login(api, account.email, "a new password 1") is not None


def test_refresh_slides_the_session_and_revokes_the_old_token(api: Api) -> None:
    account = api.register()
    assert api.client.get(f"{API}/auth/me", headers=account.headers).status_code == 200
    r = api.client.post(f"{API}/auth/refresh", headers=account.headers)
    assert r.status_code == 200
    fresh = r.json()["access_token"]
    assert fresh != account.token
    assert api.client.get(f"{API}/auth/me", headers=account.headers).status_code == 401
    assert api.client.get(f"{API}/auth/me", headers=_bearer(fresh)).status_code == 200


def test_sign_out_everywhere_ends_every_session(api: Api) -> None:
    account = api.register()
    second = _login(api, account.email, account.password)
    for token in (account.token, second):  # read-only requests remember their caller
        assert api.client.get(f"{API}/auth/me", headers=_bearer(str(token))).status_code == 200
    assert api.client.post(f"{API}/auth/logout-all", headers=account.headers).status_code == 204
    for token in (account.token, second):
        assert api.client.get(f"{API}/auth/me", headers=_bearer(str(token))).status_code == 401
    assert _login(api, account.email, account.password) is not None


def test_admin_endpoints_need_an_instance_admin(api: Api) -> None:
    account = api.register()
    assert api.client.get(f"{API}/admin/users", headers=account.headers).status_code == 403
    r = api.client.post(f"{API}/admin/users/{account.id}/deactivate", headers=account.headers)
    assert r.status_code == 403


def test_a_deactivated_user_is_refused_everywhere_until_reactivated(api: Api) -> None:
    admin_email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    with api.variant(admin_emails=[admin_email.upper()]) as admin_api:
        r = admin_api.client.post(
            f"{API}/auth/register",
            json={"email": admin_email, "password": "admin password 1", "name": "Admin"},
        )
        admin = Account(r.json()["user"], r.json()["access_token"], admin_email, "admin password 1")
        verify_email(admin_api, admin.id)  # ADMIN_EMAILS counts verified emails only
        user = admin_api.register("Leaver")
        key = str(_new_key(admin_api, user)["token"])
        found = admin_api.client.get(
            f"{API}/admin/users", params={"q": user.email}, headers=admin.headers
        ).json()
        assert [u["id"] for u in found["items"]] == [user.id]
        assert found["items"][0]["is_active"] is True
        assert admin_api.client.get(f"{API}/notebooks", headers=user.headers).status_code == 200
        r = admin_api.client.post(f"{API}/admin/users/{user.id}/deactivate", headers=admin.headers)
        assert r.status_code == 200
        assert r.json()["is_active"] is False
        for credential in (user.token, key):
            for path in ("auth/me", "notebooks"):
                r = admin_api.client.get(f"{API}/{path}", headers=_bearer(credential))
                assert r.status_code == 401, path
        assert _login(admin_api, user.email, user.password) is None
        r = admin_api.client.post(f"{API}/admin/users/{admin.id}/deactivate", headers=admin.headers)
        assert r.status_code == 409
        r = admin_api.client.post(f"{API}/admin/users/{'0' * 32}/deactivate", headers=admin.headers)
        assert r.status_code == 404
        r = admin_api.client.post(f"{API}/admin/users/{user.id}/activate", headers=admin.headers)
        assert r.status_code == 200
        assert r.json()["is_active"] is True
        assert admin_api.client.get(f"{API}/auth/me", headers=user.headers).status_code == 401
        assert admin_api.client.get(f"{API}/auth/me", headers=_bearer(key)).status_code == 200
        assert _login(admin_api, user.email, user.password) is not None


def test_web_sessions_slide_past_half_their_lifetime(api: Api) -> None:
    account = api.register("Browser")
    secret = api.settings.jwt_secret.get_secret_value()
    now = datetime.now(UTC)
    ttl = api.settings.jwt_ttl_seconds

    def page_with(token: str) -> httpx.Response:
        with httpx.Client(base_url=api.url, cookies={SESSION_COOKIE: token}) as browser:
            return browser.get("/app")

    fresh = page_with(account.token)
    assert fresh.status_code == 200
    assert SESSION_COOKIE not in fresh.cookies  # a young session is left alone
    claims = {
        "sub": account.id,
        "iss": api.settings.jwt_issuer,
        "iat": now - timedelta(seconds=ttl - 60),
        "exp": now + timedelta(seconds=60),
        "jti": uuid.uuid4().hex,
        "ver": 0,
    }
    old = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": key_id(secret)})
    page = page_with(old)
    assert page.status_code == 200
    new = page.cookies[SESSION_COOKIE]
    new_claims = jwt.decode(new, secret, algorithms=["HS256"], issuer=api.settings.jwt_issuer)
    assert new_claims["sub"] == account.id
    assert new_claims["exp"] > claims["exp"].timestamp() + ttl / 2
    meta = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert meta is not None
    assert csrf_token_valid(api.settings, meta.group(1), new)  # the page's CSRF fits the new one
    # A signed-out session is not revived by a page.
    assert api.client.post(f"{API}/auth/logout", headers=_bearer(old)).status_code == 204
    assert SESSION_COOKIE not in page_with(old).cookies
