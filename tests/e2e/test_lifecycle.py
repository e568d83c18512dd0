"""Upgrades, restores and on-demand backups against a real API server (issue 7).

The operator runs as in test_operator.py (conftest.py's ``operator``, one per module). kwok
completes Job pods (they go Succeeded); a Job pod annotated ``charterflow.test/fail: "true"``
fails instead (the pod-fail-on-request stage in tests/support/kwok/stages.yaml), and
``spec.migrations.podAnnotations`` is how a test puts that annotation on the migration and
restore Jobs. Order is proven by what does not exist yet while a Job has not succeeded, not by
clocks.
"""

from __future__ import annotations

from typing import Any

from tests.e2e import kit
from tests.e2e.kit import KubeHandle, OperatorProcess
from tests.support.processes import wait_until

FAIL = {"charterflow.test/fail": "true"}
QUICK = {"backoffLimit": 0}  # a failing Job fails on its first pod


def jobs(kube: KubeHandle, ns: str, component: str) -> dict[str, dict[str, Any]]:
    listed = kit.get(kube, ns, "jobs", "-l", f"app.kubernetes.io/component={component}")["items"]
    return {job["metadata"]["name"]: job for job in listed}


def succeeded(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Complete" and c["status"] == "True" for c in conditions)


def command(job: dict[str, Any]) -> list[str]:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container["command"]


def images(kube: KubeHandle, ns: str) -> dict[str, str]:
    """Deployment name -> (image of its pod template, its version label)."""
    found = {}
    for deploy in kit.get(kube, ns, "deployments")["items"]:
        template = deploy["spec"]["template"]
        (container,) = template["spec"]["containers"]
        version = template["metadata"]["labels"]["app.kubernetes.io/version"]
        found[deploy["metadata"]["name"]] = f"{container['image']} {version}"
    return found


def test_version_bump_migrates_then_rolls(
    kube: KubeHandle, operator: OperatorProcess, ns: str
) -> None:
    kit.apply_secrets(kube, ns)
    kit.apply(kube, ns, kit.sample())
    first = kit.wait_ready(kube, ns)
    assert kit.condition(first, "MigrationsComplete")["status"] == "True"
    assert {command(j)[-1] for j in jobs(kube, ns, "migrate").values()} == {"expand", "contract"}

    kit.apply(kube, ns, kit.sample(version="0.2.0"))
    body = kit.wait_ready(kube, ns)
    assert body["status"]["version"] == "0.2.0"
    new = "ghcr.io/charterflow/charterflow:0.2.0 0.2.0"
    assert images(kube, ns) == {"charterflow-api": new, "charterflow-worker": new}

    wait_until(
        lambda: len(jobs(kube, ns, "migrate")) == 2, timeout=60, what="0.1.0 migration Jobs pruned"
    )
    migrations = jobs(kube, ns, "migrate")
    (expand,) = [j for j in migrations.values() if command(j)[-1] == "expand"]
    (contract,) = [j for j in migrations.values() if command(j)[-1] == "contract"]
    assert expand["metadata"]["name"].startswith("charterflow-migrate-0-2-0-")
    assert contract["metadata"]["name"].startswith("charterflow-contract-0-2-0-")
    for job in (expand, contract):
        assert succeeded(job)
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["image"] == "ghcr.io/charterflow/charterflow:0.2.0"
        assert {"DATABASE_URL", "JWT_SECRET"} <= {e["name"] for e in container["env"]}
        assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        assert "ttlSecondsAfterFinished" not in job["spec"]
        (ref,) = job["metadata"]["ownerReferences"]
        assert ref["uid"] == body["metadata"]["uid"]


def test_failed_migration_keeps_the_old_version_serving(
    kube: KubeHandle, operator: OperatorProcess, ns: str
) -> None:
    kit.apply_secrets(kube, ns)
    kit.apply(kube, ns, kit.sample(migrations=QUICK))
    kit.wait_ready(kube, ns)
    before = images(kube, ns)
    generations = {
        d["metadata"]["name"]: d["metadata"]["generation"]
        for d in kit.get(kube, ns, "deployments")["items"]
    }
    cron = kit.get(kube, ns, "cronjob", "charterflow-backup")["metadata"]["generation"]

    kit.apply(kube, ns, kit.sample(version="0.2.0", migrations={**QUICK, "podAnnotations": FAIL}))
    body = kit.wait_phase(kube, ns, "Degraded")
    ready = kit.condition(body, "Ready")
    assert ready["reason"] == "MigrationFailed"
    assert "BackoffLimitExceeded" in ready["message"]
    assert "charterflow-migrate-0-2-0-" in ready["message"]
    migrations = kit.condition(body, "MigrationsComplete")
    assert (migrations["status"], migrations["reason"]) == ("False", "BackoffLimitExceeded")
    assert kit.condition(body, "ApiAvailable")["status"] == "True"
    assert body["status"]["version"] == "0.1.0"
    assert images(kube, ns) == before  # nothing rolled
    deployments = kit.get(kube, ns, "deployments")["items"]
    assert {d["metadata"]["name"]: d["metadata"]["generation"] for d in deployments} == generations
    assert kit.get(kube, ns, "cronjob", "charterflow-backup")["metadata"]["generation"] == cron
    events = kube.kubectl("get", "events", "-n", ns, "-o", "json").stdout
    assert "MigrationFailed" in events

    kit.apply(
        kube, ns, kit.sample(version="0.2.0", migrations=QUICK)
    )  # the fix: a new spec retries
    body = kit.wait_ready(kube, ns)
    assert body["status"]["version"] == "0.2.0"
    new = "ghcr.io/charterflow/charterflow:0.2.0 0.2.0"
    assert images(kube, ns) == {"charterflow-api": new, "charterflow-worker": new}


def test_restore_bootstraps_the_database_before_anything_runs(
    kube: KubeHandle, operator: OperatorProcess, ns: str
) -> None:
    restore = {"from": "latest", "name": "prod"}
    kit.apply_secrets(kube, ns)
    kit.apply(kube, ns, kit.sample(restore=restore, migrations={**QUICK, "podAnnotations": FAIL}))
    body = kit.wait_phase(kube, ns, "Degraded")
    assert kit.condition(body, "Ready")["reason"] == "RestoreFailed"
    assert kit.condition(body, "Restored")["status"] == "False"
    assert kit.condition(body, "MigrationsComplete")["reason"] == "WaitingForRestore"
    (job,) = jobs(kube, ns, "restore").values()
    assert command(job) == [
        "charterflow",
        "restore",
        "--from",
        "latest",
        "--name",
        "prod",
        "--prefix",
        "backups/",
    ]
    assert kit.get(kube, ns, "deployments")["items"] == []  # no API pod before the restore
    assert jobs(kube, ns, "migrate") == {}  # nor a migration

    kit.apply(kube, ns, kit.sample(restore=restore, migrations=QUICK))  # a new spec retries
    body = kit.wait_ready(kube, ns)
    record = body["status"]["restore"]
    assert {k: record[k] for k in ("from", "name", "prefix")} == {
        "from": "latest",
        "name": "prod",
        "prefix": "backups/",
    }
    assert record["job"] == job["metadata"]["name"]
    assert record["completionTime"]
    assert kit.condition(body, "Restored")["status"] == "True"

    kube.kubectl("delete", "job", record["job"], "-n", ns)
    kit.apply(kube, ns, kit.sample(restore=restore, migrations=QUICK, logLevel="DEBUG"))
    body = kit.wait_ready(kube, ns)
    assert jobs(kube, ns, "restore") == {}  # recorded as done: never run again
    assert body["status"]["restore"] == record


def test_backup_now_runs_one_backup_per_token(
    kube: KubeHandle, operator: OperatorProcess, ns: str
) -> None:
    kit.apply_secrets(kube, ns)
    kit.apply(kube, ns, kit.sample())
    kit.wait_ready(kube, ns)

    def request(token: str) -> str:
        kube.kubectl(
            "annotate",
            "cf",
            "charterflow",
            "-n",
            ns,
            f"charterflow.app/backup-now={token}",
            "--overwrite",
        )
        wait_until(
            lambda: kit.cf(kube, ns)["status"].get("backupRequest", {}).get("token") == token,
            timeout=60,
            what=f"backup request {token} handled",
        )
        return kit.cf(kube, ns)["status"]["backupRequest"]["job"]

    def on_demand() -> set[str]:
        return {
            name
            for name, job in jobs(kube, ns, "backup").items()
            if "charterflow.app/backup-now" in (job["metadata"].get("annotations") or {})
        }

    first = request("t1")
    assert on_demand() == {first}
    job = jobs(kube, ns, "backup")[first]
    template = kit.get(kube, ns, "cronjob", "charterflow-backup")["spec"]["jobTemplate"]["spec"]
    assert (
        job["spec"]["template"]["spec"]["containers"] == template["template"]["spec"]["containers"]
    )
    wait_until(
        lambda: kit.cf(kube, ns)["status"].get("lastBackup", {}).get("job") == first,
        timeout=60,
        what="lastBackup reports the on-demand Job",
    )
    assert kit.cf(kube, ns)["status"]["lastBackup"]["result"] == "Succeeded"
    # The key comes from the pod's termination message (kwok's stage plays the container).
    (pod,) = kit.get(kube, ns, "pod", "-l", f"batch.kubernetes.io/job-name={first}")["items"]
    key = f"kwok/{pod['metadata']['name']}.dump"
    assert kit.cf(kube, ns)["status"]["lastBackup"].get("key") == key

    kit.apply(kube, ns, kit.sample(logLevel="DEBUG"))  # more passes, same token
    operator.restart()
    kit.wait_ready(kube, ns)
    assert on_demand() == {first}

    second = request("t2")
    assert second != first
    assert on_demand() == {first, second}
