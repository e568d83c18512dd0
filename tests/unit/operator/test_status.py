"""Status from observed children and lifecycle Jobs: phases, reasons, stable transition times,
generations, the restore record, the last backup."""

from __future__ import annotations

from typing import Any

import pytest
from charterflow_operator.instance import CharterFlow
from charterflow_operator.kube import merge_patch
from charterflow_operator.observe import (
    FAILED,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    WAITING,
    JobProgress,
    PassResult,
    backup_report,
    job_progress,
)
from charterflow_operator.status import compute, last_backup

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def body(generation: int = 3, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "charterflow", "generation": generation}, "status": status or {}}


def deployment(
    replicas: int, ready: int, *, updated: int | None = None, version: str = "0.1.0"
) -> dict[str, Any]:
    updated = replicas if updated is None else updated
    return {
        "metadata": {"generation": 2},
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/version": version}},
                "spec": {"containers": [{"image": f"ghcr.io/charterflow/charterflow:{version}"}]},
            },
        },
        "status": {
            "observedGeneration": 2,
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "conditions": [{"type": "Available", "status": "True" if ready else "False"}],
        },
    }


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


MIGRATED = JobProgress("cf-contract-0-1-0-abc", SUCCEEDED, "Succeeded", "Job cf-contract succeeded")


def test_ready_when_both_rollouts_complete(cf: CharterFlow) -> None:
    seen = PassResult(api=deployment(2, 2), worker=deployment(1, 1), migration=MIGRATED)
    status = compute(body(), cf, seen, T0)
    assert status["phase"] == "Ready"
    assert status["observedGeneration"] == 3
    assert status["api"] == {"replicas": 2, "readyReplicas": 2, "ready": "2/2"}
    assert status["worker"]["ready"] == "1/1"
    assert status["version"] == "0.1.0"
    assert status["url"] == "https://charterflow.example.com"
    found = conditions(status)
    assert found["Ready"]["status"] == "True"
    assert found["MigrationsComplete"]["status"] == "True"
    assert "Restored" not in found  # only with spec.restore
    assert all(c["observedGeneration"] == 3 for c in status["conditions"])


def test_progressing_while_pods_come_up(cf: CharterFlow) -> None:
    seen = PassResult(api=deployment(2, 1, updated=1), worker=deployment(1, 1))
    status = compute(body(), cf, seen, T0)
    assert status["phase"] == "Progressing"
    assert conditions(status)["Ready"]["reason"] == "RolloutInProgress"
    assert conditions(status)["ApiAvailable"]["status"] == "True"
    assert "version" not in status  # nothing has finished rolling out yet


def test_missing_secret_names_it(cf: CharterFlow) -> None:
    message = "Secret 'charterflow-redis' (spec.redis.urlSecretRef) not found in team-a"
    status = compute(body(), cf, PassResult(missing_secret=message), T0)
    assert status["phase"] == "Degraded"
    ready = conditions(status)["Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "MissingSecret",
        message,
    )


def test_paused_says_so(cf: CharterFlow) -> None:
    seen = PassResult(api=deployment(2, 2), worker=deployment(1, 1), paused=True)
    status = compute(body(), cf, seen, T0)
    assert status["phase"] == "Paused"
    assert conditions(status)["Ready"]["reason"] == "Paused"


def test_transition_time_moves_only_on_change(cf: CharterFlow) -> None:
    ready = PassResult(api=deployment(2, 2), worker=deployment(1, 1))
    first = compute(body(), cf, ready, T0)
    again = compute(body(status=first), cf, ready, T1)
    assert again == first  # nothing changed: nothing to write
    broken = compute(body(status=first), cf, PassResult(missing_secret="gone"), T1)
    assert conditions(broken)["Ready"]["lastTransitionTime"] == T1
    assert conditions(broken)["BackupScheduled"]["status"] == "False"
    assert broken["version"] == "0.1.0"  # what runs is still known


