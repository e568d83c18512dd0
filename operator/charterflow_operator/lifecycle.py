"""The Jobs around a rollout: restore a new instance, migrate before new pods, contract after.

Per CharterFlow, in order: restore (once, only for a new instance with ``spec.restore``) ->
``migrate --phase expand`` with the target version's image -> the Deployments roll -> once every
new pod is ready, ``migrate --phase contract``. Jobs are created, never updated (a Job's pod
template is immutable). A migration Job's name holds the version and a hash of the image, so a
new version gets a new Job and a finished one records what ran. A failed Job stays (its pod
keeps the logs) and holds the rollout back until the spec changes or someone deletes the Job;
either runs it again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubernetes.dynamic.exceptions import ConflictError

from charterflow_operator import builders
from charterflow_operator.builders import Manifest, Owner
from charterflow_operator.status import (
    FAILED,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    WAITING,
    Body,
    Step,
    job_step,
    rollout,
)

if TYPE_CHECKING:
    from charterflow_operator.reconcile import Kube

log = logging.getLogger(__name__)
JOB = ("batch/v1", "Job")
# Set by the Job controller on each pod it creates.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


@dataclass(frozen=True)
class Gate:
    """Whether the workloads may roll out now, and the steps that decided it."""

    open: bool
    restore: Step | None
    migration: Step | None


def _generation(body: Body) -> int:
    return int(body["metadata"].get("generation", 0))


def _selector(owner: Owner, component: str) -> str:
    return f"app.kubernetes.io/instance={owner.name},app.kubernetes.io/component={component}"


class Lifecycle:
    """Runs the lifecycle Jobs of CharterFlows through ``kube``; holds no state of its own."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    # --- before the rollout ----------------------------------------------------------------

    def before_rollout(self, owner: Owner, body: Body) -> Gate:
        """Restore (if asked and still due), then the expand migrations of a new image."""
        restore = self._restore(owner, body) if owner.spec.get("restore") else None
        if restore and restore.state not in (SUCCEEDED, SKIPPED):
            waiting = Step("", WAITING, "WaitingForRestore", "migrations run after the restore")
            return Gate(False, restore, waiting)
        if self._runs_target_image(owner):
            return Gate(True, restore, None)
        step = self._run(builders.migration_job(owner, "expand", _generation(body)), body)
        return Gate(step.state == SUCCEEDED, restore, step)

    def _runs_target_image(self, owner: Owner) -> bool:
        """Both Deployments exist and already have the target image (nothing to migrate)."""
        for name in (builders.api_name(owner), builders.worker_name(owner)):
            state = rollout(self.kube.get("apps/v1", "Deployment", owner.namespace, name))
            if state is None or state.image != builders.image(owner):
                return False
        return True

    def _restore(self, owner: Owner, body: Body) -> Step:
        """The restore step: recorded in status once done, so it never runs twice."""
        status = body.get("status") or {}
        if recorded := status.get("restore"):
            source = f"{recorded.get('from')} (backups of {recorded.get('name')})"
            message = f"restored from {source} by Job {recorded.get('job')}"
            return Step(recorded.get("job", ""), SUCCEEDED, "Restored", message)
        api = self.kube.get("apps/v1", "Deployment", owner.namespace, builders.api_name(owner))
        if status.get("version") or api is not None:
            message = (
                "spec.restore only bootstraps a new instance, and this one has run already; "
                "restore a running instance with `charterflow restore` (docs/operations.md)"
            )
            return Step("", SKIPPED, "NotApplicable", message)
        step = self._run(builders.restore_job(owner, _generation(body)), body)
        if step.state == SUCCEEDED:
            return Step(step.job, SUCCEEDED, "Restored", step.message, step.finished)
        return step

    # --- after the rollout -----------------------------------------------------------------

    def after_rollout(
        self, owner: Owner, body: Body, api: Body | None, worker: Body | None
    ) -> Step:
        """The contract migrations, once every pod runs the target image and is ready."""
        manifest = builders.migration_job(owner, "contract", _generation(body))
        found = self.kube.get(*JOB, owner.namespace, manifest["metadata"]["name"])
        if found is None:
            states = [rollout(api), rollout(worker)]
            done = all(
                s is not None and s.complete and s.image == builders.image(owner) for s in states
            )
            if not done:
                message = (
                    f"contract migrations of {owner.spec['version']} run once every new pod "
                    "is ready"
                )
                return Step("", WAITING, "WaitingForRollout", message)
        step = self._run(manifest, body, found)
        if step.state == SUCCEEDED:
            keep = {builders.migration_job_name(owner, p) for p in ("expand", "contract")}
            self._prune_migrations(owner, keep)
        return step

    def _prune_migrations(self, owner: Owner, keep: set[str]) -> None:
        """Delete finished migration Jobs of earlier versions (the current ones stay)."""
        for job in self.kube.list(*JOB, owner.namespace, _selector(owner, "migrate")):
            name = job["metadata"]["name"]
            if name not in keep and job_step(job).state in (SUCCEEDED, FAILED):
                self.kube.delete(*JOB, owner.namespace, name)

    # --- Jobs --------------------------------------------------------------------------------

    def _run(self, manifest: Manifest, body: Body, found: Body | None = None) -> Step:
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
                return Step(name, RUNNING, "Retrying", f"waiting for the old Job {name} to go")
            log.info("created Job %s/%s", namespace, name)
            return job_step(found)
        if found["metadata"].get("deletionTimestamp"):
            return Step(name, RUNNING, "Retrying", f"waiting for the old Job {name} to go")
        step = job_step(found)
        annotations = found["metadata"].get("annotations") or {}
        created_for = int(annotations.get(builders.GENERATION_ANNOTATION, "0"))
        if step.state == FAILED and created_for < _generation(body):
            log.info("spec changed since Job %s/%s failed: running it again", namespace, name)
            self.kube.delete(*JOB, namespace, name)
            return Step(name, RUNNING, "Retrying", f"the spec changed: running Job {name} again")
        return step

    # --- backups -----------------------------------------------------------------------------

    def backup_request(self, owner: Owner, body: Body, digest: str) -> dict[str, str] | None:
        """Run one backup for a new ``backup-now`` token; returns the request to record."""
        token = (body["metadata"].get("annotations") or {}).get(builders.BACKUP_NOW_ANNOTATION)
        handled: Mapping[str, Any] = (body.get("status") or {}).get("backupRequest") or {}
        if not token or handled.get("token") == token:
            return None
        manifest = builders.backup_now_job(owner, digest, token)
        name = manifest["metadata"]["name"]
        try:
            self.kube.create(manifest)
            log.info("created on-demand backup Job %s/%s", owner.namespace, name)
        except ConflictError:  # created by a pass whose status write was lost: once is enough
            pass
        return {"token": token, "job": name}

    def backups(self, owner: Owner) -> tuple[dict[str, Any], ...]:
        """Every backup Job of the instance (scheduled and on demand), for status.lastBackup."""
        return tuple(self.kube.list(*JOB, owner.namespace, _selector(owner, "backup")))

    def termination_message(self, owner: Owner, job: str) -> str | None:
        """The termination message of the Job's last finished pod (the kubelet copies what
        the container wrote to its terminationMessagePath); None when no pod says anything."""
        said: list[tuple[str, str]] = []
        for pod in self.kube.list("v1", "Pod", owner.namespace, f"{JOB_NAME_LABEL}={job}"):
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                ended = (status.get("state") or {}).get("terminated") or {}
                if ended.get("message"):
                    said.append((ended.get("finishedAt") or "", ended["message"]))
        return max(said)[1] if said else None
