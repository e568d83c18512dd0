"""Reconcile passes and the rollout gate on the in-memory Kube: the paths that otherwise only the
e2e tier reaches (a rollout through both migrations, a missing Secret, a refusal and its backoff,
a failed migration, a paused instance, a restore), each in milliseconds."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from charterflow_operator.dependencies import DependencyProbe
from charterflow_operator.reconcile import Reconciler
from charterflow_operator.rollout_gate import RolloutGate
from charterflow_operator.workqueue import Backoff

from tests.unit.operator.conftest import SAMPLE_PATH, SECRETS_PATH
from tests.unit.operator.fake_kube import FakeKube
from tests.unit.operator.test_dependencies import API_DOWN, WORKER_DOWN

NS, NAME = "team-a", "charterflow"
KEY = (NS, NAME)
BACKSTOP = 60.0


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture
def kube() -> FakeKube:
    fake = FakeKube()
    for secret in load(SECRETS_PATH):
        fake.add({**secret, "metadata": {**secret["metadata"], "namespace": NS}})
    (sample,) = load(SAMPLE_PATH)
    fake.add({**sample, "metadata": {**sample["metadata"], "namespace": NS}})
    return fake


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reconciler(kube: FakeKube, clock: Clock) -> Reconciler:
    return Reconciler(kube, Backoff(clock))  # type: ignore[arg-type] - FakeKube is a Kube


def status(kube: FakeKube) -> dict[str, Any]:
    body = kube.find("CharterFlow", NS, NAME)
    assert body is not None
    return dict(body.get("status") or {})


def ready(kube: FakeKube) -> tuple[str, str, str]:
    found = status(kube)
    (condition,) = [c for c in found["conditions"] if c["type"] == "Ready"]
    return found["phase"], condition["reason"], condition["message"]


def jobs(kube: FakeKube) -> list[str]:
    return [name for kind, name in (k.split("/", 1) for k in kube.kinds(NS)) if kind == "Job"]


def change_spec(kube: FakeKube, **spec: Any) -> None:
    body = kube.find("CharterFlow", NS, NAME)
    assert body is not None
    body["spec"].update(copy.deepcopy(spec))
    body["metadata"]["generation"] += 1


def past_expand(kube: FakeKube, reconciler: Reconciler) -> dict[str, Any]:
    """Two passes around a successful expand migration: the API Deployment they made."""
    reconciler.run_pass(KEY)
    (expand,) = jobs(kube)
    kube.finish_job(NS, expand)
    reconciler.run_pass(KEY)
    deployment = kube.find("Deployment", NS, "charterflow-api")
    assert deployment is not None
    return deployment


def test_a_new_instance_migrates_rolls_out_then_contracts(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    reconciler.run_pass(KEY)
    (expand,) = jobs(kube)
    assert expand.startswith("charterflow-migrate-0-1-0-")
    assert kube.find("Deployment", NS, "charterflow-api") is None  # no pod before its schema
    assert ready(kube)[:2] == ("Progressing", "Migrating")
    assert kube.find("Secret", NS, "charterflow-jwt") is not None  # generated once

    kube.finish_job(NS, expand)
    reconciler.run_pass(KEY)
    assert kube.find("Deployment", NS, "charterflow-api") is not None
    assert ready(kube)[:2] == ("Progressing", "RolloutInProgress")
    assert jobs(kube) == [expand]  # contract waits for the rollout

    kube.roll_out(NS)
    reconciler.run_pass(KEY)
    (contract,) = [job for job in jobs(kube) if job != expand]
    assert contract.startswith("charterflow-contract-0-1-0-")
    assert ready(kube)[:2] == ("Progressing", "Migrating")

    kube.finish_job(NS, contract)
    reconciler.run_pass(KEY)
    assert ready(kube)[:2] == ("Ready", "AllComponentsReady")
    assert status(kube)["version"] == "0.1.0"
    assert ("Normal", "AllComponentsReady", "phase Ready: API and workers are up to date") in (
        kube.events
    )
    writes = len(kube.writes)
    reconciler.run_pass(KEY)  # an unchanged world: the status is not written again
    assert [w for w in kube.writes[writes:] if w[0] != "apply"] == []


def test_a_missing_secret_degrades_and_its_arrival_resumes(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    redis = kube.find("Secret", NS, "charterflow-redis")
    assert redis is not None
    kube.delete("v1", "Secret", NS, "charterflow-redis")
    reconciler.run_pass(KEY)
    phase, reason, message = ready(kube)
    assert (phase, reason) == ("Degraded", "MissingSecret")
    assert "'charterflow-redis'" in message
    assert "spec.redis.urlSecretRef" in message
    assert kube.find("ConfigMap", NS, "charterflow-config") is None  # nothing applied
    assert kube.events[-1][:2] == ("Warning", "MissingSecret")

    kube.add(redis)
    reconciler.run_pass(KEY)
    assert ready(kube)[:2] == ("Progressing", "Migrating")


def test_a_refusal_degrades_and_is_retried_with_backoff(
    kube: FakeKube, reconciler: Reconciler, clock: Clock
) -> None:
    kube.refuse("Service", 'services "charterflow-api" is forbidden: exceeded quota')
    reconciler.run_pass(KEY)
    phase, reason, message = ready(kube)
    assert (phase, reason) == ("Degraded", "ApplyFailed")
    assert message == '403 Forbidden: services "charterflow-api" is forbidden: exceeded quota'

    clock.now += 4.9
    assert not reconciler.pass_due(NS, NAME, BACKSTOP)
    clock.now += 0.1
    assert reconciler.pass_due(NS, NAME, BACKSTOP)  # 5 s after the first refusal
    reconciler.run_pass(KEY)
    clock.now += 9.9
    assert not reconciler.pass_due(NS, NAME, BACKSTOP)
    clock.now += 0.1
    assert reconciler.pass_due(NS, NAME, BACKSTOP)  # then 10 s

    kube.refusals.clear()  # the quota was raised
    reconciler.run_pass(KEY)
    assert ready(kube)[:2] == ("Progressing", "Migrating")
    clock.now += BACKSTOP - 0.1
    assert not reconciler.pass_due(NS, NAME, BACKSTOP)  # back to the idle backstop
    clock.now += 0.1
    assert reconciler.pass_due(NS, NAME, BACKSTOP)


def test_a_failed_migration_holds_the_rollout_until_the_spec_changes(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    reconciler.run_pass(KEY)
    (expand,) = jobs(kube)
    kube.finish_job(NS, expand, failed=True)
    reconciler.run_pass(KEY)
    phase, reason, message = ready(kube)
    assert (phase, reason) == ("Degraded", "MigrationFailed")
    assert message.startswith(f"BackoffLimitExceeded: Job {expand} failed")
    assert kube.find("Deployment", NS, "charterflow-api") is None
    reconciler.run_pass(KEY)
    assert jobs(kube) == [expand]  # kept for its logs, not retried on its own

    change_spec(kube, logLevel="DEBUG")
    reconciler.run_pass(KEY)
    assert jobs(kube) == []  # deleted, to run again
    assert status(kube)["conditions"][3]["reason"] == "Retrying"
    reconciler.run_pass(KEY)
    assert jobs(kube) == [expand]


def test_a_paused_instance_is_left_as_it_is(kube: FakeKube, reconciler: Reconciler) -> None:
    change_spec(kube, paused=True)
    reconciler.run_pass(KEY)
    assert ready(kube)[:2] == ("Paused", "Paused")
    assert [w for w in kube.writes if w[0] != "status"] == []
    assert kube.find("Secret", NS, "charterflow-jwt") is None


def test_a_restore_runs_before_the_migrations(kube: FakeKube, reconciler: Reconciler) -> None:
    change_spec(kube, restore={"from": "latest"})
    reconciler.run_pass(KEY)
    (restore,) = jobs(kube)
    assert restore.startswith("charterflow-restore-")
    assert ready(kube)[:2] == ("Progressing", "Restoring")
    kube.finish_job(NS, restore)
    reconciler.run_pass(KEY)
    assert status(kube)["restore"]["job"] == restore
    assert any(job.startswith("charterflow-migrate-") for job in jobs(kube))


def test_a_deleted_instance_is_forgotten(kube: FakeKube, reconciler: Reconciler) -> None:
    kube.delete("charterflow.app/v1alpha1", "CharterFlow", NS, NAME)
    reconciler.run_pass(KEY)
    assert kube.writes == [("delete", "CharterFlow", NAME)]


def test_a_name_held_by_a_foreign_object_is_reported_never_adopted(
    kube: FakeKube, reconciler: Reconciler, clock: Clock
) -> None:
    foreign = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"mine": "yes"}}
    kube.add({**foreign, "metadata": {"name": "charterflow-config", "namespace": NS}})
    reconciler.run_pass(KEY)
    phase, reason, message = ready(kube)
    assert (phase, reason) == ("Degraded", "NameConflict")
    assert "ConfigMap 'charterflow-config'" in message
    found = kube.find("ConfigMap", NS, "charterflow-config")
    assert found is not None
    assert found["data"] == {"mine": "yes"}
    assert "ownerReferences" not in found["metadata"]
    assert ("apply", "ConfigMap", "charterflow-config") not in kube.writes
    clock.now += 5  # its removal sends no event: retried like a refusal, not in a minute
    assert reconciler.pass_due(NS, NAME, BACKSTOP)

    kube.delete("v1", "ConfigMap", NS, "charterflow-config")  # the user moved theirs away
    reconciler.run_pass(KEY)
    assert ready(kube)[:2] == ("Progressing", "Migrating")


def test_env_secrets_are_checked_and_roll_the_pods(kube: FakeKube, reconciler: Reconciler) -> None:
    llm = {"name": "LLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "key"}}}
    body = kube.find("CharterFlow", NS, NAME)
    assert body is not None
    change_spec(kube, api={**body["spec"].get("api", {}), "env": [llm]})
    reconciler.run_pass(KEY)
    phase, reason, message = ready(kube)
    assert (phase, reason) == ("Degraded", "MissingSecret")
    assert "'llm'" in message
    assert "spec.api.env[0]" in message

    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "llm", "namespace": NS}}
    kube.add({**secret, "data": {"key": "YQ=="}})
    before = past_expand(kube, reconciler)
    digest = before["spec"]["template"]["metadata"]["annotations"][
        "charterflow.app/config-checksum"
    ]
    kube.add({**secret, "data": {"key": "Yg=="}})  # rotated
    reconciler.run_pass(KEY)
    after = kube.find("Deployment", NS, "charterflow-api")
    assert after is not None
    assert (
        after["spec"]["template"]["metadata"]["annotations"]["charterflow.app/config-checksum"]
        != digest
    )


def test_generated_jwt_secret_owner_follows_the_deletion_policy(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    reconciler.run_pass(KEY)
    jwt = kube.find("Secret", NS, "charterflow-jwt")
    assert jwt is not None
    assert "ownerReferences" not in jwt["metadata"]  # outlives the CharterFlow
    assert jwt["metadata"]["labels"]["app.kubernetes.io/instance"] == NAME
    value = jwt["data"]

    change_spec(kube, deletionPolicy="Delete")
    reconciler.run_pass(KEY)
    jwt = kube.find("Secret", NS, "charterflow-jwt")
    assert jwt is not None
    (owner,) = jwt["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("CharterFlow", NAME)

    change_spec(kube, deletionPolicy="Retain")
    reconciler.run_pass(KEY)
    jwt = kube.find("Secret", NS, "charterflow-jwt")
    assert jwt is not None
    assert "ownerReferences" not in jwt["metadata"]
    assert jwt["data"] == value  # never rotated


def test_turning_autoscaling_on_hands_the_replica_count_over(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    api_deployment = past_expand(kube, reconciler)
    api_deployment["metadata"]["managedFields"] = [  # as the API server records our apply
        {
            "manager": "charterflow-operator",
            "operation": "Apply",
            "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {}}},
        }
    ]
    body = kube.find("CharterFlow", NS, NAME)
    assert body is not None
    change_spec(kube, api={**body["spec"].get("api", {}), "autoscaling": {"enabled": True}})
    reconciler.run_pass(KEY)
    assert kube.handoffs == [("charterflow-operator-handoff", "Deployment", "charterflow-api")]
    reconciler.run_pass(KEY)  # our apply no longer holds replicas: nothing more to hand over
    assert len(kube.handoffs) == 1


def delete_with_snapshot(kube: FakeKube, reconciler: Reconciler) -> dict[str, Any]:
    """A CharterFlow with deletionPolicy Snapshot, then `kubectl delete`: its body."""
    change_spec(kube, deletionPolicy="Snapshot")
    reconciler.run_pass(KEY)
    body = kube.find("CharterFlow", NS, NAME)
    assert body is not None
    assert body["metadata"]["finalizers"] == ["charterflow.app/final-backup"]
    body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return body


def test_a_snapshot_deletion_waits_for_a_final_backup(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    body = delete_with_snapshot(kube, reconciler)
    reconciler.run_pass(KEY)
    (final,) = [job for job in jobs(kube) if "final-backup" in job]
    assert ready(kube)[:2] == ("Progressing", "FinalBackupRunning")
    assert kube.find("ConfigMap", NS, "charterflow-config") is not None  # the pod needs it

    kube.finish_job(NS, final, failed=True)
    reconciler.run_pass(KEY)
    phase, reason, message = ready(kube)
    assert (phase, reason) == ("Degraded", "FinalBackupFailed")
    assert "spec.deletionPolicy to Retain" in message
    assert body["metadata"]["finalizers"] == ["charterflow.app/final-backup"]

    kube.delete("batch/v1", "Job", NS, final)  # fixed: run it again
    reconciler.run_pass(KEY)
    kube.finish_job(NS, final)
    reconciler.run_pass(KEY)
    assert body["metadata"]["finalizers"] == []  # garbage collection may go on
    assert ("Normal", "FinalBackupSucceeded") in [e[:2] for e in kube.events]


def test_another_policy_lets_a_waiting_deletion_go_on(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    body = delete_with_snapshot(kube, reconciler)
    change_spec(kube, deletionPolicy="Retain")
    reconciler.run_pass(KEY)
    assert body["metadata"]["finalizers"] == []
    assert not [job for job in jobs(kube) if "final-backup" in job]


def test_a_migration_failed_by_a_database_outage_is_retried_without_a_spec_change(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    now = [dt.datetime(2026, 1, 1, 0, 0, 10, tzinfo=dt.UTC)]  # 10 s after the fake Job fails
    reconciler.gate = RolloutGate(kube, clock=lambda: now[0])  # type: ignore[arg-type]
    reconciler.run_pass(KEY)
    (expand,) = jobs(kube)
    kube.finish_job(NS, expand, failed=True)
    said = "charterflow migrate: dependency unavailable: database (OperationalError)"
    terminated = {"terminated": {"finishedAt": "2026-01-01T00:00:00Z", "message": said}}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "status": {"containerStatuses": [{"state": terminated}]},
    }
    labels = {"batch.kubernetes.io/job-name": expand}
    kube.add({**pod, "metadata": {"name": f"{expand}-x", "namespace": NS, "labels": labels}})

    reconciler.run_pass(KEY)
    phase, reason, message = ready(kube)
    assert (phase, reason) == ("Degraded", "DatabaseUnavailable")
    assert "could not reach the database" in message
    assert jobs(kube) == [expand]

    now[0] += dt.timedelta(seconds=30)  # the database may be back: run it again
    reconciler.run_pass(KEY)
    assert jobs(kube) == []
    reconciler.run_pass(KEY)
    assert jobs(kube) == [expand]  # a new Job of the same name, with no spec change
    kube.finish_job(NS, expand)
    reconciler.run_pass(KEY)
    assert kube.find("Deployment", NS, "charterflow-api") is not None


def test_a_migration_that_fails_for_itself_is_not_retried(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    reconciler.run_pass(KEY)
    (expand,) = jobs(kube)
    kube.finish_job(NS, expand, failed=True)
    for _ in range(3):
        reconciler.run_pass(KEY)
    assert ready(kube)[1] == "MigrationFailed"
    assert jobs(kube) == [expand]


def test_an_autoscaled_deployment_scaled_to_zero_by_hand_comes_back_at_the_minimum(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    """The manual restore scales the Deployments to 0 while paused; an HPA never scales up
    from 0, so unpausing brings them back at the HPA's minimum."""
    body = kube.find("CharterFlow", NS, NAME)
    assert body is not None
    scaling = {"enabled": True, "minReplicas": 3, "maxReplicas": 6}
    change_spec(kube, api={**body["spec"].get("api", {}), "autoscaling": scaling})
    api_deployment = past_expand(kube, reconciler)
    api_deployment["spec"]["replicas"] = 0  # kubectl scale --replicas=0
    reconciler.run_pass(KEY)
    assert ("charterflow-operator-handoff", "Deployment", "charterflow-api") in kube.handoffs
    assert api_deployment["spec"]["replicas"] == 3


