"""The authenticated-caller cache of read-only requests: what would refuse a token must also
empty it (the HTTP side is in tests/api/test_api_keys_sessions.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from charterflow.models import User
from charterflow.security import TokenClaims
from charterflow.services import sessions
from charterflow.services.sessions import RecentCallers
from sqlalchemy import create_engine, inspect
from sqlalchemy.orm import Session

TTL = 60.0


def _user(user_id: str = "a" * 32, version: int = 0) -> User:
    return User(
        id=user_id,
        email="someone@example.com",
        name="Someone",
        password_hash="x",
        is_active=True,
        is_admin=False,
        token_version=version,
    )


def _claims(user_id: str = "a" * 32, jti: str = "j" * 32) -> TokenClaims:
    return TokenClaims(user_id, jti, datetime.now(UTC) + timedelta(hours=1))


def _put(cache: RecentCallers, token: str, claims: TokenClaims, generation: int = -1) -> None:
    generation = cache.generation if generation == -1 else generation
    cache.put(token, claims, _user(claims.subject), TTL, generation)


def test_a_hit_is_a_fresh_detached_copy_for_that_token_only() -> None:
    cache = RecentCallers()
    claims = _claims()
    _put(cache, "token-1", claims)
    first, second = cache.get("token-1"), cache.get("token-1")
    assert first is not None
    assert second is not None
    assert first.user is not second.user
    assert first.claims == claims
    user = first.user
    assert (user.id, user.email, user.token_version) == ("a" * 32, "someone@example.com", 0)
    assert inspect(user).detached
    assert cache.get("token-2") is None


def test_an_expired_token_is_not_served(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = RecentCallers()
    claims = _claims()
    _put(cache, "token-1", claims)
    monkeypatch.setattr(sessions.time, "time", lambda: claims.expires_at.timestamp())
    assert cache.get("token-1") is None


def test_an_entry_expires_after_its_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(sessions.time, "monotonic", lambda: now[0])
    cache = RecentCallers()
    _put(cache, "token-1", _claims())
    now[0] += TTL - 0.5
    assert cache.get("token-1") is not None
    now[0] += 1.0
    assert cache.get("token-1") is None


def test_a_revoked_token_and_a_changed_user_are_forgotten() -> None:
    cache = RecentCallers()
    _put(cache, "token-1", _claims(jti="r" * 32))
    sessions._remember("r" * 32)
    assert cache.get("token-1") is None
    _put(cache, "token-2", _claims(jti="k" * 32))
    _put(cache, "token-3", _claims(user_id="b" * 32, jti="l" * 32))
    cache.forget_user("a" * 32)
    assert cache.get("token-2") is None
    assert cache.get("token-3") is not None


def test_a_user_loaded_before_a_change_is_not_stored() -> None:
    cache = RecentCallers()
    generation = cache.generation  # read, then the user is loaded while ...
    cache.forget_user("a" * 32)  # ... another request changes it
    _put(cache, "token-1", _claims(jti="m" * 32), generation)
    assert cache.get("token-1") is None


def test_committing_a_change_to_the_user_empties_every_cache_of_the_process() -> None:
    caches = [RecentCallers(), RecentCallers()]  # one per app
    engine = create_engine("sqlite://")
    User.__table__.create(engine)  # type: ignore[attr-defined]
    claims = _claims(user_id="c" * 32, jti="n" * 32)
    with Session(engine) as db:
        db.add(_user("c" * 32))
        db.commit()
        user = db.get(User, "c" * 32)
        assert user is not None
        for cache in caches:
            cache.put("token-1", claims, user, TTL, cache.generation)
            assert cache.get("token-1") is not None
        user.token_version += 1
        db.commit()
    assert [cache.get("token-1") for cache in caches] == [None, None]
    engine.dispose()


def test_with_announcements_an_entry_serves_only_the_epoch_it_was_loaded_in() -> None:
    """With Redis every change is announced (a counter bumped); an entry loaded at another
    value of it, or with no answer from Redis, is not used."""
    announced: list[int] = []
    cache = RecentCallers(lambda: announced.append(1))
    cache.put("token-1", _claims(), _user(), TTL, cache.generation, 7)
    cache.put("token-2", _claims(jti="p" * 32), _user(), TTL, cache.generation, None)
    assert cache.get("token-2") is None  # unknown epoch: never stored
    recent = cache.get("token-1")
    assert recent is not None
    assert cache.current(recent, 7)
    assert not cache.current(recent, 8)
    assert not cache.current(recent, None)
    cache.announce()
    assert announced == [1]
    assert RecentCallers().current(recent, None)  # no Redis: this process's state only
