"""Pure status computation: observed children in, the CharterFlow's ``status`` out.

Kept apart from the I/O so that every phase and reason is unit-tested, and so that an unchanged
world yields an identical status (the operator then writes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from charterflow_operator.builders import Owner

Body = Mapping[str, Any]


@dataclass(frozen=True)
class Observed:
    """What one reconcile saw or did."""

    api: Body | None = None
    worker: Body | None = None
    cronjob: Body | None = None
    missing_secret: str | None = None
    apply_error: str | None = None
    paused: bool = False


@dataclass(frozen=True)
class Rollout:
    """A Deployment's progress, reduced to what the status needs."""

    replicas: int
    ready: int
    available: bool
    complete: bool
    stalled: bool
    version: str | None


def rollout(deployment: Body | None) -> Rollout | None:
    if deployment is None:
        return None
    spec, status = deployment.get("spec", {}), deployment.get("status") or {}
    replicas = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas", 0))
    conditions = {c["type"]: c for c in status.get("conditions", [])}
    available = conditions.get("Available", {}).get("status") == "True"
    progressing = conditions.get("Progressing", {})
    current = status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
    complete = (
        current
        and int(status.get("updatedReplicas", 0)) == replicas
        and int(status.get("replicas", 0)) == replicas
        and ready >= replicas
    )
    labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    return Rollout(
        replicas=replicas,
        ready=ready,
        available=available and (ready > 0 or replicas == 0),
        complete=complete,
        stalled=progressing.get("reason") == "ProgressDeadlineExceeded",
        version=labels.get("app.kubernetes.io/version"),
    )


def _condition(kind: str, ok: bool | None, reason: str, message: str) -> dict[str, str]:
    status = "Unknown" if ok is None else ("True" if ok else "False")
    return {"type": kind, "status": status, "reason": reason, "message": message}


def _availability(kind: str, what: str, state: Rollout | None) -> dict[str, str]:
    if state is None:
        return _condition(kind, None, "NotCreated", f"the {what} Deployment does not exist yet")
    message = f"{state.ready}/{state.replicas} {what} pods ready"
    if state.available:
        return _condition(kind, True, "MinimumReplicasAvailable", message)
    return _condition(kind, False, "ReplicasUnavailable", message)


def _replicas(state: Rollout | None) -> dict[str, Any]:
    if state is None:
        return {"replicas": 0, "readyReplicas": 0, "ready": "0/0"}
    return {
        "replicas": state.replicas,
        "readyReplicas": state.ready,
        "ready": f"{state.ready}/{state.replicas}",
    }


def _backup_condition(owner: Owner, cronjob: Body | None) -> dict[str, str]:
    backup = owner.spec["backup"]
    if not backup["enabled"]:
        return _condition("BackupScheduled", False, "Disabled", "spec.backup.enabled is false")
    if cronjob is None:
        return _condition("BackupScheduled", False, "NotCreated", "the CronJob does not exist yet")
    if cronjob.get("spec", {}).get("suspend"):
        return _condition("BackupScheduled", False, "Suspended", "spec.backup.suspend is true")
    schedule = cronjob["spec"]["schedule"]
    return _condition("BackupScheduled", True, "Scheduled", f"backups run on '{schedule}'")


def _ready(observed: Observed, api: Rollout | None, worker: Rollout | None) -> dict[str, str]:
    if observed.missing_secret:
        return _condition("Ready", False, "MissingSecret", observed.missing_secret)
    if observed.apply_error:
        return _condition("Ready", False, "ApplyFailed", observed.apply_error)
    serving = bool(api and worker and api.available and worker.available)
    if observed.paused:
        return _condition(
            "Ready", serving, "Paused", "spec.paused is true: children are left as-is"
        )
    if api is None or worker is None:
        return _condition("Ready", False, "Pending", "children are being created")
    for name, state in (("API", api), ("worker", worker)):
        if state.stalled:
            return _condition("Ready", False, "ProgressDeadlineExceeded", f"{name} rollout stalled")
    if api.complete and worker.complete and serving:
        return _condition("Ready", True, "AllComponentsReady", "API and workers are up to date")
    return _condition(
        "Ready",
        False,
        "RolloutInProgress",
        f"API {api.ready}/{api.replicas}, workers {worker.ready}/{worker.replicas} ready",
    )


def _phase(observed: Observed, ready: Mapping[str, str], api: Rollout | None) -> str:
    if observed.paused:
        return "Paused"
    if ready["status"] == "True":
        return "Ready"
    if ready["reason"] in {"MissingSecret", "ApplyFailed", "ProgressDeadlineExceeded"}:
        return "Degraded"
    return "Pending" if api is None else "Progressing"


def merge_conditions(
    old: list[Mapping[str, Any]], new: list[dict[str, Any]], generation: int, now: str
) -> list[dict[str, Any]]:
    """Keep ``lastTransitionTime`` of a condition whose status did not change."""
    previous = {c.get("type"): c for c in old}
    merged = []
    for condition in new:
        before = previous.get(condition["type"])
        unchanged = before is not None and before.get("status") == condition["status"]
        since = before.get("lastTransitionTime") if unchanged and before else None
        merged.append(
            {**condition, "lastTransitionTime": since or now, "observedGeneration": generation}
        )
    return merged


def compute(body: Body, owner: Owner, observed: Observed, now: str) -> dict[str, Any]:
    """The full ``status`` for ``body``; ``now`` stamps conditions that changed."""
    old = body.get("status") or {}
    generation = int(body["metadata"].get("generation", 0))
    api, worker = rollout(observed.api), rollout(observed.worker)
    ready = _ready(observed, api, worker)
    conditions = [
        ready,
        _availability("ApiAvailable", "API", api),
        _availability("WorkerAvailable", "worker", worker),
        _condition("MigrationsComplete", True, "NotRequired", "no migration gate yet"),
        _backup_condition(owner, observed.cronjob),
    ]
    status: dict[str, Any] = {
        "phase": _phase(observed, ready, api),
        "observedGeneration": generation,
        "conditions": merge_conditions(old.get("conditions", []), conditions, generation, now),
        "url": owner.spec["appUrl"],
        "api": _replicas(api),
        "worker": _replicas(worker),
    }
    version = api.version if api and api.complete else old.get("version")
    if version:
        status["version"] = version
    last = (observed.cronjob or {}).get("status", {}) or {}
    if last.get("lastSuccessfulTime"):
        status["lastBackup"] = {"time": last["lastSuccessfulTime"], "result": "Succeeded"}
    elif old.get("lastBackup"):
        status["lastBackup"] = old["lastBackup"]
    return status
