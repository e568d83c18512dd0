"""One migration history for SQLite and PostgreSQL: idempotent, concurrent-safe, and equal
to the models."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from charterflow.db import Base, alembic_config, current_revision, make_engine, migrate
from charterflow.settings import Settings

from tests.api.conftest import backend_settings
from tests.support.services import PostgresServer


@pytest.fixture
def fresh(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for an empty database of ``backend`` (not migrated)."""
    pg = s3 = None
    if backend == "postgres":
        pg = request.getfixturevalue("pg_server")
        s3 = request.getfixturevalue("s3_server")
    return backend_settings(backend, tmp_path, pg, s3)


def _head(settings: Settings) -> str | None:
    engine = make_engine(settings)
    try:
        return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    finally:
        engine.dispose()


def test_migrate_twice_reaches_head_and_matches_the_models(fresh: Settings) -> None:
    engine = make_engine(fresh)
    try:
        assert current_revision(engine) is None
        migrate(engine)
        migrate(engine)  # idempotent
        assert current_revision(engine) == _head(fresh)
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == [], diff
    finally:
        engine.dispose()


@pytest.mark.services
def test_concurrent_migrations_are_serialised_on_postgres(pg_server: PostgresServer | None) -> None:
    """Several pods start at once: every `migrate` returns and the schema is at head."""
    if pg_server is None:
        url = os.environ["TEST_DATABASE_URL"]
    else:
        url = pg_server.create_database(f"mig_{uuid.uuid4().hex[:12]}")
    settings = Settings(_env_file=None, database_url=url)
    engines = [make_engine(settings) for _ in range(4)]
    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            list(pool.map(migrate, engines))
        assert current_revision(engines[0]) == _head(settings)
    finally:
        for engine in engines:
            engine.dispose()
