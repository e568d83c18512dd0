"""Dependency outages named in status (dependencies.py): what an unready pod's readiness
answer says, read the way the operator reads it."""

from __future__ import annotations

from charterflow_operator.dependencies import failing

API_DOWN = {
    "status": "error",
    "failed": ["database", "redis"],
    "checks": {
        "database": {"status": "error", "error": "OperationalError"},
        "redis": {"status": "error", "error": "ConnectionError"},
        "storage": {"status": "ok"},
        "embeddings": {"status": "loaded"},
    },
}
WORKER_DOWN = {"status": "error", "checks": {"workers": "ok", "broker": "error: ConnectionError"}}


def test_the_most_fundamental_failing_dependency_comes_first() -> None:
    assert failing(API_DOWN) == ["database", "redis"]
    assert failing(WORKER_DOWN) == ["redis"]
    assert failing({"status": "ok", "checks": {"workers": "ok", "broker": "ok"}}) == []
