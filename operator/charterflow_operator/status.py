"""Pure status computation: observed children in, the CharterFlow's ``status`` out.

Kept apart from the I/O so that every phase and reason is unit-tested, and so that an unchanged
world yields an identical status (the operator then writes nothing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from charterflow_operator import builders
from charterflow_operator.builders import Owner

Body = Mapping[str, Any]

# Longest line of a failed backup's log that status.lastBackup.message repeats.
MESSAGE_LIMIT = 300

# States of a Step.
WAITING = "Waiting"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
SKIPPED = "Skipped"


@dataclass(frozen=True)
class Step:
    """Where one lifecycle Job (restore, migration) stands; ``job`` is empty when none runs."""

    job: str
    state: str
    reason: str
    message: str
    finished: str | None = None


def job_step(job: Body) -> Step:
    """A Job's outcome from its conditions (``Failed``/``FailureTarget`` carry reason and
    message, e.g. BackoffLimitExceeded or DeadlineExceeded)."""
    name = job["metadata"]["name"]
    status = job.get("status") or {}
    true = {c["type"]: c for c in status.get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in true:
        when = status.get("completionTime") or true["Complete"].get("lastTransitionTime")
        return Step(name, SUCCEEDED, "Succeeded", f"Job {name} succeeded", when)
    for kind in ("Failed", "FailureTarget"):
        if kind in true:
            failed = true[kind]
            return Step(
                name,
                FAILED,
                failed.get("reason") or "Failed",
                f"Job {name} failed: {failed.get('message') or 'no message'}",
                failed.get("lastTransitionTime"),
            )
    return Step(name, RUNNING, "Running", f"Job {name} is running")


@dataclass(frozen=True)
class Observed:
    """What one reconcile saw or did. ``None`` for a step means it was not looked at."""

    api: Body | None = None
    worker: Body | None = None
    cronjob: Body | None = None
    missing_secret: str | None = None
    apply_error: str | None = None
    paused: bool = False
    restore: Step | None = None
    migration: Step | None = None
    backups: tuple[Body, ...] = ()
    backup_words: Mapping[str, str] | None = None  # what the newest backup's pod said
    backup_request: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Rollout:
    """A Deployment's progress, reduced to what the status needs."""

    replicas: int
    ready: int
    available: bool
    complete: bool
    stalled: bool
    version: str | None
    image: str | None


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
    template = spec.get("template", {})
    labels = template.get("metadata", {}).get("labels", {})
    containers = template.get("spec", {}).get("containers") or [{}]
    return Rollout(
        replicas=replicas,
        ready=ready,
        available=available and (ready > 0 or replicas == 0),
        complete=complete,
        stalled=progressing.get("reason") == "ProgressDeadlineExceeded",
        version=labels.get("app.kubernetes.io/version"),
        image=containers[0].get("image"),
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


def _step_condition(kind: str, step: Step) -> dict[str, str]:
    if step.state == SUCCEEDED:
        return _condition(kind, True, step.reason, step.message)
    return _condition(kind, False, step.reason, step.message)


def _carried(kind: str, old: Mapping[str, Any], reason: str, message: str) -> dict[str, str]:
    """The previous condition of ``kind`` (nothing was checked this pass), else Unknown."""
    for found in old.get("conditions", []):
        if found.get("type") == kind:
            return {k: found[k] for k in ("type", "status", "reason", "message") if k in found}
    return _condition(kind, None, reason, message)


def _migrations_condition(observed: Observed, old: Mapping[str, Any]) -> dict[str, str]:
    if observed.migration is None:
        return _carried("MigrationsComplete", old, "NotChecked", "children could not be applied")
    return _step_condition("MigrationsComplete", observed.migration)


def _restored_condition(observed: Observed, old: Mapping[str, Any]) -> dict[str, str]:
    if observed.restore is None:
        return _carried("Restored", old, "NotChecked", "children could not be applied")
    return _step_condition("Restored", observed.restore)


def _lifecycle_blocker(observed: Observed) -> dict[str, str] | None:
    """A restore or migration that failed (Degraded) or holds the rollout back (Progressing)."""
    restore, migration = observed.restore, observed.migration
    if restore and restore.state == FAILED:
        return _condition("Ready", False, "RestoreFailed", f"{restore.reason}: {restore.message}")
    if migration and migration.state == FAILED:
        return _condition(
            "Ready", False, "MigrationFailed", f"{migration.reason}: {migration.message}"
        )
    if restore and restore.state in (WAITING, RUNNING):
        return _condition("Ready", False, "Restoring", restore.message)
    if migration and migration.state == RUNNING:
        return _condition("Ready", False, "Migrating", migration.message)
    return None


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
    if blocker := _lifecycle_blocker(observed):
        return blocker
    if api is None or worker is None:
        return _condition("Ready", False, "Pending", "children are being created")
    for name, state in (("API", api), ("worker", worker)):
        if state.stalled:
            return _condition("Ready", False, "ProgressDeadlineExceeded", f"{name} rollout stalled")
    migrated = observed.migration is None or observed.migration.state == SUCCEEDED
    if api.complete and worker.complete and serving and migrated:
        return _condition("Ready", True, "AllComponentsReady", "API and workers are up to date")
    return _condition(
        "Ready",
        False,
        "RolloutInProgress",
        f"API {api.ready}/{api.replicas}, workers {worker.ready}/{worker.replicas} ready",
    )


DEGRADED = {
    "MissingSecret",
    "ApplyFailed",
    "ProgressDeadlineExceeded",
    "RestoreFailed",
    "MigrationFailed",
}


def _phase(observed: Observed, ready: Mapping[str, str], api: Rollout | None) -> str:
    if observed.paused:
        return "Paused"
    if ready["status"] == "True":
        return "Ready"
    if ready["reason"] in DEGRADED:
        return "Degraded"
    if ready["reason"] in {"Restoring", "Migrating"}:
        return "Progressing"
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


def newest_backup(jobs: tuple[Body, ...]) -> Step | None:
    """The backup Job (scheduled or on demand) that finished last, if any."""
    finished = [s for s in map(job_step, jobs) if s.state in (SUCCEEDED, FAILED) and s.finished]
    return max(finished, key=lambda step: (step.finished, step.job)) if finished else None


def backup_words(termination_message: str | None) -> dict[str, str]:
    """What a backup pod said in its termination message: on success the JSON result that
    ``charterflow backup`` writes (``key``); on failure the end of its log (``message``)."""
    text = (termination_message or "").strip()
    if not text:
        return {}
    try:
        result = json.loads(text)
    except ValueError:
        return {"message": text.splitlines()[-1].strip()[:MESSAGE_LIMIT]}
    key = result.get("key") if isinstance(result, dict) else None
    return {"key": key} if isinstance(key, str) and key else {}


def reported(last: Mapping[str, Any] | None, latest: Step) -> bool:
    """Whether ``status.lastBackup`` already tells this finished Job's outcome."""
    return bool(last) and (last.get("job"), last.get("result")) == (latest.job, latest.state)


def last_backup(
    jobs: tuple[Body, ...],
    cronjob: Body | None,
    old: Mapping[str, Any] | None,
    words: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """The newest finished backup Job (scheduled or on demand) with what its pod said
    (``words``, from ``backup_words``); else what the CronJob or the previous status knew
    (the CronJob's history limits prune old Jobs). A Job's pod is asked once: a status that
    already reports that Job is carried as it is."""
    latest = newest_backup(jobs)
    if latest:
        if not words and old and reported(old, latest):
            return dict(old)
        words = words or {}
        found: dict[str, Any] = {"time": latest.finished, "result": latest.state}
        found["job"] = latest.job
        if latest.state == SUCCEEDED and words.get("key"):
            found["key"] = words["key"]
        if latest.state == FAILED:
            found["message"] = f"{latest.reason}: {words.get('message') or latest.message}"
        return found
    succeeded = ((cronjob or {}).get("status") or {}).get("lastSuccessfulTime")
    if succeeded and (not old or old.get("time", "") < succeeded):
        return {"time": succeeded, "result": SUCCEEDED}
    return dict(old) if old else None


def _restore_record(owner: Owner, observed: Observed, old: Mapping[str, Any]) -> dict | None:
    """``status.restore``: written once when the restore Job succeeds, then only carried."""
    if old.get("restore"):
        return dict(old["restore"])
    step = observed.restore
    if step is None or step.state != SUCCEEDED or not step.job or not owner.spec.get("restore"):
        return None
    record = {**builders.restore_source(owner), "job": step.job}
    if step.finished:
        record["completionTime"] = step.finished
    return record


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
        _migrations_condition(observed, old),
        _backup_condition(owner, observed.cronjob),
    ]
    if owner.spec.get("restore") or old.get("restore"):
        conditions.append(_restored_condition(observed, old))
    status: dict[str, Any] = {
        "phase": _phase(observed, ready, api),
        "observedGeneration": generation,
        "conditions": merge_conditions(old.get("conditions", []), conditions, generation, now),
        "url": owner.spec["appUrl"],
        "api": _replicas(api),
        "worker": _replicas(worker),
    }
    version = old.get("version")
    if api and worker and api.complete and worker.complete:  # recorded once rolled out
        version = api.version or version
    if version:
        status["version"] = version
    if restored := _restore_record(owner, observed, old):
        status["restore"] = restored
    if backup := last_backup(
        observed.backups, observed.cronjob, old.get("lastBackup"), observed.backup_words
    ):
        status["lastBackup"] = backup
    if request := observed.backup_request or old.get("backupRequest"):
        status["backupRequest"] = dict(request)
    return status
