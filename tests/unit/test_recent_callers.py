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


def test_a_hit_is_a_fresh_detached_copy_for_that_token_and_subject_only() -> None:
    cache = RecentCallers()
    cache.put(_claims(), _user(), TTL, cache.generation)
    first, second = cache.get(_claims()), cache.get(_claims())
    assert first is not None
    assert second is not None
    assert first is not second
    assert (first.id, first.email, first.token_version) == ("a" * 32, "someone@example.com", 0)
    assert inspect(first).detached
    assert cache.get(_claims(jti="k" * 32)) is None
    assert cache.get(_claims(user_id="b" * 32)) is None


def test_an_entry_expires_after_its_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(sessions.time, "monotonic", lambda: now[0])
    cache = RecentCallers()
    cache.put(_claims(), _user(), TTL, cache.generation)
    now[0] += TTL - 0.5
    assert cache.get(_claims()) is not None
    now[0] += 1.0
    assert cache.get(_claims()) is None


def test_a_revoked_token_and_a_changed_user_are_forgotten() -> None:
    cache = RecentCallers()
    cache.put(_claims(), _user(), TTL, cache.generation)
    sessions._remember("j" * 32)
    assert cache.get(_claims()) is None
    cache.put(_claims(jti="k" * 32), _user(), TTL, cache.generation)
    cache.forget_user("a" * 32)
    assert cache.get(_claims(jti="k" * 32)) is None


def test_a_user_loaded_before_a_change_is_not_stored() -> None:
    cache = RecentCallers()
    generation = cache.generation  # read, then the user is loaded while ...
    cache.forget_user("a" * 32)  # ... another request changes it
    cache.put(_claims(jti="m" * 32), _user(), TTL, generation)
    assert cache.get(_claims(jti="m" * 32)) is None


def test_committing_a_change_to_the_user_empties_the_process_cache() -> None:
    engine = create_engine("sqlite://")
    User.__table__.create(engine)  # type: ignore[attr-defined]
    claims = _claims(user_id="c" * 32, jti="n" * 32)
    with Session(engine) as db:
        db.add(_user("c" * 32))
        db.commit()
        user = db.get(User, "c" * 32)
        assert user is not None
        sessions.RECENT_CALLERS.put(claims, user, TTL, sessions.RECENT_CALLERS.generation)
        assert sessions.RECENT_CALLERS.get(claims) is not None
        user.token_version += 1
        db.commit()
    assert sessions.RECENT_CALLERS.get(claims) is None
    engine.dispose()
