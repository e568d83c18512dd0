"""The Jobs the operator runs (migrations, restore, on-demand backup), built without a cluster:
names that fit and change with the image, the API's environment, restricted pods, ownership,
and limits that keep a stuck Job from holding a rollout forever."""

from __future__ import annotations

import re
from typing import Any

from charterflow_operator import builders
from charterflow_operator.builders import Owner

from tests.unit.operator.conftest import SECRETS
from tests.unit.operator.test_builders import deployment, respec

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def container(job: dict[str, Any]) -> dict[str, Any]:
    (found,) = job["spec"]["template"]["spec"]["containers"]
    return found


def test_migration_job_runs_the_target_image_with_the_apis_environment(owner: Owner) -> None:
    upgraded = respec(owner, version="0.2.0")
    job = builders.migration_job(upgraded, "expand", 7)
    assert re.fullmatch(r"charterflow-migrate-0-2-0-[0-9a-f]{8}", job["metadata"]["name"])
    assert job["metadata"]["annotations"] == {builders.GENERATION_ANNOTATION: "7"}
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migrate"
    assert job["metadata"]["labels"]["app.kubernetes.io/version"] == "0.2.0"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    run = container(job)
    assert run["command"] == ["charterflow", "migrate", "--phase", "expand"]
    assert run["image"] == "ghcr.io/charterflow/charterflow:0.2.0"
    api = container(deployment(upgraded, "api"))
    assert run["env"] == api["env"]
    assert run["envFrom"] == api["envFrom"]
    assert run["securityContext"] == api["securityContext"]
    contract = builders.migration_job(upgraded, "contract", 7)
    assert contract["metadata"]["name"].startswith("charterflow-contract-0-2-0-")
    assert container(contract)["command"][-1] == "contract"


def test_migration_job_is_bounded_and_kept(owner: Owner) -> None:
    spec = builders.migration_job(owner, "expand", 1)["spec"]
    assert spec["backoffLimit"] == 1
    assert spec["activeDeadlineSeconds"] == 3600
    assert "ttlSecondsAfterFinished" not in spec  # the finished Job is the record
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert "topologySpreadConstraints" not in pod
    assert container({"spec": spec})["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container({"spec": spec})["resources"] == owner.spec["migrations"]["resources"]


def test_migration_settings_apply(owner: Owner) -> None:
    changed = respec(
        owner,
        migrations__backoffLimit=0,
        migrations__activeDeadlineSeconds=120,
        migrations__podAnnotations={"sidecar.istio.io/inject": "false"},
        api__podAnnotations={"prometheus.io/scrape": "true"},
        api__nodeSelector={"pool": "app"},
    )
    job = builders.migration_job(changed, "expand", 1)
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"]) == (0, 120)
    template = job["spec"]["template"]
    assert template["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    assert template["spec"]["nodeSelector"] == {"pool": "app"}  # scheduled like the API


def test_job_names_follow_the_image_and_fit_a_label(owner: Owner) -> None:
    name = builders.migration_job_name(owner, "expand")
    assert builders.migration_job_name(owner, "expand") == name  # stable across passes
    assert builders.migration_job_name(respec(owner, version="0.1.1"), "expand") != name
    mirrored = respec(owner, image__repository="registry.example/charterflow")
    assert builders.migration_job_name(mirrored, "expand") != name
    dotted, dashed = respec(owner, version="1.0"), respec(owner, version="1-0")
    assert builders.migration_job_name(dotted, "expand") != builders.migration_job_name(
        dashed, "expand"
    )
    long = Owner(
        "a" * 60 + ".b", owner.namespace, owner.uid, {**owner.spec, "version": "V_9." * 30}
    )
    for phase in ("expand", "contract"):
        made = builders.migration_job_name(long, phase)
        assert len(made) <= builders.MAX_JOB_NAME
        assert NAME.fullmatch(made.replace(".", "-")), made


def test_restore_job_resolves_its_source(owner: Owner) -> None:
    plain = respec(owner, restore={"from": "latest"})
    job = builders.restore_job(plain, 1)
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
    other = respec(owner, restore={"from": "20260101T030000Z", "name": "prod", "prefix": "b/"})
    command = container(builders.restore_job(other, 1))["command"]
    assert command[3:] == ["20260101T030000Z", "--name", "prod", "--prefix", "b/"]
    assert builders.restore_job_name(other) != builders.restore_job_name(plain)


def test_backup_now_job_is_the_cronjobs_job(owner: Owner) -> None:
    children = builders.build(owner, SECRETS)
    cron = next(m for m in children.workloads if m["kind"] == "CronJob")
    job = builders.backup_now_job(owner, children.digest, "t1")
    assert job["spec"] == cron["spec"]["jobTemplate"]["spec"]
    assert job["metadata"]["labels"] == cron["spec"]["jobTemplate"]["metadata"]["labels"]
    assert job["metadata"]["annotations"] == {builders.BACKUP_NOW_ANNOTATION: "t1"}
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CharterFlow"
    assert job["metadata"]["name"] == builders.backup_now_job_name(owner, "t1")
    assert builders.backup_now_job_name(owner, "t2") != job["metadata"]["name"]
    disabled = respec(owner, backup__enabled=False)  # a request is explicit: it still runs
    assert container(builders.backup_now_job(disabled, "", "t1"))["command"] == [
        "charterflow",
        "backup",
    ]


def test_migration_defaults_without_a_restore(owner: Owner) -> None:
    minimal = builders.with_defaults(
        {
            "version": "1.0.0",
            "appUrl": "https://x.example",
            "database": {"urlSecretRef": {"name": "db"}},
            "redis": {"urlSecretRef": {"name": "r"}},
            "storage": {"s3": {"bucket": "b"}},
        }
    )
    assert minimal["migrations"]["backoffLimit"] == 1
    assert "restore" not in minimal
