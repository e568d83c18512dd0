"""What one reconcile pass sees: a Deployment's rollout, a Job's progress, what a backup pod
reported, gathered into a ``PassResult``. Pure functions of API objects, unit-tested alone."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from charterflow import contract

from charterflow_operator import api
from charterflow_operator.api import Reason

Body = Mapping[str, Any]

# Longest line of a failed backup's log that status.lastBackup.message repeats.
MESSAGE_LIMIT = 300

# States of a JobProgress.
WAITING = "Waiting"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
SKIPPED = "Skipped"


@dataclass(frozen=True)
class JobProgress:
    """Where one lifecycle step (restore, migration, backup) stands; ``job`` names the Job that
    runs it, empty while none does (waiting for an earlier step, or not applicable)."""

    job: str
    state: str
    reason: str
    message: str
    finished: str | None = None


def job_progress(job: Body) -> JobProgress:
    """A Job's outcome from its conditions (``Failed``/``FailureTarget`` carry reason and
    message, e.g. BackoffLimitExceeded or DeadlineExceeded)."""
    name = job["metadata"]["name"]
    status = job.get("status") or {}
    true = {c["type"]: c for c in status.get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in true:
        when = status.get("completionTime") or true["Complete"].get("lastTransitionTime")
        return JobProgress(name, SUCCEEDED, Reason.SUCCEEDED, f"Job {name} succeeded", when)
    for kind in ("Failed", "FailureTarget"):
        if kind in true:
            failed = true[kind]
            return JobProgress(
                name,
                FAILED,
                failed.get("reason") or Reason.FAILED,
                f"Job {name} failed: {failed.get('message') or 'no message'}",
                failed.get("lastTransitionTime"),
            )
    return JobProgress(name, RUNNING, Reason.RUNNING, f"Job {name} is running")


@dataclass(frozen=True)
class PassResult:
    """What one reconcile pass saw or did. ``None`` for a step means it was not looked at."""

    api: Body | None = None
    worker: Body | None = None
    cronjob: Body | None = None
    missing_secret: str | None = None
    apply_error: str | None = None
    name_conflict: str | None = None  # a child's name is held by an object we do not control
    outage: tuple[str, str] | None = None  # (dependency, message) unready pods report
    paused: bool = False
    restore: JobProgress | None = None
    migration: JobProgress | None = None
    backups: tuple[Body, ...] = ()
    backup_report: Mapping[str, str] | None = None  # what the newest backup's pod said
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
        stalled=progressing.get("reason") == Reason.PROGRESS_DEADLINE_EXCEEDED,
        version=labels.get(api.VERSION_LABEL),
        image=containers[0].get("image"),
    )


def newest_backup(jobs: tuple[Body, ...]) -> JobProgress | None:
    """The backup Job (scheduled or on demand) that finished last, if any."""
    finished = [p for p in map(job_progress, jobs) if p.state in (SUCCEEDED, FAILED) and p.finished]
    return max(finished, key=lambda done: (done.finished, done.job)) if finished else None


def backup_report(termination_message: str | None) -> dict[str, str]:
    """What a backup pod said in its termination message: on success the JSON result that
    ``charterflow backup`` writes (``key``); on failure the end of its log (``message``)."""
    text = (termination_message or "").strip()
    if not text:
        return {}
    try:
        result = json.loads(text)
    except ValueError:
        return {"message": text.splitlines()[-1].strip()[:MESSAGE_LIMIT]}
    key = result.get(contract.RESULT_KEY) if isinstance(result, dict) else None
    return {"key": key} if isinstance(key, str) and key else {}


def reported(last: Mapping[str, Any] | None, latest: JobProgress) -> bool:
    """Whether ``status.lastBackup`` already tells this finished Job's outcome."""
    return bool(last) and (last.get("job"), last.get("result")) == (latest.job, latest.state)
