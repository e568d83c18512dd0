"""The CharterFlow's ``status`` from what a pass saw: conditions and phase, the restore record,
the last backup. Pure, so that every phase and reason is unit-tested, and so that an unchanged
world yields an identical status (the operator then writes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from charterflow_operator.api import (
    DEGRADED_REASONS,
    UNAVAILABLE_REASONS,
    Condition,
    Phase,
    Reason,
)
from charterflow_operator.children.jobs import restore_source
from charterflow_operator.instance import CharterFlow
from charterflow_operator.observe import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    WAITING,
    Body,
    JobProgress,
    PassResult,
    Rollout,
    newest_backup,
    reported,
    rollout,
)


def _condition(kind: str, ok: bool | None, reason: str, message: str) -> dict[str, str]:
    status = "Unknown" if ok is None else ("True" if ok else "False")
    return {"type": kind, "status": status, "reason": reason, "message": message}


def _availability(kind: str, what: str, state: Rollout | None) -> dict[str, str]:
    if state is None:
        return _condition(
            kind, None, Reason.NOT_CREATED, f"the {what} Deployment does not exist yet"
        )
    message = f"{state.ready}/{state.replicas} {what} pods ready"
    if state.available:
        return _condition(kind, True, Reason.MINIMUM_REPLICAS_AVAILABLE, message)
    return _condition(kind, False, Reason.REPLICAS_UNAVAILABLE, message)


def _replicas(state: Rollout | None) -> dict[str, Any]:
    if state is None:
        return {"replicas": 0, "readyReplicas": 0, "ready": "0/0"}
    return {
        "replicas": state.replicas,
        "readyReplicas": state.ready,
        "ready": f"{state.ready}/{state.replicas}",
    }


def _backup_condition(cf: CharterFlow, cronjob: Body | None) -> dict[str, str]:
    backup = cf.spec["backup"]
    if not backup["enabled"]:
        return _condition(
            Condition.BACKUP_SCHEDULED, False, Reason.DISABLED, "spec.backup.enabled is false"
        )
    if cronjob is None:
        return _condition(
            Condition.BACKUP_SCHEDULED, False, Reason.NOT_CREATED, "the CronJob does not exist yet"
        )
    if cronjob.get("spec", {}).get("suspend"):
        return _condition(
            Condition.BACKUP_SCHEDULED, False, Reason.SUSPENDED, "spec.backup.suspend is true"
        )
    schedule = cronjob["spec"]["schedule"]
    return _condition(
        Condition.BACKUP_SCHEDULED, True, Reason.SCHEDULED, f"backups run on '{schedule}'"
    )


def _step_condition(kind: str, step: JobProgress) -> dict[str, str]:
    if step.state == SUCCEEDED:
        return _condition(kind, True, step.reason, step.message)
    return _condition(kind, False, step.reason, step.message)


CARRIED = ("type", "status", "reason", "message", "observedGeneration")


def _as_last_pass(kind: str, old: Mapping[str, Any], reason: str, message: str) -> dict[str, Any]:
    """The previous condition of ``kind`` (nothing was checked this pass), else Unknown. It keeps
    its ``observedGeneration``: it says what was seen at that generation, not at this one."""
    for found in old.get("conditions", []):
        if found.get("type") == kind:
            return {k: found[k] for k in CARRIED if k in found}
    return _condition(kind, None, reason, message)


def _migrations_condition(result: PassResult, old: Mapping[str, Any]) -> dict[str, str]:
    if result.migration is None:
        return _as_last_pass(
            Condition.MIGRATIONS_COMPLETE, old, Reason.NOT_CHECKED, "children could not be applied"
        )
    return _step_condition(Condition.MIGRATIONS_COMPLETE, result.migration)


def _restored_condition(result: PassResult, old: Mapping[str, Any]) -> dict[str, str]:
    if result.restore is None:
        return _as_last_pass(
            Condition.RESTORED, old, Reason.NOT_CHECKED, "children could not be applied"
        )
    return _step_condition(Condition.RESTORED, result.restore)


def _blocker(result: PassResult) -> dict[str, str] | None:
    """A restore or migration that failed (Degraded) or holds the rollout back (Progressing)."""
    restore, migration = result.restore, result.migration
    for step in (restore, migration):  # a dependency outage names the dependency
        if step and step.state == FAILED and step.reason in UNAVAILABLE_REASONS.values():
            return _condition(Condition.READY, False, step.reason, step.message)
    if restore and restore.state == FAILED:
        return _condition(
            Condition.READY, False, Reason.RESTORE_FAILED, f"{restore.reason}: {restore.message}"
        )
    if migration and migration.state == FAILED:
        return _condition(
            Condition.READY,
            False,
            Reason.MIGRATION_FAILED,
            f"{migration.reason}: {migration.message}",
        )
    if restore and restore.state in (WAITING, RUNNING):
        return _condition(Condition.READY, False, Reason.RESTORING, restore.message)
    if migration and migration.state == RUNNING:
        return _condition(Condition.READY, False, Reason.MIGRATING, migration.message)
    return None


def _ready(result: PassResult, api: Rollout | None, worker: Rollout | None) -> dict[str, str]:
    if result.missing_secret:
        return _condition(Condition.READY, False, Reason.MISSING_SECRET, result.missing_secret)
    if result.name_conflict:
        return _condition(Condition.READY, False, Reason.NAME_CONFLICT, result.name_conflict)
    if result.apply_error:
        return _condition(Condition.READY, False, Reason.APPLY_FAILED, result.apply_error)
    serving = bool(api and worker and api.available and worker.available)
    if result.paused:
        return _condition(
            Condition.READY, serving, Reason.PAUSED, "spec.paused is true: children are left as-is"
        )
    if blocker := _blocker(result):
        return blocker
    if api is None or worker is None:
        return _condition(Condition.READY, False, Reason.PENDING, "children are being created")
    if result.outage and not (api.ready >= api.replicas and worker.ready >= worker.replicas):
        dependency, message = result.outage
        reason = UNAVAILABLE_REASONS.get(dependency, Reason.REPLICAS_UNAVAILABLE)
        return _condition(Condition.READY, False, reason, message)
    for name, state in (("API", api), ("worker", worker)):
        if state.stalled:
            return _condition(
                Condition.READY, False, Reason.PROGRESS_DEADLINE_EXCEEDED, f"{name} rollout stalled"
            )
    migrated = result.migration is None or result.migration.state == SUCCEEDED
    if api.complete and worker.complete and serving and migrated:
        return _condition(
            Condition.READY, True, Reason.ALL_COMPONENTS_READY, "API and workers are up to date"
        )
    return _condition(
        Condition.READY,
        False,
        Reason.ROLLOUT_IN_PROGRESS,
        f"API {api.ready}/{api.replicas}, workers {worker.ready}/{worker.replicas} ready",
    )


def _phase(result: PassResult, ready: Mapping[str, str], api: Rollout | None) -> str:
    if result.paused:
        return Phase.PAUSED
    if ready["status"] == "True":
        return Phase.READY
    if ready["reason"] in DEGRADED_REASONS:
        return Phase.DEGRADED
    if ready["reason"] in {Reason.RESTORING, Reason.MIGRATING}:
        return Phase.PROGRESSING
    return Phase.PENDING if api is None else Phase.PROGRESSING


def merge_conditions(
    old: list[Mapping[str, Any]], new: list[dict[str, Any]], generation: int, now: str
) -> list[dict[str, Any]]:
    """Keep ``lastTransitionTime`` of a condition whose status did not change; a condition
    carried from an earlier pass keeps the ``observedGeneration`` it had."""
    previous = {c.get("type"): c for c in old}
    merged = []
    for condition in new:
        before = previous.get(condition["type"])
        unchanged = before is not None and before.get("status") == condition["status"]
        since = before.get("lastTransitionTime") if unchanged and before else None
        seen = condition.get("observedGeneration", generation)
        merged.append({**condition, "lastTransitionTime": since or now, "observedGeneration": seen})
    return merged


def last_backup(
    jobs: tuple[Body, ...],
    cronjob: Body | None,
    old: Mapping[str, Any] | None,
    report: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """The newest finished backup Job (scheduled or on demand) with what its pod said
    (``report``, from ``observe.backup_report``); else what the CronJob or the previous status knew
    (the CronJob's history limits prune old Jobs). A Job's pod is asked once: a status that
    already reports that Job is carried as it is."""
    latest = newest_backup(jobs)
    if latest:
        if not report and old and reported(old, latest):
            return dict(old)
        report = report or {}
        found: dict[str, Any] = {"time": latest.finished, "result": latest.state}
        found["job"] = latest.job
        if latest.state == SUCCEEDED and report.get("key"):
            found["key"] = report["key"]
        if latest.state == FAILED:
            found["message"] = f"{latest.reason}: {report.get('message') or latest.message}"
        return found
    succeeded = ((cronjob or {}).get("status") or {}).get("lastSuccessfulTime")
    if succeeded and (not old or old.get("time", "") < succeeded):
        return {"time": succeeded, "result": SUCCEEDED}
    return dict(old) if old else None


def _restore_record(cf: CharterFlow, result: PassResult, old: Mapping[str, Any]) -> dict | None:
    """``status.restore``: written once when the restore Job succeeds, then only carried."""
    if old.get("restore"):
        return dict(old["restore"])
    step = result.restore
    if step is None or step.state != SUCCEEDED or not step.job or not cf.spec.get("restore"):
        return None
    record = {**restore_source(cf), "job": step.job}
    if step.finished:
        record["completionTime"] = step.finished
    return record


def compute(body: Body, cf: CharterFlow, result: PassResult, now: str) -> dict[str, Any]:
    """The full ``status`` for ``body``; ``now`` stamps conditions that changed."""
    old = body.get("status") or {}
    generation = int(body["metadata"].get("generation", 0))
    api, worker = rollout(result.api), rollout(result.worker)
    ready = _ready(result, api, worker)
    conditions = [
        ready,
        _availability(Condition.API_AVAILABLE, "API", api),
        _availability(Condition.WORKER_AVAILABLE, "worker", worker),
        _migrations_condition(result, old),
        _backup_condition(cf, result.cronjob),
    ]
    if cf.spec.get("restore") or old.get("restore"):
        conditions.append(_restored_condition(result, old))
    status: dict[str, Any] = {
        "phase": _phase(result, ready, api),
        "observedGeneration": generation,
        "conditions": merge_conditions(old.get("conditions", []), conditions, generation, now),
        "url": cf.spec["appUrl"],
        "api": _replicas(api),
        "worker": _replicas(worker),
    }
    version = old.get("version")
    if api and worker and api.complete and worker.complete:  # recorded once rolled out
        version = api.version or version
    if version:
        status["version"] = version
    if restored := _restore_record(cf, result, old):
        status["restore"] = restored
    if backup := last_backup(
        result.backups, result.cronjob, old.get("lastBackup"), result.backup_report
    ):
        status["lastBackup"] = backup
    if request := result.backup_request or old.get("backupRequest"):
        status["backupRequest"] = dict(request)
    return status
