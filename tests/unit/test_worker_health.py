"""The worker's health endpoints (charterflow.ingest.health) over real HTTP: liveness never
depends on Redis, readiness does and names it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from charterflow.ingest.health import HealthServer
from charterflow_operator.dependencies import failing, fetch_json


class Redis:
    """A PING that can be made to fail, as an outage does."""

    def __init__(self) -> None:
        self.up = True

    def ping(self) -> bool:
        if not self.up:
            raise ConnectionError("Connection refused")
        return True


@pytest.fixture
def redis() -> Redis:
    return Redis()


@pytest.fixture
def url(redis: Redis) -> Iterator[str]:
    server = HealthServer(
        0,
        {"workers": lambda: True},
        lambda: 3,
        dependencies={"broker": redis.ping},
        host="127.0.0.1",
    ).start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def test_a_redis_outage_fails_readiness_but_never_liveness(redis: Redis, url: str) -> None:
    assert httpx.get(f"{url}/health/live").status_code == 200
    assert httpx.get(f"{url}/health/ready").json()["checks"] == {"workers": "ok", "broker": "ok"}

    redis.up = False
    live = httpx.get(f"{url}/health/live")
    assert live.status_code == 200
    assert live.json() == {"status": "ok", "checks": {"workers": "ok"}}
    ready = httpx.get(f"{url}/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["broker"] == "error: ConnectionError"


def test_the_operator_reads_the_outage_from_the_real_answer(redis: Redis, url: str) -> None:
    """What charterflow_operator.dependencies makes of this endpoint's 503 (over HTTP)."""
    redis.up = False
    answer = fetch_json(f"{url}/health/ready")
    assert answer is not None
    assert failing(answer) == ["redis"]
    assert fetch_json("http://127.0.0.1:9/health/ready") is None  # nothing listens: no verdict
