"""DATABASE_READ_URL against a real streaming replica: two PostgreSQL servers, the second a
hot standby made by ``pg_basebackup`` and fed by WAL streaming.

Pausing WAL replay on the standby freezes what it shows, so each read can be seen to come
from one server or the other: a search or list that still shows the old state read the
replica; a write that succeeds (the standby refuses writes) and a read-your-write that shows
the new state used the primary.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from charterflow.api.deps import DbSession, ReadDb
from charterflow.db import migrate_database
from charterflow.main import create_app
from charterflow.settings import Settings
from fastapi.testclient import TestClient

from tests.conftest import start_or_fail
from tests.support.processes import wait_until
from tests.support.services import PostgresServer, scratch_dir

pytestmark = pytest.mark.services
API = "/api/v1"
TEXT = (
    "The lighthouse keeper logs the barometric pressure every four hours. "
    "Storm warnings are raised when the pressure drops quickly."
)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    primary = start_or_fail("PostgreSQL", lambda: PostgresServer(scratch_dir("pg-primary")).start())
    try:
        replica = start_or_fail(
            "PostgreSQL standby", lambda: primary.start_replica(scratch_dir("pg-replica"))
        )
        try:
            yield primary, replica
        finally:
            replica.stop()
    finally:
        primary.stop()


def _one(url: str, sql: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql)
        row = cur.fetchone() if cur.description else None
    return row[0] if row else None


def _replay(replica_url: str, *, paused: bool) -> None:
    """Pause or resume WAL replay on the standby, and wait until it took effect."""
    _one(replica_url, f"SELECT pg_wal_replay_{'pause' if paused else 'resume'}()")
    want = "paused" if paused else "not paused"
    wait_until(
        lambda: _one(replica_url, "SELECT pg_get_wal_replay_pause_state()") == want,
        30,
        f"replay {want}",
    )


def test_the_replica_streams_from_the_primary(
    servers: tuple[PostgresServer, PostgresServer],
) -> None:
    primary, replica = servers
    assert _one(replica.url(), "SELECT pg_is_in_recovery()") is True
    assert _one(primary.url(), "SELECT pg_is_in_recovery()") is False
    assert _one(primary.url(), "SELECT state FROM pg_stat_replication") == "streaming"
    _one(primary.url(), "CREATE TABLE replication_probe AS SELECT 42 AS answer")
    wait_until(
        lambda: _one(replica.url(), "SELECT to_regclass('replication_probe') IS NOT NULL"),
        30,
        "the table on the replica",
    )
    assert _one(replica.url(), "SELECT answer FROM replication_probe") == 42
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        _one(replica.url(), "INSERT INTO replication_probe VALUES (1)")


@pytest.fixture
def replicated_settings(
    servers: tuple[PostgresServer, PostgresServer], tmp_path: Path
) -> Iterator[Settings]:
    primary, replica = servers
    name = f"rr_{uuid.uuid4().hex[:10]}"
    settings = migrate_database(
        Settings(
            _env_file=None,
            database_url=primary.create_database(name),
            database_read_url=replica.url(name),
            upload_path=tmp_path / "uploads",
            embeddings_provider="hashing",
            rate_limit_per_minute=1_000_000,
            register_rate_limit_per_minute=1_000_000,
            jwt_secret="test-signing-key-" + "k" * 32,
        )
    )
    head = _one(primary.url(name), "SELECT version_num FROM alembic_version")
    wait_until(
        lambda: (
            _one(replica.url(name), "SELECT to_regclass('alembic_version') IS NOT NULL")
            and _one(replica.url(name), "SELECT version_num FROM alembic_version") == head
        ),
        60,
        "the migrated schema on the replica",
    )
    yield settings
    _one(replica.url(), "SELECT pg_wal_replay_resume()")  # whatever the test left


def test_reads_go_to_the_replica_and_writes_to_the_primary(
    replicated_settings: Settings,
) -> None:
    settings = replicated_settings
    assert settings.database_read_url is not None
    replica_url = settings.database_read_url
    with TestClient(create_app(settings)) as client:
        ready = client.get("/health/ready").json()
        assert ready["checks"]["database_read"]["status"] == "ok"
        email = f"rr-{uuid.uuid4().hex[:8]}@example.com"
        r = client.post(
            f"{API}/auth/register",
            json={"email": email, "password": "correct horse battery", "name": "Rae"},
        )
        assert r.status_code == 201, r.text
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        notebook = client.post(f"{API}/notebooks", json={"title": "Log"}, headers=auth).json()
        doc = client.post(
            f"{API}/notebooks/{notebook['id']}/documents/text",
            json={"title": "Keeper's log", "text": TEXT},
            headers=auth,
        ).json()
        wait_until(
            lambda: (
                client.get(f"{API}/documents/{doc['id']}", headers=auth).json()["status"] == "ready"
            ),
            60,
            "the document ingested",
        )
        search = f"{API}/notebooks/{notebook['id']}/search"

        def found() -> list[str]:
            r = client.get(search, params={"q": "barometric pressure"}, headers=auth)
            assert r.status_code == 200, r.text
            return [h["document_id"] for h in r.json()["items"]]

        wait_until(lambda: doc["id"] in found(), 30, "the chunks on the replica")

        _replay(replica_url, paused=True)
        # Writes and read-your-writes: the primary (the standby would refuse the insert).
        created = client.post(f"{API}/notebooks", json={"title": "New"}, headers=auth)
        assert created.status_code == 201, created.text
        new_id = created.json()["id"]
        assert client.get(f"{API}/notebooks/{new_id}", headers=auth).status_code == 200
        gone = client.delete(f"{API}/documents/{doc['id']}", headers=auth)
        assert gone.status_code == 204, gone.text
        assert client.get(f"{API}/documents/{doc['id']}", headers=auth).status_code == 404
        # Lists, searches and asks: the replica, still as it was before the pause.
        listed = client.get(f"{API}/notebooks", headers=auth).json()
        assert [n["id"] for n in listed["items"]] == [notebook["id"]]
        assert listed["total"] == 1
        assert doc["id"] in found()
        asked = client.post(
            f"{API}/notebooks/{notebook['id']}/ask",
            json={"question": "When is the barometric pressure logged?"},
            headers=auth,
        ).json()
        assert [c["document_id"] for c in asked["citations"]][:1] == [doc["id"]]

        _replay(replica_url, paused=False)
        wait_until(lambda: doc["id"] not in found(), 30, "the deletion on the replica")
        listed = client.get(f"{API}/notebooks", headers=auth).json()
        assert sorted(n["id"] for n in listed["items"]) == sorted([notebook["id"], new_id])


def test_a_replica_url_needs_postgresql(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite:{tmp_path}/app.db",
        database_read_url=f"sqlite:{tmp_path}/other.db",
    )
    assert ("DATABASE_READ_URL", "a read replica needs PostgreSQL") in settings.problems()
    bad = Settings(_env_file=None, database_read_url="mysql://x/y")
    assert any(name == "DATABASE_READ_URL" for name, _ in bad.problems())


def test_without_a_replica_reads_share_the_request_session(tmp_path: Path) -> None:
    """One pooled connection per request, as without the setting: a second session per
    request would halve what the pool serves (16 concurrent asks timed out waiting on 20)."""
    settings = migrate_database(
        Settings(_env_file=None, database_url=f"sqlite:{tmp_path}/app.db", upload_path=tmp_path)
    )
    app = create_app(settings)

    @app.get("/same-session")
    def same(db: DbSession, read: ReadDb) -> dict[str, bool]:
        return {"same": db is read}

    with TestClient(app) as client:
        assert client.get("/same-session").json() == {"same": True}
