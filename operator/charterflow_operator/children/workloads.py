"""The API and worker Deployments: probes, rolling updates, and the worker's thread budget."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from charterflow import contract

from charterflow_operator import api
from charterflow_operator.children.pods import template
from charterflow_operator.instance import CharterFlow, Manifest


def cpu_cores(quantity: str | int | float) -> Decimal:
    """A CPU quantity ("500m", "2", 1.5) in cores."""
    text = str(quantity).strip()
    if text.endswith("m"):
        return Decimal(text[:-1]) / 1000
    return Decimal(text)


def cpu_bound(resources: Mapping[str, Any]) -> int | None:
    """Threads a container may usefully run: ceil of its CPU limit (else request), at least 1."""
    for kind in ("limits", "requests"):
        value = (resources.get(kind) or {}).get("cpu")
        if value is not None:
            return max(1, math.ceil(cpu_cores(value)))
    return None


def worker_threads(cf: CharterFlow) -> tuple[int, int]:
    """(WORKER_THREADS, BLAS/OpenMP threads): bounded by the CPU limit, not the node's cores."""
    worker = cf.spec["worker"]
    bound = cpu_bound(worker["resources"])
    concurrency = int(worker["concurrency"])
    if bound is None:
        return concurrency, 1
    return min(concurrency, bound), bound


def _deployment(
    cf: CharterFlow, component: str, settings: Mapping[str, Any], pod_template: dict
) -> Manifest:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": cf.selector_labels(component)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "revisionHistoryLimit": 5,
        "template": pod_template,
    }
    if not settings["autoscaling"]["enabled"]:
        spec = {"replicas": settings["replicas"], **spec}  # else the HPA owns the field
    return {
        "apiVersion": api.DEPLOYMENT.api_version,
        "kind": api.DEPLOYMENT.kind,
        "metadata": cf.meta(cf.component_name(component), component),
        "spec": spec,
    }


API_DRAIN_SECONDS = 5  # preStop: how long endpoint removal may take to reach every proxy


def _http_probe(path: str, port: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def api_deployment(cf: CharterFlow, digest: str) -> Manifest:
    settings = cf.spec["api"]
    container = {
        "name": "api",
        "command": list(contract.SERVE),
        "ports": [
            {"name": "http", "containerPort": contract.API_PORT, "protocol": "TCP"},
            # /metrics: on its own port, which neither the Service nor the Ingress routes.
            {"name": "metrics", "containerPort": contract.API_METRICS_PORT, "protocol": "TCP"},
        ],
        "startupProbe": _http_probe(contract.LIVE_PATH, "http", 2, 30),
        "livenessProbe": _http_probe(contract.LIVE_PATH, "http", 10, 3),
        "readinessProbe": _http_probe(contract.READY_PATH, "http", 5, 3),
        # A terminating pod keeps serving until kube-proxy (and any ingress) has dropped it from
        # the Service's endpoints, then uvicorn drains in-flight requests (up to 20 s).
        "lifecycle": {"preStop": {"sleep": {"seconds": API_DRAIN_SECONDS}}},
        "resources": settings["resources"],
    }
    pod = template(cf, "api", settings, container, digest)
    pod["spec"]["terminationGracePeriodSeconds"] = API_DRAIN_SECONDS + 25
    return _deployment(cf, "api", settings, pod)


def worker_deployment(cf: CharterFlow, digest: str) -> Manifest:
    settings = cf.spec["worker"]
    threads, blas = worker_threads(cf)
    env = [{"name": contract.WORKER_THREADS, "value": str(threads)}]
    env += [{"name": name, "value": str(blas)} for name in contract.BLAS_THREAD_ENV]
    port = contract.DEFAULT_WORKER_HEALTH_PORT
    container = {
        "name": "worker",
        "command": list(contract.WORKER),
        "ports": [{"name": "health", "containerPort": port, "protocol": "TCP"}],
        "env": env,
        "startupProbe": _http_probe(contract.LIVE_PATH, "health", 2, 30),
        # Liveness is the process alone (a Redis outage must not restart every worker);
        # readiness adds Redis, which only shows in status (no Service routes to workers).
        "livenessProbe": _http_probe(contract.LIVE_PATH, "health", 10, 3),
        "readinessProbe": _http_probe(contract.READY_PATH, "health", 10, 3),
        "resources": settings["resources"],
    }
    pod_template = template(cf, "worker", settings, container, digest)
    return _deployment(cf, "worker", settings, pod_template)
