"""Which dependency an outage is about, as the pods themselves see it.

When API or worker pods are not ready, the operator asks one of them the question their
readiness probe asks (``/health/ready``: the API checks the database, Redis and S3, the worker
Redis) and names the failing dependency in the status (``DatabaseUnavailable``,
``RedisUnavailable``, ``StorageUnavailable``), instead of a rollout that seems stuck. Only pods
that are running and not ready are asked, one per component and pass, with a short timeout; a
pod that does not answer (a NetworkPolicy in the way, no route from the operator) leaves the
status as it was.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from charterflow import contract

from charterflow_operator import api
from charterflow_operator.instance import CharterFlow
from charterflow_operator.kube import Kube

TIMEOUT_SECONDS = 2.0
# The readiness endpoints, and what their check names mean.
PORTS = {"api": contract.API_PORT, "worker": contract.DEFAULT_WORKER_HEALTH_PORT}
CHECKS = {"database": "database", "redis": "redis", "storage": "storage", "broker": "redis"}
ORDER = ("database", "redis", "storage")  # the first one down explains the others' errors

Fetch = Callable[[str], Mapping[str, Any] | None]


def fetch_json(url: str) -> Mapping[str, Any] | None:
    """GET ``url`` and its JSON body (a 503 has one too); None when there is no answer."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            body = response.read()
    except urllib.error.HTTPError as refused:
        body = refused.read()
    except (OSError, ValueError):
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer if isinstance(answer, Mapping) else None


def failing(answer: Mapping[str, Any]) -> list[str]:
    """Dependencies a readiness answer reports as failing, most fundamental first."""
    names: set[str] = set()
    for check, result in (answer.get("checks") or {}).items():
        state = result.get("status") if isinstance(result, Mapping) else str(result)
        if check in CHECKS and str(state).startswith("error"):
            names.add(CHECKS[check])
    return [name for name in ORDER if name in names]


def _unready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    ready = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return (
        status.get("phase") == "Running"
        and bool(status.get("podIP"))
        and (ready.get("Ready") != "True")
    )


class DependencyProbe:
    """``outage(cf)``: (dependency, message) as an unready pod reports it, or None."""

    def __init__(self, kube: Kube, fetch: Fetch = fetch_json) -> None:
        self.kube = kube
        self.fetch = fetch

    def outage(self, cf: CharterFlow) -> tuple[str, str] | None:
        for component, port in PORTS.items():
            pods = self.kube.list(
                api.POD.api_version, api.POD.kind, cf.namespace, cf.selector(component)
            )
            unready = sorted((p for p in pods if _unready(p)), key=lambda p: p["metadata"]["name"])
            if not unready:
                continue
            pod = unready[0]
            answer = self.fetch(f"http://{pod['status']['podIP']}:{port}{contract.READY_PATH}")
            down = failing(answer) if answer else []
            if down:
                name = pod["metadata"]["name"]
                why = f"{component} pod {name} is not ready"
                return down[0], f"the {down[0]} is unreachable from the pods ({why})"
        return None
