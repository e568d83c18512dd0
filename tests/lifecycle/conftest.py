"""An instance for the lifecycle tests: its own PostgreSQL database and S3 bucket, and the real
``charterflow`` CLI run as a subprocess against them (as the backup CronJob and restore Job do).

``DATABASE_URL`` carries a password (the test server trusts every login, so any password
connects) so that the tests can check that no output ever shows it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.conftest import IN_CI
from tests.support.services import PostgresServer, S3Server

CLI = Path(sys.executable).with_name("charterflow")
PASSWORD = "pw-" + uuid.uuid4().hex  # what must never be printed


@dataclass
class Instance:
    """One CharterFlow's database and bucket, and how to run its CLI."""

    pg: PostgresServer
    s3: S3Server
    database: str
    bucket: str
    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """``DATABASE_URL``, with the password."""
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.pg.port}/{self.database}"

    @property
    def admin_url(self) -> str:
        return self.pg.url(self.database)

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "DATABASE_URL": self.url,
            "S3_BUCKET": self.bucket,
            "S3_REGION": self.s3.region,
            "S3_ENDPOINT_URL": self.s3.endpoint,
            "AWS_ACCESS_KEY_ID": self.s3.access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3.secret_key,
            "PG_DUMP": str(self.pg.bin / "pg_dump"),
            "PG_RESTORE": str(self.pg.bin / "pg_restore"),
            "CHARTERFLOW_INSTANCE": "acme",
        }
        env.update(self.extra_env)
        env.update(overrides)
        return {k: v for k, v in env.items() if v != ""}

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run ``charterflow ARGS`` with this instance's environment (``NAME=""`` unsets)."""
        done = subprocess.run(
            [str(CLI), *args],
            env=self.env(**env),
            cwd=self.workdir,  # no stray .env file
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert PASSWORD not in done.stdout + done.stderr, "the database password was printed"
        return done

    def recreate_database(self) -> None:
        """DROP DATABASE + CREATE DATABASE: empty, not even the vector extension."""
        with psycopg.connect(self.pg.url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(self.database))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def objects(self, prefix: str = "") -> dict[str, int]:
        pages = self.s3.client().get_paginator("list_objects_v2")
        return {
            o["Key"]: o["Size"]
            for page in pages.paginate(Bucket=self.bucket, Prefix=prefix)
            for o in page.get("Contents", [])
        }

    def tables(self) -> dict[str, tuple[int, str]]:
        """Every table in ``public``: ``(row count, md5 of its rows in a fixed order)``."""
        with psycopg.connect(self.admin_url) as conn:
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
                )
            ]
            rows = "string_agg(t::text, E'\\n' ORDER BY t::text)"
            digest = f"SELECT count(*), md5(coalesce({rows}, ''))"
            return {
                name: tuple(  # type: ignore[misc]
                    conn.execute(
                        sql.SQL(digest + " FROM {} AS t").format(sql.Identifier(name))
                    ).fetchone()
                )
                for name in names
            }


@pytest.fixture(scope="session")
def pg(pg_server: PostgresServer | None) -> PostgresServer:
    """Our own PostgreSQL: these tests create and drop whole databases."""
    if pg_server is None:
        message = "lifecycle tests need the suite's own PostgreSQL (TEST_DATABASE_URL is set)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return pg_server


@pytest.fixture(scope="session")
def make_instance(
    pg: PostgresServer, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Instance]:
    """A factory of instances, each with a fresh database (``migrated`` or empty) and bucket."""

    def make(migrated: bool = True, **extra_env: str) -> Instance:
        suffix = uuid.uuid4().hex[:12]
        name = f"life_{suffix}"
        pg.create_database(name)
        inst = Instance(
            pg,
            s3_server,
            name,
            s3_server.create_bucket(f"cf-life-{suffix}"),
            tmp_path_factory.mktemp("instance"),
            dict(extra_env),
        )
        if migrated:
            done = inst.cli("migrate")
            assert done.returncode == 0, done.stderr
        return inst

    return make


def manifest_of(inst: Instance, key: str) -> dict[str, Any]:
    import json

    body = inst.s3.client().get_object(Bucket=inst.bucket, Key=key)["Body"].read()
    return dict(json.loads(body))
