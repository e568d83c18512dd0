"""Operational endpoints against real dependencies: liveness, readiness, metrics, request ids."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from charterflow.main import create_app
from charterflow.settings import Settings
from fastapi.testclient import TestClient

from tests.support.processes import free_port
from tests.support.services import PostgresServer, scratch_dir


def sqlite_settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        _env_file=None,
        database_url=f"sqlite:{tmp_path}/app.db",
        upload_path=tmp_path / "uploads",
        **extra,
    )


def test_live_and_ready_on_sqlite_and_local_files(tmp_path: Path) -> None:
    with TestClient(create_app(sqlite_settings(tmp_path))) as client:
        assert client.get("/health/live").json() == {"status": "ok"}
        ready = client.get("/health/ready")
        assert ready.status_code == 200
        checks = ready.json()["checks"]
        assert checks["database"]["status"] == "ok"
        assert checks["storage"] == {**checks["storage"], "status": "ok", "backend": "local"}
        assert checks["redis"] == {"status": "not_configured"}


def test_ready_names_the_active_embedder(tmp_path: Path) -> None:
    app = create_app(sqlite_settings(tmp_path, embeddings_provider="semantic"))
    with TestClient(app) as client:
        assert app.state.embedder.done.wait(120)
        ready = client.get("/health/ready")
    assert ready.status_code == 200
    embeddings = ready.json()["checks"]["embeddings"]
    assert embeddings == {**embeddings, "status": "ok", "provider": "semantic"}
    assert embeddings["model"] == "all-MiniLM-L6-v2"


def test_an_embedder_that_cannot_load_makes_ready_503(tmp_path: Path) -> None:
    # openai without EMBEDDINGS_URL: the embedder cannot be built.
    app = create_app(sqlite_settings(tmp_path, embeddings_provider="openai"))
    with TestClient(app) as client:
        assert app.state.embedder.done.wait(60)
        ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["failed"] == ["embeddings"]
    assert "EMBEDDINGS_URL" in ready.json()["checks"]["embeddings"]["error"]


@pytest.mark.services
def test_ready_on_postgres_redis_and_s3(postgres_url: str, redis_url: str, s3_env: dict) -> None:
    settings = Settings(
        _env_file=None,
        database_url=postgres_url,
        redis_url=redis_url,
        **{k.lower(): v for k, v in s3_env.items()},
    )
    with TestClient(create_app(settings)) as client:
        assert client.app.state.embedder.done.wait(60)
        body = client.get("/health/ready").json()
    assert body["status"] == "ok", body
    assert {n: c["status"] for n, c in body["checks"].items()} == {
        "database": "ok",
        "redis": "ok",
        "storage": "ok",
        "embeddings": "ok",
    }
    assert body["checks"]["storage"]["backend"] == "s3"


@pytest.mark.services
def test_stopped_database_makes_ready_503_within_3s_while_live_stays_200(
    pg_server: PostgresServer | None,
) -> None:
    own = PostgresServer(scratch_dir("pg-stop")).start()  # our own server, to stop it
    try:
        settings = Settings(_env_file=None, database_url=own.url(), upload_path=own.root / "up")
        with TestClient(create_app(settings)) as client:
            assert client.get("/health/ready").status_code == 200
            own.stop()
            start = time.monotonic()
            ready = client.get("/health/ready")
            elapsed = time.monotonic() - start
            assert ready.status_code == 503
            assert ready.json()["failed"] == ["database"]
            assert elapsed < 3, f"readiness took {elapsed:.1f}s"
            assert client.get("/health/live").status_code == 200
    finally:
        own.stop()


def test_unreachable_redis_and_s3_are_named(tmp_path: Path) -> None:
    dead = free_port()
    settings = sqlite_settings(
        tmp_path,
        redis_url=f"redis://127.0.0.1:{dead}/0",
        s3_bucket="nowhere",
        s3_endpoint_url=f"http://127.0.0.1:{dead}",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    with TestClient(create_app(settings)) as client:
        ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["failed"] == ["redis", "storage"]


def test_metrics_use_route_templates_and_request_ids_echo(tmp_path: Path) -> None:
    with TestClient(create_app(sqlite_settings(tmp_path))) as client:
        given = client.get("/health/live", headers={"X-Request-ID": "abc-123"})
        assert given.headers["x-request-id"] == "abc-123"
        generated = client.get("/health/live").headers["x-request-id"]
        assert len(generated) == 32
        bad = client.get("/health/live", headers={"X-Request-ID": "bad id\twith spaces"})
        assert bad.headers["x-request-id"] != "bad id\twith spaces"
        client.get("/no/such/path/123")
        text = client.get("/metrics").text
    assert (
        'charterflow_http_requests_total{method="GET",route="/health/live",status="200"} 3.0'
        in text
    )
    assert 'route="unmatched",status="404"' in text
    assert "/no/such/path/123" not in text
    assert "charterflow_http_requests_in_flight" in text
    assert "charterflow_http_request_duration_seconds_bucket" in text
