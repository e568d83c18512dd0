"""Accounts and tokens: argon2 hashes, JWT claims, and every way a token can be wrong (401)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from charterflow.models import User
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.api.conftest import API, Api


def test_register_returns_user_and_token_and_creates_a_personal_workspace(api: Api) -> None:
    account = api.register("Grace")
    assert account.user["email"] == account.email
    assert "password" not in str(account.user).lower()
    me = api.client.get(f"{API}/auth/me", headers=account.headers)
    assert me.status_code == 200
    assert me.json()["id"] == account.id
    workspaces = api.client.get(f"{API}/workspaces", headers=account.headers).json()
    assert [(w["personal"], w["role"]) for w in workspaces["items"]] == [(True, "owner")]


def test_password_is_stored_as_argon2id(api: Api) -> None:
    account = api.register()
    with Session(api.engine) as db:
        stored = db.scalar(select(User.password_hash).where(User.id == account.id))
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert account.password not in stored


def test_token_carries_sub_iss_iat_exp(api: Api) -> None:
    account = api.register()
    claims = jwt.decode(
        account.token,
        api.settings.jwt_secret.get_secret_value(),
        algorithms=["HS256"],
        issuer=api.settings.jwt_issuer,
    )
    assert claims["sub"] == account.id
    assert claims["exp"] - claims["iat"] == api.settings.jwt_ttl_seconds


def test_login_with_the_right_password_and_not_with_a_wrong_one(api: Api) -> None:
    account = api.register()
    ok = api.client.post(
        f"{API}/auth/login", json={"email": account.email.upper(), "password": account.password}
    )
    assert ok.status_code == 200
    assert ok.json()["token_type"] == "bearer"
    assert ok.json()["expires_in"] == api.settings.jwt_ttl_seconds
    me = api.client.get(
        f"{API}/auth/me", headers={"Authorization": f"Bearer {ok.json()['access_token']}"}
    )
    assert me.json()["id"] == account.id
    wrong = api.client.post(
        f"{API}/auth/login", json={"email": account.email, "password": "not the password"}
    )
    assert wrong.status_code == 401
    unknown = api.client.post(
        f"{API}/auth/login", json={"email": "nobody@example.com", "password": "whatever1"}
    )
    assert unknown.status_code == 401
    assert unknown.json() == wrong.json()  # no hint which part was wrong


def test_duplicate_email_is_409(api: Api) -> None:
    account = api.register()
    again = api.client.post(
        f"{API}/auth/register",
        json={"email": account.email, "password": "another password", "name": "X"},
    )
    assert again.status_code == 409


def _forge(api: Api, secret: str | None = None, **claims: object) -> str:
    now = datetime.now(UTC)
    base: dict[str, object] = {
        "sub": "0" * 32,
        "iss": api.settings.jwt_issuer,
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    key = secret or api.settings.jwt_secret.get_secret_value()
    return jwt.encode({**base, **claims}, key, algorithm="HS256")


def test_missing_bad_expired_tampered_or_foreign_tokens_are_401(api: Api) -> None:
    account = api.register()
    header, payload, signature = account.token.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    past = datetime.now(UTC) - timedelta(hours=2)
    tokens = {
        "garbage": "not-a-jwt",
        "tampered signature": f"{header}.{payload}.{flipped}",
        "expired": _forge(api, sub=account.id, iat=past, exp=past + timedelta(minutes=1)),
        "other issuer": _forge(api, sub=account.id, iss="someone-else"),
        "other key": _forge(api, secret="x" * 40, sub=account.id),
        "unknown user": _forge(api),
        "alg none": jwt.encode({"sub": account.id}, None, algorithm="none"),
    }
    assert api.client.get(f"{API}/auth/me").status_code == 401
    for why, token in tokens.items():
        r = api.client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, why
        assert r.headers["www-authenticate"] == "Bearer", why


def test_logout_revokes_the_bearer_token(api: Api) -> None:
    account = api.register("Leaving")
    other = api.client.post(
        f"{API}/auth/login", json={"email": account.email, "password": account.password}
    ).json()["access_token"]
    assert api.client.get(f"{API}/auth/me", headers=account.headers).status_code == 200
    r = api.client.post(f"{API}/auth/logout", headers=account.headers)
    assert r.status_code == 204
    assert api.client.get(f"{API}/auth/me", headers=account.headers).status_code == 401
    assert api.client.post(f"{API}/auth/logout", headers=account.headers).status_code == 401
    # Only that token: the same user's other session still works.
    assert (
        api.client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {other}"}).status_code
        == 200
    )