def test_backup_condition_follows_suspend(cf: CharterFlow) -> None:
    cron = {"spec": {"schedule": "0 3 * * *", "suspend": True}, "status": {}}
    seen = PassResult(api=deployment(2, 2), worker=deployment(1, 1), cronjob=cron)
    assert conditions(compute(body(), cf, seen, T0))["BackupScheduled"]["reason"] == "Suspended"
    cron["spec"]["suspend"] = False
    cron["status"] = {"lastSuccessfulTime": T0}
    status = compute(body(), cf, seen, T0)
    assert conditions(status)["BackupScheduled"]["status"] == "True"
    assert status["lastBackup"] == {"time": T0, "result": "Succeeded"}


def job(name: str, kind: str | None = None, when: str = T0, **condition: str) -> dict[str, Any]:
    """A Job as the API returns it; ``kind`` is its finished condition (Complete, Failed)."""
    status: dict[str, Any] = {}
    if kind:
        status["conditions"] = [
            {"type": kind, "status": "True", "lastTransitionTime": when, **condition}
        ]
        if kind == "Complete":
            status["completionTime"] = when
    return {"metadata": {"name": name}, "status": status}


@pytest.mark.parametrize(
    ("body", "state", "reason"),
    [
        (job("j"), RUNNING, "Running"),
        (job("j", "Complete"), SUCCEEDED, "Succeeded"),
        (job("j", "Failed", reason="BackoffLimitExceeded", message="limit"), FAILED, "Backoff"),
        (job("j", "FailureTarget", reason="DeadlineExceeded", message="late"), FAILED, "Deadline"),
    ],
)
def test_job_step_reads_the_jobs_conditions(body: dict, state: str, reason: str) -> None:
    step = job_progress(body)
    assert (step.job, step.state) == ("j", state)
    assert step.reason.startswith(reason)
    assert step.finished == (None if state == RUNNING else T0)


def test_first_migration_is_progressing(cf: CharterFlow) -> None:
    running = JobProgress("cf-migrate-0-1-0-abc", RUNNING, "Running", "Job cf-migrate is running")
    status = compute(body(), cf, PassResult(migration=running), T0)
    assert status["phase"] == "Progressing"
    found = conditions(status)
    assert found["Ready"]["reason"] == "Migrating"
    migrations = found["MigrationsComplete"]
    assert (migrations["status"], migrations["reason"]) == ("False", "Running")
    assert "version" not in status


def test_failed_migration_degrades_while_the_old_version_serves(cf: CharterFlow) -> None:
    failed = JobProgress(
        "cf-migrate-0-2-0-abc",
        FAILED,
        "BackoffLimitExceeded",
        "Job cf-migrate-0-2-0-abc failed: Job has reached the specified backoff limit",
        T0,
    )
    seen = PassResult(api=deployment(2, 2), worker=deployment(1, 1), migration=failed)
    status = compute(body(status={"version": "0.1.0"}), cf, seen, T0)
    assert status["phase"] == "Degraded"
    found = conditions(status)
    assert found["Ready"]["reason"] == "MigrationFailed"
    assert "BackoffLimitExceeded" in found["Ready"]["message"]
    assert "backoff limit" in found["Ready"]["message"]
    assert found["MigrationsComplete"]["reason"] == "BackoffLimitExceeded"
    assert found["ApiAvailable"]["status"] == "True"  # the old pods keep serving
    assert status["version"] == "0.1.0"


def test_not_ready_until_contract_migrations_ran(cf: CharterFlow) -> None:
    new = {"api": deployment(2, 2, version="0.2.0"), "worker": deployment(1, 1, version="0.2.0")}
    contract = JobProgress(
        "cf-contract-0-2-0-abc", RUNNING, "Running", "Job cf-contract is running"
    )
    status = compute(body(), cf, PassResult(**new, migration=contract), T0)
    assert (status["phase"], conditions(status)["Ready"]["reason"]) == ("Progressing", "Migrating")
    assert status["version"] == "0.2.0"  # rolled out: recorded before the contract step
    done = compute(body(status=status), cf, PassResult(**new, migration=MIGRATED), T1)
    assert done["phase"] == "Ready"


