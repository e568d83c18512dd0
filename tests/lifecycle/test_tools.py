"""The PostgreSQL client tools: their version must not be older than what they read."""

from __future__ import annotations

import psycopg
import pytest
from charterflow.ops import LifecycleError
from charterflow.ops.postgres import Database, require_major, tool_version
from charterflow.settings import Settings

from tests.support.services import PostgresServer


@pytest.mark.services
def test_the_client_tools_version_is_read_from_the_real_binaries(pg: PostgresServer) -> None:
    with psycopg.connect(pg.url()) as conn:
        server_major = conn.info.server_version // 10000
    for tool in ("pg_dump", "pg_restore"):
        major, full = tool_version(str(pg.bin / tool))
        assert major == server_major
        assert full.startswith(f"{major}.")


def test_an_older_pg_dump_is_refused_with_a_clear_message() -> None:
    require_major("pg_dump", 18, 18, "the database server")
    with pytest.raises(LifecycleError) as caught:
        require_major("pg_dump", 15, 18, "the database server")
    assert str(caught.value) == (
        "pg_dump is version 15 but the database server is version 18: use the client tools "
        "of PostgreSQL 18 or newer (set PG_DUMP to its path)"
    )


def test_the_password_travels_apart_from_the_url() -> None:
    url = "postgresql://cf:s%40cret@db:5432/app?sslmode=require"
    db = Database.from_settings(Settings(_env_file=None, database_url=url))
    assert db.conninfo == "postgresql://cf@db:5432/app?sslmode=require"
    assert db.password == "s@cret"
    assert db.env("test")["PGPASSWORD"] == "s@cret"
    assert db.scrub("auth failed for s@cret") == "auth failed for ***"


def test_sqlite_cannot_be_backed_up() -> None:
    with pytest.raises(LifecycleError, match="need PostgreSQL"):
        Database.from_settings(Settings(_env_file=None, database_url="sqlite:./x.db"))
