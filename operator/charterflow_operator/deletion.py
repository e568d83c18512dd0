"""``spec.deletionPolicy: Snapshot``: a final backup before the children go.

While the policy is Snapshot the CharterFlow carries the ``charterflow.app/final-backup``
finalizer, so ``kubectl delete`` only marks it deleted: garbage collection leaves its children
alone until the finalizer is removed. The operator then runs one backup Job and removes the
finalizer when it succeeds. A failed one keeps the CharterFlow (phase Degraded, reason
FinalBackupFailed) until someone fixes the cause (the Job is then deleted to run again) or sets
another policy, which lets the deletion go on without a backup. When the whole namespace is
being deleted no Job can be created there (nor would its Secrets last): the deletion goes on
without one, with a warning, rather than keep the namespace Terminating for ever.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ConflictError

from charterflow_operator import api
from charterflow_operator.api import Condition, Phase, Reason
from charterflow_operator.children.jobs import final_backup_job
from charterflow_operator.instance import SNAPSHOT, CharterFlow
from charterflow_operator.kube import Kube, namespace_terminating
from charterflow_operator.observe import FAILED, SUCCEEDED, job_progress

log = logging.getLogger(__name__)
FINALIZER = api.FINAL_BACKUP_FINALIZER


def _finalizers(body: Mapping[str, Any]) -> list[str]:
    return list(body["metadata"].get("finalizers") or [])


def waits_for_backup(body: Mapping[str, Any]) -> bool:
    """A deleted CharterFlow whose deletion waits for our final backup."""
    return bool(body["metadata"].get("deletionTimestamp")) and FINALIZER in _finalizers(body)


class FinalBackup:
    """Keeps the finalizer in step with the policy, and runs the backup a deletion waits for."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def _set_finalizer(self, body: Mapping[str, Any], present: bool) -> None:
        meta = body["metadata"]
        others = [f for f in _finalizers(body) if f != FINALIZER]
        wanted = [*others, FINALIZER] if present else others
        # resourceVersion: the patch is refused (and retried by the next pass) if someone else
        # changed the list meanwhile, since a merge patch replaces the whole list.
        patch: dict[str, Any] = {"metadata": {"finalizers": wanted}}
        if meta.get("resourceVersion"):
            patch["metadata"]["resourceVersion"] = meta["resourceVersion"]
        self.kube.patch(api.API_VERSION, api.KIND, meta["namespace"], meta["name"], patch)

    def settle(self, cf: CharterFlow, body: Mapping[str, Any]) -> None:
        """The finalizer is there exactly while the policy is Snapshot (a live CharterFlow)."""
        wanted = cf.spec["deletionPolicy"] == SNAPSHOT
        if wanted != (FINALIZER in _finalizers(body)):
            self._set_finalizer(body, wanted)

    def finish(self, cf: CharterFlow, body: Mapping[str, Any], now: str) -> None:
        """One pass over a deletion that waits for the final backup."""
        if cf.spec["deletionPolicy"] != SNAPSHOT:  # changed while waiting: go on without one
            self._set_finalizer(body, False)
            return
        name = cf.final_backup_job_name
        job = self.kube.get(api.JOB.api_version, api.JOB.kind, cf.namespace, name)
        if job is None:
            try:
                self.kube.create(final_backup_job(cf))
            except ConflictError:
                return
            except ApiException as exc:
                if not namespace_terminating(exc):
                    raise
                # The whole namespace is going (its Secrets too): no backup can run, and
                # holding on would keep the namespace Terminating forever.
                log.warning("%s/%s: namespace deleted, no final backup", cf.namespace, cf.name)
                self._set_finalizer(body, False)
                return
            message = f"deletion waits for the final backup Job {name}"
            self._report(body, Reason.FINAL_BACKUP_RUNNING, message, now)
            self.kube.post_event(body, "Normal", Reason.FINAL_BACKUP_RUNNING, message)
            return
        progress = job_progress(job)
        if progress.state == SUCCEEDED:
            log.info("%s/%s: final backup %s succeeded", cf.namespace, cf.name, name)
            self.kube.post_event(body, "Normal", Reason.FINAL_BACKUP_SUCCEEDED, progress.message)
            self._set_finalizer(body, False)
        elif progress.state == FAILED:
            message = (
                f"{progress.reason}: {progress.message}; fix the cause and delete the Job to run "
                "it again, or set spec.deletionPolicy to Retain to delete without a backup"
            )
            self._report(body, Reason.FINAL_BACKUP_FAILED, message, now)

    def _report(self, body: Mapping[str, Any], reason: str, message: str, now: str) -> None:
        """Ready (and the phase) say why the CharterFlow is still there."""
        old = body.get("status") or {}
        conditions = [c for c in old.get("conditions", []) if c.get("type") != Condition.READY]
        ready = {
            "type": Condition.READY,
            "status": "False",
            "reason": reason,
            "message": message,
            "lastTransitionTime": now,
            "observedGeneration": int(body["metadata"].get("generation", 0)),
        }
        for before in old.get("conditions", []):
            if before.get("type") == Condition.READY and before.get("reason") == reason:
                return  # already said
        phase = Phase.DEGRADED if reason in api.DEGRADED_REASONS else Phase.PROGRESSING
        status = {"phase": phase, "conditions": [ready, *conditions]}
        meta = body["metadata"]
        self.kube.patch_status(meta["namespace"], meta["name"], status)
        if reason == Reason.FINAL_BACKUP_FAILED:
            self.kube.post_event(body, "Warning", reason, message)