def test_waiting_for_rollout_is_not_ready(cf: CharterFlow) -> None:
    waiting = JobProgress("", WAITING, "WaitingForRollout", "contract migrations run once ...")
    seen = PassResult(api=deployment(2, 1, updated=1), worker=deployment(1, 1), migration=waiting)
    status = compute(body(), cf, seen, T0)
    assert status["phase"] == "Progressing"
    assert conditions(status)["MigrationsComplete"]["reason"] == "WaitingForRollout"


def restoring(cf: CharterFlow) -> CharterFlow:
    spec = {**cf.spec, "restore": {"from": "latest", "name": "old"}}
    return CharterFlow(cf.name, cf.namespace, cf.uid, spec)


def test_restore_runs_first_then_is_recorded_once(cf: CharterFlow) -> None:
    cf = restoring(cf)
    wait = JobProgress("", WAITING, "WaitingForRestore", "migrations run after the restore")
    running = JobProgress("cf-restore-abc", RUNNING, "Running", "Job cf-restore-abc is running")
    status = compute(body(), cf, PassResult(restore=running, migration=wait), T0)
    assert status["phase"] == "Progressing"
    found = conditions(status)
    assert found["Ready"]["reason"] == "Restoring"
    assert (found["Restored"]["status"], found["Restored"]["reason"]) == ("False", "Running")
    assert found["MigrationsComplete"]["reason"] == "WaitingForRestore"
    assert "restore" not in status

    done = JobProgress("cf-restore-abc", SUCCEEDED, "Restored", "Job cf-restore-abc succeeded", T1)
    status = compute(body(status=status), cf, PassResult(restore=done, migration=wait), T1)
    assert conditions(status)["Restored"]["status"] == "True"
    assert status["restore"] == {
        "from": "latest",
        "name": "old",
        "prefix": "backups/",
        "job": "cf-restore-abc",
        "completionTime": T1,
    }
    paused = compute(body(status=status), cf, PassResult(paused=True), T1)
    assert paused["restore"] == status["restore"]  # carried, never recomputed
    assert conditions(paused)["Restored"]["status"] == "True"


def test_failed_restore_degrades(cf: CharterFlow) -> None:
    failed = JobProgress(
        "cf-restore-abc", FAILED, "BackoffLimitExceeded", "Job cf-restore failed", T0
    )
    status = compute(body(), restoring(cf), PassResult(restore=failed), T0)
    assert status["phase"] == "Degraded"
    assert conditions(status)["Ready"]["reason"] == "RestoreFailed"
    assert conditions(status)["Restored"]["reason"] == "BackoffLimitExceeded"


def test_restore_on_a_running_instance_is_not_applicable(cf: CharterFlow) -> None:
    skipped = JobProgress(
        "", SKIPPED, "NotApplicable", "spec.restore only bootstraps a new instance"
    )
    seen = PassResult(
        api=deployment(2, 2), worker=deployment(1, 1), restore=skipped, migration=MIGRATED
    )
    status = compute(body(), restoring(cf), seen, T0)
    assert status["phase"] == "Ready"
    restored = conditions(status)["Restored"]
    assert (restored["status"], restored["reason"]) == ("False", "NotApplicable")
    assert "restore" not in status


def test_last_backup_is_the_newest_finished_job() -> None:
    jobs = (
        job("b-1", "Complete", "2026-01-01T03:00:05Z"),
        job("b-2", "Failed", "2026-01-02T03:00:09Z", reason="DeadlineExceeded", message="late"),
        job("b-3"),  # still running
    )
    latest = last_backup(jobs, None, None)
    assert latest is not None
    assert (latest["job"], latest["result"], latest["time"]) == (
        "b-2",
        "Failed",
        "2026-01-02T03:00:09Z",
    )
    assert latest["message"].startswith("DeadlineExceeded: Job b-2 failed: late")
    assert last_backup(jobs[:1], None, None) == {
        "time": "2026-01-01T03:00:05Z",
        "result": "Succeeded",
        "job": "b-1",
    }
    old = {"time": T0, "result": "Succeeded", "job": "gone"}
    assert last_backup((job("b-3"),), None, old) == old  # pruned Jobs: keep what was known