def make_ready_then_unready(kube: FakeKube, reconciler: Reconciler) -> None:
    """A Ready instance whose pods then all turn unready (as in a dependency outage)."""
    past_expand(kube, reconciler)
    (expand,) = jobs(kube)
    kube.roll_out(NS)
    reconciler.run_pass(KEY)
    (contract,) = [job for job in jobs(kube) if job != expand]
    kube.finish_job(NS, contract)
    reconciler.run_pass(KEY)
    assert ready(kube)[0] == "Ready"
    for name in ("charterflow-api", "charterflow-worker"):
        deployment = kube.find("Deployment", NS, name)
        assert deployment is not None
        deployment["status"]["readyReplicas"] = 0


def unready_pod(name: str, component: str, ip: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/instance": "charterflow", "app.kubernetes.io/component": component}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "False"}],
        },
    }


def test_unready_pods_name_the_dependency_in_status(kube: FakeKube, reconciler: Reconciler) -> None:
    asked: list[str] = []

    def fetch(url: str) -> Mapping[str, Any] | None:
        asked.append(url)
        return API_DOWN if ":8080/" in url else WORKER_DOWN

    reconciler.dependencies = DependencyProbe(kube, fetch)
    make_ready_then_unready(kube, reconciler)
    assert asked == []  # every pod was ready: nobody was asked
    kube.add(unready_pod("charterflow-api-b", "api", "10.0.0.2"))
    kube.add(unready_pod("charterflow-api-a", "api", "10.0.0.1"))
    reconciler.run_pass(KEY)
    phase, reason, message = ready(kube)
    assert (phase, reason) == ("Degraded", "DatabaseUnavailable")
    assert "api pod charterflow-api-a is not ready" in message
    assert asked == ["http://10.0.0.1:8080/health/ready"]


