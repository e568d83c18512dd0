"""The Jobs around a rollout: restore a new instance, migrate before new pods, contract after.

Per CharterFlow, in order: restore (once, only for a new instance with ``spec.restore``) ->
``migrate --phase expand`` with the target version's image -> the Deployments roll -> once every
new pod is ready, ``migrate --phase contract``. Jobs are created, never updated (a Job's pod
template is immutable). A migration Job's name holds the version and a hash of the image, so a
new version gets a new Job and a finished one records what ran. A failed Job stays (its pod
keeps the logs) and holds the rollout back until the spec changes or someone deletes the Job;
either runs it again. One that failed because a dependency was down (its last words say so,
``charterflow.contract.DEPENDENCY_UNAVAILABLE``) runs again by itself shortly after. On-demand
backups (the backup-now annotation) are Jobs too, so they are run from here.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from charterflow import contract
from kubernetes.dynamic.exceptions import ConflictError

from charterflow_operator import api
from charterflow_operator.api import Reason
from charterflow_operator.children import jobs
from charterflow_operator.instance import CharterFlow, Manifest
from charterflow_operator.kube import Kube
from charterflow_operator.observe import (
    FAILED,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    WAITING,
    Body,
    JobProgress,
    job_progress,
    rollout,
)

log = logging.getLogger(__name__)
JOB = (api.JOB.api_version, api.JOB.kind)


@dataclass(frozen=True)
class GateDecision:
    """Whether the workloads may roll out now, and the steps that decided it."""

    open: bool
    restore: JobProgress | None
    migration: JobProgress | None


def _generation(body: Body) -> int:
    return int(body["metadata"].get("generation", 0))


def _retrying(name: str, message: str) -> JobProgress:
    return JobProgress(name, RUNNING, Reason.RETRYING, message)


# A lifecycle Job that failed because a dependency was down runs again this long after it failed.
DEPENDENCY_RETRY_SECONDS = 30


def unavailable_dependency(said: str | None) -> str | None:
    """The dependency a failed lifecycle command named as unreachable in its last words."""
    for line in reversed((said or "").splitlines()):
        _, marker, rest = line.partition(contract.DEPENDENCY_UNAVAILABLE)
        if marker:
            return rest.strip().split(" ", 1)[0] or None
    return None


def _age(when: str | None, now: dt.datetime) -> float:
    if not when:
        return float("inf")
    return (now - dt.datetime.fromisoformat(when.replace("Z", "+00:00"))).total_seconds()


class RolloutGate:
    """Runs the lifecycle Jobs of CharterFlows through ``kube``; holds no state of its own."""

    def __init__(
        self, kube: Kube, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    ) -> None:
        self.kube = kube
        self._clock = clock

    # --- before the rollout ----------------------------------------------------------------

    def before_rollout(self, cf: CharterFlow, body: Body) -> GateDecision:
        """Restore (if asked and still due), then the expand migrations of a new image."""
        restore = self._restore(cf, body) if cf.spec.get("restore") else None
        if restore and restore.state not in (SUCCEEDED, SKIPPED):
            message = "migrations run after the restore"
            waiting = JobProgress("", WAITING, Reason.WAITING_FOR_RESTORE, message)
            return GateDecision(False, restore, waiting)
        if self._runs_target_image(cf):
            return GateDecision(True, restore, None)
        step = self._run(jobs.migration_job(cf, "expand", _generation(body)), body)
        return GateDecision(step.state == SUCCEEDED, restore, step)

    def _runs_target_image(self, cf: CharterFlow) -> bool:
        """Both Deployments exist and already have the target image (nothing to migrate)."""
        for name in (cf.api_name, cf.worker_name):
            deployment = self.kube.get(
                api.DEPLOYMENT.api_version, api.DEPLOYMENT.kind, cf.namespace, name
            )
            state = rollout(deployment)
            if state is None or state.image != cf.image:
                return False
        return True

    def _restore(self, cf: CharterFlow, body: Body) -> JobProgress:
        """The restore step: recorded in status once done, so it never runs twice."""
        status = body.get("status") or {}
        if recorded := status.get("restore"):
            source = f"{recorded.get('from')} (backups of {recorded.get('name')})"
            message = f"restored from {source} by Job {recorded.get('job')}"
            return JobProgress(recorded.get("job", ""), SUCCEEDED, Reason.RESTORED, message)
        deployment = (api.DEPLOYMENT.api_version, api.DEPLOYMENT.kind)
        existing = self.kube.get(*deployment, cf.namespace, cf.api_name)
        if status.get("version") or existing is not None:
            message = (
                "spec.restore only bootstraps a new instance, and this one has run already; "
                "restore a running instance with `charterflow restore` (docs/operations.md)"
            )
            return JobProgress("", SKIPPED, Reason.NOT_APPLICABLE, message)
        step = self._run(jobs.restore_job(cf, _generation(body)), body)
        if step.state == SUCCEEDED:
            return JobProgress(step.job, SUCCEEDED, Reason.RESTORED, step.message, step.finished)
        return step

    # --- after the rollout -----------------------------------------------------------------

    def after_rollout(
        self,
        cf: CharterFlow,
        body: Body,
        api_deployment: Body | None,
        worker_deployment: Body | None,
    ) -> JobProgress:
        """The contract migrations, once every pod runs the target image and is ready."""
        manifest = jobs.migration_job(cf, "contract", _generation(body))
        found = self.kube.get(*JOB, cf.namespace, manifest["metadata"]["name"])
        if found is None:
            states = [rollout(api_deployment), rollout(worker_deployment)]
            done = all(s is not None and s.complete and s.image == cf.image for s in states)
            if not done:
                message = f"contract migrations of {cf.version} run once every new pod is ready"
                return JobProgress("", WAITING, Reason.WAITING_FOR_ROLLOUT, message)
        step = self._run(manifest, body, found)
        if step.state == SUCCEEDED:
            self._prune_migrations(cf, {cf.migration_job_name(p) for p in ("expand", "contract")})
        return step

    def _prune_migrations(self, cf: CharterFlow, keep: set[str]) -> None:
        """Delete finished migration Jobs of earlier versions (the current ones stay)."""
        for job in self.kube.list(*JOB, cf.namespace, cf.selector("migrate")):
            name = job["metadata"]["name"]
            if name not in keep and job_progress(job).state in (SUCCEEDED, FAILED):
                self.kube.delete(*JOB, cf.namespace, name)

    # --- Jobs --------------------------------------------------------------------------------

    def _run(self, manifest: Manifest, body: Body, found: Body | None = None) -> JobProgress:
        """Create the Job if absent; report it; retry it if it failed for an older generation.

        ``found``: the Job as the caller just read it (else it is read here).
        """
        meta = manifest["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        if found is None:
            found = self.kube.get(*JOB, namespace, name)
        if found is None:
            try:
                found = self.kube.create(manifest)
            except ConflictError:  # the deleted one is still going; its deletion wakes us
                return _retrying(name, f"waiting for the old Job {name} to go")
            log.info("created Job %s/%s", namespace, name)
            return job_progress(found)
        if found["metadata"].get("deletionTimestamp"):
            return _retrying(name, f"waiting for the old Job {name} to go")
        step = job_progress(found)
        annotations = found["metadata"].get("annotations") or {}
        created_for = int(annotations.get(api.GENERATION_ANNOTATION, "0"))
        if step.state == FAILED and created_for < _generation(body):
            log.info("spec changed since Job %s/%s failed: running it again", namespace, name)
            self.kube.delete(*JOB, namespace, name)
            return _retrying(name, f"the spec changed: running Job {name} again")
        if step.state == FAILED:
            return self._after_outage(namespace, step)
        return step

    def _after_outage(self, namespace: str, step: JobProgress) -> JobProgress:
        """A Job that failed because a dependency was down: reported as that dependency's
        outage, and run again a little after it failed (with no spec change), until the
        dependency answers. Any other failure waits for a new spec or a deleted Job."""
        dependency = unavailable_dependency(self._said(namespace, step.job))
        if dependency is None:
            return step
        if _age(step.finished, self._clock()) >= DEPENDENCY_RETRY_SECONDS:
            log.info(
                "Job %s/%s: the %s was unavailable; running it again",
                namespace,
                step.job,
                dependency,
            )
            self.kube.delete(*JOB, namespace, step.job)
            return _retrying(
                step.job, f"the {dependency} was unavailable: running Job {step.job} again"
            )
        reason = api.UNAVAILABLE_REASONS.get(dependency, Reason.FAILED)
        message = (
            f"Job {step.job} could not reach the {dependency}; it runs again "
            f"{DEPENDENCY_RETRY_SECONDS}s after it failed, until the {dependency} answers"
        )
        return JobProgress(step.job, FAILED, reason, message, step.finished)

    # --- backups -----------------------------------------------------------------------------

    def backup_request(self, cf: CharterFlow, body: Body, digest: str) -> dict[str, str] | None:
        """Run one backup for a new ``backup-now`` token; returns the request to record."""
        token = (body["metadata"].get("annotations") or {}).get(api.BACKUP_NOW_ANNOTATION)
        handled: Mapping[str, Any] = (body.get("status") or {}).get("backupRequest") or {}
        if not token or handled.get("token") == token:
            return None
        manifest = jobs.backup_now_job(cf, digest, token)
        name = manifest["metadata"]["name"]
        try:
            self.kube.create(manifest)
            log.info("created on-demand backup Job %s/%s", cf.namespace, name)
        except ConflictError:  # created by a pass whose status write was lost: once is enough
            pass
        return {"token": token, "job": name}

    def backups(self, cf: CharterFlow) -> tuple[dict[str, Any], ...]:
        """Every backup Job of the instance (scheduled and on demand), for status.lastBackup."""
        return tuple(self.kube.list(*JOB, cf.namespace, cf.selector("backup")))

    def termination_message(self, cf: CharterFlow, job: str) -> str | None:
        """The termination message of the Job's last finished pod (the kubelet copies what
        the container wrote to its terminationMessagePath); None when no pod says anything."""
        return self._said(cf.namespace, job)

    def _said(self, namespace: str, job: str) -> str | None:
        said: list[tuple[str, str]] = []
        pods = self.kube.list(
            api.POD.api_version, api.POD.kind, namespace, f"{api.JOB_NAME_LABEL}={job}"
        )
        for pod in pods:
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                ended = (status.get("state") or {}).get("terminated") or {}
                if ended.get("message"):
                    said.append((ended.get("finishedAt") or "", ended["message"]))
        return max(said)[1] if said else None
