"""One migration history for SQLite and PostgreSQL: idempotent, concurrent-safe, and equal
to the models."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from charterflow.db import Base, alembic_config, current_revision, make_engine, migrate
from charterflow.ops.migrate import migrate_phase
from charterflow.retrieval.search import VECTOR_SQL
from charterflow.settings import Settings
from sqlalchemy import Engine, text

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


def _indexes(engine: Engine) -> dict[str, tuple[bool, str]]:
    """The chunks table's HNSW indexes: name -> (valid, definition)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = 'chunks'::regclass AND pg_get_indexdef(i.indexrelid) "
                "LIKE '%USING hnsw%'"
            )
        )
        return {name: (valid, definition) for name, valid, definition in rows}


@pytest.mark.services
def test_the_hnsw_index_is_rebuilt_beside_the_old_one_then_the_old_one_dropped(
    pg_server: PostgresServer | None,
) -> None:
    if pg_server is None:
        pytest.skip("needs a database of its own")
    url = pg_server.create_database(f"hnsw_{uuid.uuid4().hex[:12]}")
    engine = make_engine(Settings(_env_file=None, database_url=url))
    try:
        migrate(engine, "0004")
        assert set(_indexes(engine)) == {"ix_chunks_embedding_hnsw"}

        # Expand stops before the contract revision 0006: old pods still search, both stay.
        expand_head = ScriptDirectory.from_config(alembic_config(engine)).get_revision("0006")
        assert migrate_phase(engine, "expand") == expand_head.down_revision
        indexes = _indexes(engine)
        assert set(indexes) == {"ix_chunks_embedding_hnsw", "ix_chunks_embedding_hnsw_half"}
        valid, definition = indexes["ix_chunks_embedding_hnsw_half"]
        assert valid
        assert "(embedding)::halfvec(384)" in definition
        assert "halfvec_cosine_ops" in definition
        assert "m='32'" in definition
        assert "ef_construction='200'" in definition

        # An interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index: expand rebuilds it.
        # (The expand revisions after 0005 never ran then: undo them first.)
        cfg = alembic_config(engine)
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0005")
            conn.commit()
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE pg_index SET indisvalid = false "
                    "WHERE indexrelid = 'ix_chunks_embedding_hnsw_half'::regclass"
                )
            )
            conn.execute(text("UPDATE alembic_version SET version_num = '0004'"))
        assert migrate_phase(engine, "expand") == expand_head.down_revision
        assert _indexes(engine)["ix_chunks_embedding_hnsw_half"][0]

        assert migrate_phase(engine, "contract") == "0006"
        assert set(_indexes(engine)) == {"ix_chunks_embedding_hnsw_half"}
        with engine.connect() as conn:  # search's vector query is the one the index serves
            # On an empty table the planner prefers the notebook's b-tree; without it (DDL is
            # transactional: rolled back below) and without sequential scans, it can use HNSW.
            conn.execute(text("DROP INDEX ix_chunks_notebook_model"))
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = conn.execute(
                text("EXPLAIN " + VECTOR_SQL),
                {"nb": "n", "model": "m", "v": "[" + ",".join(["0.1"] * 384) + "]", "k": 5},
            )
            assert "ix_chunks_embedding_hnsw_half" in "\n".join(r[0] for r in plan)
            conn.rollback()
    finally:
        engine.dispose()
