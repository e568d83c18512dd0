"""How many pods run and how many may go: the optional HPAs and the PodDisruptionBudgets."""

from __future__ import annotations

from typing import Any

from charterflow_operator import api
from charterflow_operator.instance import CharterFlow, Manifest

# What the worker exports on /metrics (charterflow.ingest.health): messages waiting in Redis.
QUEUE_DEPTH_METRIC = "charterflow_ingest_queue_depth"


def queue_metric(cf: CharterFlow) -> dict[str, Any] | None:
    """The worker HPA's External metric on the ingest queue depth (served by an external
    metrics adapter such as prometheus-adapter or KEDA's), or None when not asked for.

    ``AverageValue``: the HPA divides the queue depth by the current replicas and adds workers
    until each has at most ``averagePerReplica`` messages waiting.
    """
    queue = cf.spec["worker"]["autoscaling"].get("queueDepth")
    if not queue:
        return None
    metric: dict[str, Any] = {"name": queue.get("metricName") or QUEUE_DEPTH_METRIC}
    if queue.get("selector"):
        metric["selector"] = {"matchLabels": dict(queue["selector"])}
    target = {"type": "AverageValue", "averageValue": str(queue["averagePerReplica"])}
    return {"type": "External", "external": {"metric": metric, "target": target}}


def hpa(cf: CharterFlow, component: str) -> Manifest | None:
    """autoscaling/v2 HPA on CPU (and, for workers, optionally on the queue depth: the HPA
    follows whichever asks for more pods), or None when autoscaling is disabled (then it is
    pruned)."""
    scaling = cf.spec[component]["autoscaling"]
    if not scaling["enabled"]:
        return None
    name = cf.component_name(component)
    target = {
        "type": "Utilization",
        "averageUtilization": scaling["targetCPUUtilizationPercentage"],
    }
    metrics: list[dict[str, Any]] = [
        {"type": "Resource", "resource": {"name": "cpu", "target": target}}
    ]
    if component == "worker" and (queue := queue_metric(cf)):
        metrics.append(queue)
    return {
        "apiVersion": api.HPA.api_version,
        "kind": api.HPA.kind,
        "metadata": cf.meta(name, component),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": api.DEPLOYMENT.api_version,
                "kind": api.DEPLOYMENT.kind,
                "name": name,
            },
            "minReplicas": scaling["minReplicas"],
            "maxReplicas": scaling["maxReplicas"],
            "metrics": metrics,
        },
    }


def pdb(cf: CharterFlow, component: str) -> Manifest:
    """At most one pod down at a time: protects >1 replicas, never blocks a drain of one."""
    return {
        "apiVersion": api.PDB.api_version,
        "kind": api.PDB.kind,
        "metadata": cf.meta(cf.component_name(component), component),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": cf.selector_labels(component)},
        },
    }