def test_last_backup_reports_what_its_pod_said() -> None:
    done = (job("b-1", "Complete", T1),)
    said = backup_report('{"key":"backups/cf/20260101T030005Z.dump","size":1,"sha256":"ab"}\n')
    latest = last_backup(done, None, None, said)
    assert latest is not None
    assert latest["key"] == "backups/cf/20260101T030005Z.dump"
    # Asked once: a status that already reports this Job is carried, key and all.
    assert last_backup(done, None, latest) == latest
    # A newer Job replaces it, and says nothing of the older key until its own pod speaks.
    newer = (*done, job("b-2", "Complete", "2026-01-03T03:00:00Z"))
    assert "key" not in (last_backup(newer, None, latest, {}) or {})

    failed = (job("b-3", "Failed", T1, reason="BackoffLimitExceeded", message="limit"),)
    log_tail = "connecting...\ncharterflow backup: error: cannot connect to the database\n"
    told = last_backup(failed, None, None, backup_report(log_tail))
    assert told is not None
    assert told["message"] == (
        "BackoffLimitExceeded: charterflow backup: error: cannot connect to the database"
    )
    assert "key" not in told


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ('{"key": "backups/cf/x.dump"}', {"key": "backups/cf/x.dump"}),
        ('{"size": 3}', {}),  # JSON without a key names nothing
        ('["backups/cf/x.dump"]', {}),
        ("", {}),
        (None, {}),
        ("line one\nthe last words  \n\n", {"message": "the last words"}),
        ("x" * 1000, {"message": "x" * 300}),
    ],
)
def test_backup_words(message: str | None, words: dict[str, str]) -> None:
    assert backup_report(message) == words


def test_backup_request_is_recorded_and_kept(cf: CharterFlow) -> None:
    request = {"token": "t1", "job": "cf-backup-now-abc"}
    seen = PassResult(api=deployment(2, 2), worker=deployment(1, 1), backup_request=request)
    status = compute(body(), cf, seen, T0)
    assert status["backupRequest"] == request
    later = compute(body(status=status), cf, PassResult(api=deployment(2, 2)), T1)
    assert later["backupRequest"] == request


def test_merge_patch_removes_what_went() -> None:
    old = {"phase": "Ready", "lastBackup": {"time": T0, "result": "Failed", "message": "x"}}
    new = {"phase": "Ready", "lastBackup": {"time": T1, "result": "Succeeded"}}
    assert merge_patch(old, new) == {
        "phase": "Ready",
        "lastBackup": {"time": T1, "result": "Succeeded", "message": None},
    }


def test_a_carried_condition_keeps_the_generation_it_was_observed_at(cf: CharterFlow) -> None:
    seen = PassResult(api=deployment(2, 2), worker=deployment(1, 1), migration=MIGRATED)
    first = compute(body(generation=3), cf, seen, T0)
    # Generation 4 could not be applied: MigrationsComplete is carried, not re-evaluated.
    refused = compute(body(generation=4, status=first), cf, PassResult(apply_error="quota"), T1)
    found = conditions(refused)
    assert found["MigrationsComplete"]["status"] == "True"
    assert found["MigrationsComplete"]["observedGeneration"] == 3
    assert found["Ready"]["observedGeneration"] == 4
    assert refused["observedGeneration"] == 4


def test_a_name_conflict_degrades_and_names_the_object(cf: CharterFlow) -> None:
    message = "ConfigMap 'charterflow-config' exists and is not controlled by this CharterFlow"
    status = compute(body(), cf, PassResult(name_conflict=message), T0)
    assert status["phase"] == "Degraded"
    ready = conditions(status)["Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "NameConflict",
        message,
    )
