"""HPAs and PDBs (children/autoscaling.py): the HPA owns replicas when enabled."""

from __future__ import annotations

from charterflow_operator import children
from charterflow_operator.instance import (
    CharterFlow,
)

from tests.unit.operator.conftest import SECRETS, deployment, everything, respec


def test_hpa_owns_replicas_when_enabled(cf: CharterFlow) -> None:
    assert deployment(cf, "api")["spec"]["replicas"] == 2
    absent = children.build(cf, SECRETS).absent
    assert ("autoscaling/v2", "HorizontalPodAutoscaler", "charterflow-api") in absent

    scaled = respec(cf, api__autoscaling={"enabled": True, "minReplicas": 3, "maxReplicas": 9})
    assert "replicas" not in deployment(scaled, "api")["spec"]
    hpa = next(m for m in everything(scaled) if m["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "charterflow-api"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 9)
    metric = hpa["spec"]["metrics"][0]["resource"]["target"]
    assert metric == {"type": "Utilization", "averageUtilization": 70}


def test_worker_may_scale_on_queue_depth_beside_cpu(cf: CharterFlow) -> None:
    scaling = {
        "enabled": True,
        "queueDepth": {"averagePerReplica": 20, "selector": {"queue": "ingest"}},
    }
    scaled = respec(cf, worker__autoscaling=scaling)
    (hpa,) = [m for m in everything(scaled) if m["kind"] == "HorizontalPodAutoscaler"]
    cpu, queue = hpa["spec"]["metrics"]
    assert cpu["type"] == "Resource"
    assert queue == {
        "type": "External",
        "external": {
            "metric": {
                "name": "charterflow_ingest_queue_depth",
                "selector": {"matchLabels": {"queue": "ingest"}},
            },
            "target": {"type": "AverageValue", "averageValue": "20"},
        },
    }
    plain = respec(cf, worker__autoscaling={"enabled": True})
    (hpa,) = [m for m in everything(plain) if m["kind"] == "HorizontalPodAutoscaler"]
    assert [m["type"] for m in hpa["spec"]["metrics"]] == ["Resource"]
