"""A replica's cached callers (``AUTH_CACHE_SECONDS``) against real PostgreSQL and Redis: a
revocation made by another replica refuses the token here once that replica announces it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from charterflow.db import make_engine, migrate_database
from charterflow.main import create_app
from charterflow.models import RevokedToken
from charterflow.security import decode_claims
from charterflow.services.sessions import AUTH_EPOCH_KEY
from charterflow.settings import Settings
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

API = "/api/v1"


@pytest.mark.services
def test_a_revocation_announced_by_another_replica_refuses_a_cached_caller(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = migrate_database(
        Settings(
            _env_file=None,
            database_url=postgres_url,
            redis_url=redis_url,
            upload_path=tmp_path / "uploads",
            auth_cache_seconds=10,  # the longest allowed: the second read below is a hit
        )
    )
    app = create_app(settings)
    with TestClient(app) as client:
        r = client.post(
            f"{API}/auth/register",
            json={"email": "ada@example.com", "password": "a long password 1", "name": "Ada"},
        )
        assert r.status_code == 201, r.text
        token = r.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get(f"{API}/notebooks", headers=headers).status_code == 200

        # Another replica signs the token out: the row in the database, written outside this
        # process (no ORM event here), then its announcement in Redis.
        claims = decode_claims(app.state.settings, token)  # its development signing key
        engine = make_engine(settings)
        with Session(engine) as db:
            expires = datetime.now(UTC) + timedelta(hours=1)
            db.add(RevokedToken(jti=claims.jti, expires_at=expires))
            db.commit()
        engine.dispose()
        # Not announced yet: this replica still serves its cached caller (the cache is used).
        assert client.get(f"{API}/notebooks", headers=headers).status_code == 200
        with redis.Redis.from_url(redis_url) as announcer:
            announcer.incr(AUTH_EPOCH_KEY)
        assert client.get(f"{API}/notebooks", headers=headers).status_code == 401
        # A write never used the cache.
        r = client.post(f"{API}/notebooks", json={"title": "x"}, headers=headers)
        assert r.status_code == 401
