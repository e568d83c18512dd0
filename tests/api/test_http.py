"""Cross-cutting HTTP behaviour: security headers, CORS, rate limits (memory and Redis)."""

from __future__ import annotations

from pathlib import Path

import pytest
from charterflow.settings import Settings

from tests.api.conftest import API, Api, backend_settings, serve
from tests.support.services import PostgresServer, S3Server


def test_security_headers_on_api_errors_and_docs(api: Api) -> None:
    for path in (f"{API}/auth/me", "/health/live", "/openapi.json", "/nowhere"):
        r = api.client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY", path
        assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin", path
        assert "default-src 'none'" in r.headers["content-security-policy"], path
        assert "strict-transport-security" not in r.headers  # development
    docs = api.client.get("/docs")
    assert docs.status_code == 200
    assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]


@pytest.mark.services
def test_hsts_in_production(
    pg_server: PostgresServer | None, s3_server: S3Server, tmp_path: Path
) -> None:
    """Production needs PostgreSQL, so this runs once, on PostgreSQL + S3."""
    settings = backend_settings("postgres", tmp_path, pg_server, s3_server)
    with serve("postgres", settings.model_copy(update={"charterflow_env": "production"})) as prod:
        r = prod.client.get("/health/live")
    assert r.headers["strict-transport-security"].startswith("max-age=")


def test_cors_allows_configured_origins_only(api: Api) -> None:
    with api.variant(cors_origins=["https://app.example.com"]) as cors:
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        }
        ok = cors.client.options(
            f"{API}/notebooks", headers={"Origin": "https://app.example.com", **preflight}
        )
        evil = cors.client.options(
            f"{API}/notebooks", headers={"Origin": "https://evil.example", **preflight}
        )
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in evil.headers


def test_login_attempts_are_limited_per_email_with_retry_after(api: Api) -> None:
    with api.variant(login_rate_limit_per_minute=3) as limited:
        account = limited.register()
        body = {"email": account.email, "password": "wrong-password"}
        codes = [limited.client.post(f"{API}/auth/login", json=body).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        blocked = limited.client.post(
            f"{API}/auth/login", json={**body, "password": account.password}
        )
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 60


def test_requests_are_limited_per_client(api: Api) -> None:
    with api.variant(rate_limit_per_minute=5) as limited:
        codes = [limited.client.get(f"{API}/auth/me").status_code for _ in range(6)]
        assert limited.client.get("/health/live").status_code == 200  # probes are not limited
    assert codes == [401] * 5 + [429]


@pytest.mark.services
def test_redis_counts_are_shared_between_replicas(api: Api, redis_url: str) -> None:
    """Two app instances on one Redis: the limit holds across both, as across pods."""
    settings: Settings = api.settings.model_copy(
        update={"redis_url": redis_url, "rate_limit_per_minute": 4}
    )
    with serve(api.backend, settings) as one, serve(api.backend, settings) as two:
        codes = [(one if i % 2 else two).client.get(f"{API}/auth/me").status_code for i in range(5)]
        r = one.client.get(f"{API}/auth/me")
    assert codes == [401] * 4 + [429]
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
