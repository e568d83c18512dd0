"""Encryption in transit, against the real servers with TLS on: PostgreSQL (``ssl=on``, plain
connections refused) reached with ``sslmode=verify-full`` by the API, migrations, backup and
restore, and Redis (TLS port only) reached over ``rediss://`` by the API's client and the
Dramatiq broker, each verifying the server against the CA the operator mounts."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from charterflow.ingest.actors import make_broker, queue_depth
from charterflow.ingest_queue import make_job_queue
from charterflow.main import create_app, make_redis
from charterflow.settings import Settings
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import start_or_fail
from tests.lifecycle.conftest import Instance
from tests.support.services import (
    PG_SYSTEM_USER,
    PostgresServer,
    RedisServer,
    S3Server,
    _ensure_system_user,
    scratch_dir,
    tls_pg_bin,
)
from tests.support.tls import ServerTLS, make_ca, server_tls


@dataclass
class TlsPostgres:
    server: PostgresServer
    certs: ServerTLS
    other_ca: Path  # a CA that did not sign the server's certificate


@pytest.fixture(scope="module")
def tls_pg() -> Iterator[TlsPostgres]:
    root = scratch_dir("pg-tls")
    certs = server_tls(root / "certs")
    other_ca, _, _ = make_ca(root / "other", "someone-else")
    bin_dir = start_or_fail("PostgreSQL built with OpenSSL", tls_pg_bin)
    if os.geteuid() == 0:  # the server runs as its own user, who must own its key
        user = _ensure_system_user(PG_SYSTEM_USER)
        for path in (root / "certs", certs.cert, certs.key):
            shutil.chown(path, user)
    settings = ("ssl=on", f"ssl_cert_file={certs.cert}", f"ssl_key_file={certs.key}")
    server = PostgresServer(root, settings=settings, bin_dir=bin_dir)
    start_or_fail("PostgreSQL with TLS", server.start)
    # Refuse every connection that is not encrypted (first matching line wins).
    hba = root / "pgdata" / "pg_hba.conf"
    hba.write_text("hostnossl all all all reject\n" + hba.read_text())
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
    yield TlsPostgres(server, certs, other_ca)
    server.stop()


def _verify_full(ca: Path) -> dict[str, str]:
    return {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": str(ca)}


def test_postgres_refuses_plain_and_unverified_connections(tls_pg: TlsPostgres) -> None:
    url = tls_pg.server.url()
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(url, sslmode="disable", connect_timeout=5)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(url, sslmode="verify-full", sslrootcert=str(tls_pg.other_ca))
    with psycopg.connect(url, sslmode="verify-full", sslrootcert=str(tls_pg.certs.ca)) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()


def test_migrate_backup_restore_and_the_api_over_verified_tls(
    tls_pg: TlsPostgres,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"tls_{uuid.uuid4().hex[:12]}"
    tls_pg.server.create_database(name)
    inst = Instance(
        tls_pg.server,
        s3_server,
        name,
        s3_server.create_bucket(f"cf-tls-{uuid.uuid4().hex[:12]}"),
        tmp_path,
        _verify_full(tls_pg.certs.ca),  # what the operator sets in every pod and Job
    )
    wrong = inst.cli("migrate", **_verify_full(tls_pg.other_ca))
    assert wrong.returncode != 0
    assert "certificate verify failed" in wrong.stderr
    for args in (("migrate",), ("backup",), ("restore", "--from", "latest", "--force")):
        done = inst.cli(*args)
        assert done.returncode == 0, (args, done.stderr)

    for key, value in _verify_full(tls_pg.certs.ca).items():
        monkeypatch.setenv(key, value)
    settings = Settings(
        _env_file=None,
        database_url=inst.url,
        upload_path=tmp_path / "uploads",
        jwt_secret="t" * 40,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        ready = client.get("/health/ready").json()
        assert ready["checks"]["database"]["status"] == "ok"
        with app.state.engine.connect() as conn:
            encrypted = conn.scalar(
                text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            )
    assert encrypted is True


@pytest.fixture(scope="module")
def tls_redis() -> Iterator[tuple[RedisServer, ServerTLS, Path]]:
    root = scratch_dir("redis-tls")
    certs = server_tls(root / "certs")
    other_ca, _, _ = make_ca(root / "other", "someone-else")
    server = RedisServer(root, host="127.0.0.1", tls=(certs.cert, certs.key))
    start_or_fail("Redis with TLS", server.start)
    yield server, certs, other_ca
    server.stop()


def test_redis_over_verified_tls_for_the_api_and_the_queue(
    tls_redis: tuple[RedisServer, ServerTLS, Path], tmp_path: Path
) -> None:
    server, certs, other_ca = tls_redis
    assert server.url.startswith("rediss://")

    def settings(ca: Path | None) -> Settings:
        return Settings(
            _env_file=None,
            database_url=f"sqlite:{tmp_path}/app.db",
            redis_url=server.url,
            redis_ca_file=str(ca) if ca else None,
        )

    good = settings(certs.ca)
    assert good.problems() == []
    assert make_redis(good).ping() is True
    broker = make_broker(good)
    assert queue_depth(broker) == 0
    make_job_queue(good).enqueue_ingest("doc-over-tls")
    assert queue_depth(broker) > 0
    broker.client.flushdb()
    for bad in (settings(other_ca), settings(None)):  # the wrong CA; the system's CAs
        with pytest.raises(Exception, match="certificate verify failed"):
            make_redis(bad).ping()


def test_a_ca_file_needs_a_tls_url(tmp_path: Path) -> None:
    plain = Settings(_env_file=None, redis_url="redis://127.0.0.1:1/0", redis_ca_file="/ca.crt")
    assert ("REDIS_URL", "must be rediss:// (TLS) when REDIS_CA_FILE is set") in plain.problems()
