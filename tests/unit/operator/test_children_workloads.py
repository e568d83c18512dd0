"""The Deployments (children/workloads.py): selectors, probes, ports, thread bounds."""

from __future__ import annotations

from typing import Any

import pytest
from charterflow_operator.instance import (
    CharterFlow,
)

from tests.unit.operator.conftest import deployment, everything, respec


def test_selectors_leave_out_the_version(cf: CharterFlow) -> None:
    for component in ("api", "worker"):
        selector = deployment(cf, component)["spec"]["selector"]["matchLabels"]
        assert "app.kubernetes.io/version" not in selector
        assert selector["app.kubernetes.io/component"] == component


def test_api_probes_port_and_rollout(cf: CharterFlow) -> None:
    spec = deployment(cf, "api")["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    assert container["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
    ]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    for spread in spec["template"]["spec"]["topologySpreadConstraints"]:
        assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    service = next(m for m in everything(cf) if m["kind"] == "Service")
    assert service["spec"]["ports"][0]["port"] == 80


def test_worker_probes_its_health_port(cf: CharterFlow) -> None:
    (container,) = deployment(cf, "worker")["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["charterflow", "worker"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "health"}
    assert container["ports"][0]["containerPort"] == 9191


@pytest.mark.parametrize(
    ("limits", "requests", "concurrency", "expected"),
    [
        ({"cpu": "2"}, {"cpu": "500m"}, 4, (2, 2)),
        ({"cpu": "1500m"}, {}, 8, (2, 2)),
        ({"cpu": "250m"}, {}, 4, (1, 1)),
        ({"cpu": 3}, {}, 2, (2, 3)),
        ({}, {"cpu": "4"}, 8, (4, 4)),
        ({}, {}, 6, (6, 1)),
    ],
)
def test_threads_are_bounded_by_the_cpu_limit(
    cf: CharterFlow,
    limits: dict[str, Any],
    requests: dict[str, Any],
    concurrency: int,
    expected: tuple[int, int],
) -> None:
    changed = respec(
        cf,
        worker__concurrency=concurrency,
        worker__resources={"limits": limits, "requests": requests},
    )
    (container,) = deployment(changed, "worker")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    threads, blas = expected
    assert env["WORKER_THREADS"] == str(threads)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        assert env[name] == str(blas)
