"""The run-once work around an instance: scheduled and on-demand backups, the restore that
bootstraps a new instance, and the expand/contract migrations around a rollout. When each runs
is decided by rollout_gate.py; this module only says what it is."""

from __future__ import annotations

from typing import Any

from charterflow import contract

from charterflow_operator import api
from charterflow_operator.children.pods import run_once, template
from charterflow_operator.instance import CharterFlow, Manifest

# Kubernetes' default terminationMessagePath; the kubelet mounts it writable (read-only root).
TERMINATION_LOG = "/dev/termination-log"


def backup_job_spec(cf: CharterFlow, digest: str) -> dict[str, Any]:
    """The Job spec of one `charterflow backup` run: scheduled, or on demand."""
    backup = cf.spec["backup"]
    settings = {**cf.spec["worker"], "podAnnotations": {}, "tmpSizeLimit": backup["tmpSizeLimit"]}
    container = {
        "name": "backup",
        "command": list(contract.BACKUP),
        "env": [
            {"name": contract.BACKUP_PREFIX, "value": backup["prefix"]},
            {"name": contract.BACKUP_RETENTION_DAYS, "value": str(backup["retentionDays"])},
            # The result (key, size, sha256) becomes the container's termination message,
            # which status.lastBackup reports; a failure's message is the end of its log.
            {"name": contract.BACKUP_RESULT_FILE, "value": TERMINATION_LOG},
        ],
        "resources": backup["resources"],
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return {
        "backoffLimit": 2,
        "template": run_once(template(cf, "backup", settings, container, digest)),
    }


def backup_cronjob(cf: CharterFlow, digest: str) -> Manifest | None:
    """`charterflow backup` on the schedule; Forbid keeps two runs from overlapping."""
    backup = cf.spec["backup"]
    if not backup["enabled"]:
        return None
    spec: dict[str, Any] = {
        "schedule": backup["schedule"],
        "suspend": backup["suspend"],
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 600,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {
            "metadata": {"labels": cf.labels("backup")},
            "spec": backup_job_spec(cf, digest),
        },
    }
    if backup.get("timeZone"):
        spec["timeZone"] = backup["timeZone"]
    return {
        "apiVersion": api.CRONJOB.api_version,
        "kind": api.CRONJOB.kind,
        "metadata": cf.meta(cf.backup_name, "backup"),
        "spec": spec,
    }


def _job(metadata: dict[str, Any], spec: dict[str, Any]) -> Manifest:
    return {
        "apiVersion": api.JOB.api_version,
        "kind": api.JOB.kind,
        "metadata": metadata,
        "spec": spec,
    }


def backup_now_job(cf: CharterFlow, digest: str, token: str) -> Manifest:
    """A backup run requested by the backup-now annotation: the CronJob's Job, made now.

    Owned by the CharterFlow rather than the CronJob, so the CronJob's history limits leave it
    alone; works with scheduled backups disabled too (a request is explicit).
    """
    name = cf.backup_now_job_name(token)
    meta = cf.meta(name, "backup", annotations={api.BACKUP_NOW_ANNOTATION: token})
    return _job(meta, backup_job_spec(cf, digest))


def final_backup_job(cf: CharterFlow) -> Manifest:
    """The backup that a Snapshot deletion waits for (spec.deletionPolicy), made once the
    CharterFlow is being deleted and before garbage collection takes its children (the
    ConfigMap and ServiceAccount this pod needs among them). Works with scheduled backups
    disabled too: the policy is the request."""
    return _job(cf.meta(cf.final_backup_job_name, "backup"), backup_job_spec(cf, ""))


def _database_job(
    cf: CharterFlow, name: str, component: str, command: list[str], generation: int
) -> Manifest:
    """A run-once Job that prepares the database (restore, migrations), as the API would run.

    The API's env, envFrom and scheduling apply (same database, same secrets); annotations,
    resources and limits come from ``spec.migrations``. No ``ttlSecondsAfterFinished``: a
    finished Job is the record of what ran, and a failed one keeps its pod for the logs.
    """
    migrations = cf.spec["migrations"]
    settings = {
        **cf.spec["api"],
        "podAnnotations": migrations.get("podAnnotations", {}),
        "tmpSizeLimit": migrations["tmpSizeLimit"],  # a restore downloads the whole dump here
    }
    container = {
        "name": component,
        "command": command,
        "resources": migrations["resources"],
        # The last log lines become the pod's termination message when it fails.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    meta = cf.meta(name, component, annotations={api.GENERATION_ANNOTATION: str(generation)})
    spec = {
        "backoffLimit": migrations["backoffLimit"],
        "activeDeadlineSeconds": migrations["activeDeadlineSeconds"],
        "template": run_once(template(cf, component, settings, container, "")),
    }
    return _job(meta, spec)


def migration_job(cf: CharterFlow, phase: str, generation: int) -> Manifest:
    """`charterflow migrate --phase expand` (before the rollout) or `contract` (after it)."""
    command = [*contract.MIGRATE, "--phase", phase]
    return _database_job(cf, cf.migration_job_name(phase), "migrate", command, generation)


def restore_source(cf: CharterFlow) -> dict[str, str]:
    """``spec.restore`` resolved: which backup, of which instance, under which prefix."""
    restore = cf.spec["restore"]
    return {
        "from": restore["from"],
        "name": restore.get("name") or cf.name,
        "prefix": restore.get("prefix", cf.spec["backup"]["prefix"]),
    }


def restore_job(cf: CharterFlow, generation: int) -> Manifest:
    """`charterflow restore` into the new instance's empty database (never ``--force``)."""
    source = restore_source(cf)
    command = [*contract.RESTORE, "--from", source["from"], "--name", source["name"]]
    command += ["--prefix", source["prefix"]]
    return _database_job(cf, cf.restore_job_name, "restore", command, generation)
