"""The Jobs the operator runs (migrations, restore, on-demand backup), built without a cluster:
names that fit and change with the image, the API's environment, restricted pods, ownership,
and limits that keep a stuck Job from holding a rollout forever."""

from __future__ import annotations

import re
from typing import Any

from charterflow_operator import api, children
from charterflow_operator.children import jobs
from charterflow_operator.instance import (
    MAX_JOB_NAME,
    CharterFlow,
)

from tests.unit.operator.conftest import SECRETS, deployment, everything, respec

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def container(job: dict[str, Any]) -> dict[str, Any]:
    (found,) = job["spec"]["template"]["spec"]["containers"]
    return found


def test_migration_job_runs_the_target_image_with_the_apis_environment(cf: CharterFlow) -> None:
    upgraded = respec(cf, version="0.2.0")
    job = jobs.migration_job(upgraded, "expand", 7)
    assert re.fullmatch(r"charterflow-migrate-0-2-0-[0-9a-f]{8}", job["metadata"]["name"])
    assert job["metadata"]["annotations"] == {api.GENERATION_ANNOTATION: "7"}
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migrate"
    assert job["metadata"]["labels"]["app.kubernetes.io/version"] == "0.2.0"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    run = container(job)
    assert run["command"] == ["charterflow", "migrate", "--phase", "expand"]
    assert run["image"] == "ghcr.io/charterflow/charterflow:0.2.0"
    served = container(deployment(upgraded, "api"))
    assert run["env"] == served["env"]
    assert run["envFrom"] == served["envFrom"]
    assert run["securityContext"] == served["securityContext"]
    contract = jobs.migration_job(upgraded, "contract", 7)
    assert contract["metadata"]["name"].startswith("charterflow-contract-0-2-0-")
    assert container(contract)["command"][-1] == "contract"


def test_migration_job_is_bounded_and_kept(cf: CharterFlow) -> None:
    spec = jobs.migration_job(cf, "expand", 1)["spec"]
    assert spec["backoffLimit"] == 1
    assert spec["activeDeadlineSeconds"] == 3600
    assert "ttlSecondsAfterFinished" not in spec  # the finished Job is the record
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert "topologySpreadConstraints" not in pod
    assert container({"spec": spec})["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container({"spec": spec})["resources"] == cf.spec["migrations"]["resources"]


def test_migration_settings_apply(cf: CharterFlow) -> None:
    changed = respec(
        cf,
        migrations__backoffLimit=0,
        migrations__activeDeadlineSeconds=120,
        migrations__podAnnotations={"sidecar.istio.io/inject": "false"},
        api__podAnnotations={"prometheus.io/scrape": "true"},
        api__nodeSelector={"pool": "app"},
    )
    job = jobs.migration_job(changed, "expand", 1)
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"]) == (0, 120)
    template = job["spec"]["template"]
    assert template["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    assert template["spec"]["nodeSelector"] == {"pool": "app"}  # scheduled like the API


def test_job_names_follow_the_image_and_fit_a_label(cf: CharterFlow) -> None:
    name = cf.migration_job_name("expand")
    assert cf.migration_job_name("expand") == name  # stable across passes
    assert respec(cf, version="0.1.1").migration_job_name("expand") != name
    mirrored = respec(cf, image__repository="registry.example/charterflow")
    assert mirrored.migration_job_name("expand") != name
    dotted, dashed = respec(cf, version="1.0"), respec(cf, version="1-0")
    assert dotted.migration_job_name("expand") != dashed.migration_job_name("expand")
    long = CharterFlow("a" * 60 + ".b", cf.namespace, cf.uid, {**cf.spec, "version": "V_9." * 30})
    for phase in ("expand", "contract"):
        made = long.migration_job_name(phase)
        assert len(made) <= MAX_JOB_NAME
        assert NAME.fullmatch(made.replace(".", "-")), made


def test_restore_job_resolves_its_source(cf: CharterFlow) -> None:
    plain = respec(cf, restore={"from": "latest"})
    job = jobs.restore_job(plain, 1)
    assert re.fullmatch(r"charterflow-restore-[0-9a-f]{8}", job["metadata"]["name"])
    assert container(job)["command"] == [
        "charterflow",
        "restore",
        "--from",
        "latest",
        "--name",
        "charterflow",
        "--prefix",
        "backups/",
    ]
    assert "--force" not in container(job)["command"]  # only ever into an empty database
    other = respec(cf, restore={"from": "20260101T030000Z", "name": "prod", "prefix": "b/"})
    command = container(jobs.restore_job(other, 1))["command"]
    assert command[3:] == ["20260101T030000Z", "--name", "prod", "--prefix", "b/"]
    assert other.restore_job_name != plain.restore_job_name


def test_backup_now_job_is_the_cronjobs_job(cf: CharterFlow) -> None:
    desired = children.build(cf, SECRETS)
    cron = next(m for m in desired.workloads if m["kind"] == "CronJob")
    job = jobs.backup_now_job(cf, desired.digest, "t1")
    assert job["spec"] == cron["spec"]["jobTemplate"]["spec"]
    assert job["metadata"]["labels"] == cron["spec"]["jobTemplate"]["metadata"]["labels"]
    assert job["metadata"]["annotations"] == {api.BACKUP_NOW_ANNOTATION: "t1"}
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CharterFlow"
    assert job["metadata"]["name"] == cf.backup_now_job_name("t1")
    assert cf.backup_now_job_name("t2") != job["metadata"]["name"]
    disabled = respec(cf, backup__enabled=False)  # a request is explicit: it still runs
    assert container(jobs.backup_now_job(disabled, "", "t1"))["command"] == [
        "charterflow",
        "backup",
    ]


def test_backup_cronjob(cf: CharterFlow) -> None:
    cron = next(m for m in everything(cf) if m["kind"] == "CronJob")["spec"]
    assert cron["schedule"] == "0 3 * * *"
    assert cron["suspend"] is False
    assert cron["concurrencyPolicy"] == "Forbid"
    assert cron["successfulJobsHistoryLimit"] == 3
    (container,) = cron["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["charterflow", "backup"]
    env = {e["name"]: e for e in container["env"]}
    assert env["BACKUP_RETENTION_DAYS"]["value"] == "7"
    assert "DATABASE_URL" in env
    # The result goes to the termination message (status.lastBackup.key); a failure's is its log.
    assert env["BACKUP_RESULT_FILE"]["value"] == container["terminationMessagePath"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    off = respec(cf, backup__enabled=False)
    assert ("batch/v1", "CronJob", "charterflow-backup") in children.build(off, SECRETS).absent
