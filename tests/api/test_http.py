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
    # Sliding window: this minute's attempts still weigh into the next one, so the wait can
    # pass the minute's end (3 attempts now: a third into the next minute), never two minutes.
    assert 1 <= int(blocked.headers["retry-after"]) <= 2 * 60


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


def test_wrong_passwords_from_many_addresses_do_not_lock_the_owner_out(api: Api) -> None:
    with api.variant(
        login_rate_limit_per_minute=3, login_slowdown_seconds=0.05, forwarded_allow_ips="127.0.0.1"
    ) as proxied:
        victim = proxied.register()
        wrong = {"email": victim.email, "password": "wrong-password"}
        codes = [
            proxied.client.post(
                f"{API}/auth/login", json=wrong, headers={"X-Forwarded-For": f"10.0.0.{i}"}
            ).status_code
            for i in range(10)
        ]
        assert codes == [401] * 10  # slowed down past 3, never refused
        right = {"email": victim.email, "password": victim.password}
        own = proxied.client.post(
            f"{API}/auth/login", json=right, headers={"X-Forwarded-For": "10.9.9.9"}
        )
        assert own.status_code == 200, own.text
        # One client hammering one account is still refused.
        same = [
            proxied.client.post(
                f"{API}/auth/login", json=wrong, headers={"X-Forwarded-For": "10.1.1.1"}
            ).status_code
            for _ in range(4)
        ]
    assert same == [401, 401, 401, 429]


def test_forwarded_for_is_believed_only_from_configured_proxies(api: Api) -> None:
    def rotating(app: Api) -> list[int]:
        return [
            app.client.get(
                f"{API}/auth/me", headers={"X-Forwarded-For": f"203.0.113.{i}"}
            ).status_code
            for i in range(6)
        ]

    with api.variant(rate_limit_per_minute=5) as direct:
        assert rotating(direct) == [401] * 5 + [429]  # the header did not change the client
    with api.variant(rate_limit_per_minute=5, forwarded_allow_ips="127.0.0.0/8") as proxied:
        assert rotating(proxied) == [401] * 6  # behind a trusted proxy: six clients


def test_registration_is_rate_limited_per_client(api: Api) -> None:
    with api.variant(register_rate_limit_per_minute=2) as limited:
        codes = [
            limited.client.post(
                f"{API}/auth/register",
                json={"email": f"probe{i}@example.com", "password": "x" * 12, "name": "P"},
            ).status_code
            for i in range(3)
        ]
    assert codes == [201, 201, 429]