def test_an_unanswered_question_leaves_the_rollout_reason(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    asked: list[str] = []

    def fetch(url: str) -> Mapping[str, Any] | None:
        asked.append(url)
        return None  # no route from the operator to the pod

    reconciler.dependencies = DependencyProbe(kube, fetch)
    make_ready_then_unready(kube, reconciler)
    kube.add(unready_pod("charterflow-worker-a", "worker", "10.0.0.3"))
    reconciler.run_pass(KEY)
    assert asked == ["http://10.0.0.3:9191/health/ready"]
    assert ready(kube)[1] == "RolloutInProgress"


def test_a_snapshot_deletion_in_a_deleted_namespace_does_not_hold_it(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    body = delete_with_snapshot(kube, reconciler)
    kube.refuse("Job", "unable to create new content in namespace because it is being terminated")
    reconciler.run_pass(KEY)
    assert body["metadata"]["finalizers"] == []


def test_a_missing_ca_bundle_degrades_and_its_arrival_mounts_it(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    body = kube.find("CharterFlow", NS, NAME)
    assert body is not None
    body["spec"]["database"]["tls"] = {"caSecretRef": {"name": "db-ca"}}
    reconciler.run_pass(KEY)
    phase, reason, message = ready(kube)
    assert (phase, reason) == ("Degraded", "MissingSecret")
    assert "'db-ca'" in message
    assert "spec.database.tls.caSecretRef" in message

    kube.add(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db-ca", "namespace": NS},
            "data": {"ca.crt": "QQ=="},
        }
    )
    reconciler.run_pass(KEY)
    assert ready(kube)[:2] == ("Progressing", "Migrating")
    config = kube.find("ConfigMap", NS, "charterflow-config")
    assert config is not None


def _monitored(kube: FakeKube) -> None:
    body = kube.find("CharterFlow", NS, NAME)
    assert body is not None
    body["spec"]["monitoring"] = {"enabled": True}


def _roll(kube: FakeKube, reconciler: Reconciler) -> None:
    """Passes until the rollout gate has opened (the expand migration finished)."""
    reconciler.run_pass(KEY)
    (expand,) = jobs(kube)
    kube.finish_job(NS, expand)
    reconciler.run_pass(KEY)
    reconciler.run_pass(KEY)


def test_without_the_crds_one_warning_event_and_nothing_applied(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    _monitored(kube)
    _roll(kube, reconciler)
    warnings = [e for e in kube.events if e[1] == "MonitoringUnavailable"]
    assert len(warnings) == 1
    assert "monitoring.coreos.com" in warnings[0][2]
    assert kube.find("PodMonitor", NS, "charterflow-api") is None
    assert kube.find("Deployment", NS, "charterflow-api") is not None  # the rest goes on


def test_with_the_crds_applied_and_pruned_when_turned_off(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    kube.served = {"PodMonitor", "PrometheusRule"}
    _monitored(kube)
    _roll(kube, reconciler)
    for kind, name in (
        ("PodMonitor", "charterflow-api"),
        ("PodMonitor", "charterflow-worker"),
        ("PrometheusRule", "charterflow"),
    ):
        assert kube.find(kind, NS, name) is not None, (kind, name)
    body = kube.find("CharterFlow", NS, NAME)
    assert body is not None
    body["spec"]["monitoring"]["enabled"] = False
    reconciler.run_pass(KEY)
    assert kube.find("PodMonitor", NS, "charterflow-api") is None
    assert kube.find("PrometheusRule", NS, "charterflow") is None
