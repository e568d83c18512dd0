"""The operator against a real API server: children, status, validation, drift, restarts, scale.

The operator runs as its console script (a subprocess; the ``operator`` fixture of conftest.py)
and watches only ``cfop-*`` namespaces, so other suites' operators on the same cluster never
meet it. kwok "runs" the pods, so pod
readiness is simulated; everything else (admission, schema, CEL, SSA, GC) is the real thing.
Waits are for conditions, bounded only so that a broken build fails instead of hanging; the
30 s drift deadline is the requirement itself (the backstop timer alone would take 60 s).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.kit import (
    CHILD_KINDS,
    OPERATOR_PREFIX,
    READY_TIMEOUT,
    KubeHandle,
    OperatorProcess,
    apply,
    apply_secrets,
    cf,
    condition,
    get,
    log_records,
    sample,
    wait_ready,
)
from tests.support.processes import wait_until

PEERINGS = "cfpeer-"


@pytest.fixture
def peers_ns(make_namespace: Callable[..., str]) -> str:
    """A namespace that the module's standalone operator does not watch (not ``cfop-*``), for
    the tests in which only peered replicas may reconcile."""
    return make_namespace(PEERINGS)


STATUS_KINDS = {"Deployment", "PodDisruptionBudget", "CronJob", "HorizontalPodAutoscaler"}


def writes_snapshot(kube: KubeHandle, namespaces: list[str]) -> dict[str, object]:
    """What only a write by the operator changes, per child.

    The resourceVersion, except for kinds whose status Kubernetes controllers keep writing
    (a kwok node heartbeat flips pod readiness, which moves a Deployment's status): for those,
    the spec generation and the time of the operator's own server-side-apply entry.
    """
    snapshot: dict[str, object] = {}
    for ns in namespaces:
        kinds = f"{CHILD_KINDS},secret"
        listed = get(kube, ns, kinds, "-l", "app.kubernetes.io/instance", "--show-managed-fields")
        for item in listed["items"]:
            meta = item["metadata"]
            key = f"{ns}/{item['kind']}/{meta['name']}"
            if item["kind"] not in STATUS_KINDS:
                snapshot[key] = meta["resourceVersion"]
                continue
            ours = [
                entry["time"]
                for entry in meta.get("managedFields", [])
                if entry["manager"] == "charterflow-operator" and entry["operation"] == "Apply"
            ]
            snapshot[key] = (meta["generation"], ours)
    return snapshot


# --- the tests -------------------------------------------------------------------------------


def test_sample_creates_every_child_and_becomes_ready(
    kube: KubeHandle, operator: OperatorProcess, ns: str
) -> None:
    apply_secrets(kube, ns)
    apply(kube, ns, sample())
    body = wait_ready(kube, ns)
    status = body["status"]
    assert status["api"] == {"replicas": 2, "readyReplicas": 2, "ready": "2/2"}
    assert status["worker"] == {"replicas": 1, "readyReplicas": 1, "ready": "1/1"}
    assert status["version"] == "0.1.0"
    for kind in ("Ready", "ApiAvailable", "WorkerAvailable", "BackupScheduled"):
        assert condition(body, kind)["status"] == "True", kind
    assert condition(body, "MigrationsComplete")["reason"] == "Succeeded"

    children = get(kube, ns, CHILD_KINDS + ",secret", "-l", "app.kubernetes.io/instance")
    names = sorted(f"{i['kind']}/{i['metadata']['name']}" for i in children["items"])
    assert names == [
        "ConfigMap/charterflow-config",
        "CronJob/charterflow-backup",
        "Deployment/charterflow-api",
        "Deployment/charterflow-worker",
        "Ingress/charterflow",
        "NetworkPolicy/charterflow-api",
        "NetworkPolicy/charterflow-jobs",
        "NetworkPolicy/charterflow-worker",
        "PodDisruptionBudget/charterflow-api",
        "PodDisruptionBudget/charterflow-worker",
        "Secret/charterflow-jwt",
        "Service/charterflow-api",
        "ServiceAccount/charterflow-app",
    ]
    assert body["metadata"].get("finalizers") is None  # children go by garbage collection
    uid = body["metadata"]["uid"]
    for item in children["items"]:
        if item["kind"] == "Secret":  # the generated JWT Secret outlives the CharterFlow
            assert "ownerReferences" not in item["metadata"]
            continue
        (ref,) = item["metadata"]["ownerReferences"]
        assert (ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (uid, True, True)

    table = kube.kubectl("get", "cf", "-n", ns).stdout.splitlines()
    assert table[0].split() == ["NAME", "VERSION", "PHASE", "API", "WORKERS", "URL", "AGE"]
    assert table[1].split()[:6] == [
        "charterflow",
        "0.1.0",
        "Ready",
        "2/2",
        "1/1",
        "https://charterflow.example.com",
    ]
    events = kube.kubectl("get", "events", "-n", ns, "-o", "json").stdout
    assert "AllComponentsReady" in events


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"api": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 3}}},
            "spec.api.autoscaling.minReplicas",
        ),
        ({"unknownField": True}, "spec.unknownField"),
        ({"backup": {"schedule": "every night"}}, "spec.backup.schedule"),
        ({"backup": {"retentionDays": -1}}, "spec.backup.retentionDays"),
        ({"ingress": {"enabled": True}}, "spec.ingress.host"),
        ({"llm": {"url": "ollama:11434", "model": "llama3.1:8b"}}, "spec.llm.url"),
        ({"llm": {"url": "http://ollama:11434/v1"}}, "spec.llm.model"),
        (
            {"llm": {"url": "http://ollama:11434/v1", "model": "m", "timeoutSeconds": 0}},
            "spec.llm.timeoutSeconds",
        ),
        (
            {"llm": {"url": "http://o:1/v1", "model": "m", "apiKeySecretRef": {"key": "k"}}},
            "spec.llm.apiKeySecretRef.name",
        ),
        (
            {"llm": {"url": "http://o:1/v1", "model": "m", "embeddings": {"url": "http://e/v1"}}},
            "spec.llm.embeddings.model",
        ),
    ],
)
def test_invalid_resources_are_refused(
    kube: KubeHandle, crds: None, ns: str, change: dict[str, Any], field: str
) -> None:
    body = sample()
    body["spec"]["ingress"] = {"enabled": False}
    for key, value in change.items():
        body["spec"][key] = value
    result = kube.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(body), check=False)
    assert result.returncode != 0
    assert field in result.stderr
    assert kube.kubectl("get", "cf", "-n", ns, "-o", "name").stdout.strip() == ""


def test_drift_is_undone(kube: KubeHandle, operator: OperatorProcess, ns: str) -> None:
    apply_secrets(kube, ns)
    apply(kube, ns, sample())
    wait_ready(kube, ns)

    kube.kubectl("scale", "deployment/charterflow-api", "-n", ns, "--replicas=5")
    wait_until(
        lambda: get(kube, ns, "deployment", "charterflow-api")["spec"]["replicas"] == 2,
        timeout=30,
        what="manual scale undone",
    )
    old_uid = get(kube, ns, "service", "charterflow-api")["metadata"]["uid"]
    kube.kubectl("delete", "service", "charterflow-api", "-n", ns)
    wait_until(
        lambda: get(kube, ns, "service", "charterflow-api")["metadata"]["uid"] != old_uid,
        timeout=30,
        what="deleted Service recreated",
    )
    kube.kubectl(
        "patch",
        "configmap",
        "charterflow-config",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"data": {"LOG_LEVEL": "DEBUG"}}',
    )
    wait_until(
        lambda: get(kube, ns, "cm", "charterflow-config")["data"]["LOG_LEVEL"] == "INFO",
        timeout=30,
        what="edited ConfigMap restored",
    )


def api_pods(kube: KubeHandle, ns: str) -> set[str]:
    pods = get(kube, ns, "pods", "-l", "app.kubernetes.io/component=api")["items"]
    return {p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")}


def test_spec_change_rolls_pods_and_keeps_the_jwt_secret(
    kube: KubeHandle, operator: OperatorProcess, ns: str
) -> None:
    apply_secrets(kube, ns)
    apply(kube, ns, sample())
    before = wait_ready(kube, ns)
    jwt = get(kube, ns, "secret", "charterflow-jwt")["data"]
    pods = api_pods(kube, ns)

    apply(kube, ns, sample(logLevel="DEBUG"))
    after = wait_ready(kube, ns)
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert after["status"]["observedGeneration"] == after["metadata"]["generation"]
    assert get(kube, ns, "cm", "charterflow-config")["data"]["LOG_LEVEL"] == "DEBUG"
    wait_until(lambda: not api_pods(kube, ns) & pods, timeout=READY_TIMEOUT, what="pods rolled")

    wait_ready(kube, ns)
    pods = api_pods(kube, ns)  # before the change: its new pods may start at once
    rotated = {"stringData": {"url": "postgresql://u:other@db:5432/charterflow"}}
    kube.kubectl(
        "patch",
        "secret",
        "charterflow-database",
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps(rotated),
    )
    wait_until(lambda: not api_pods(kube, ns) & pods, timeout=READY_TIMEOUT, what="secret rolled")

    operator.restart()
    apply(kube, ns, sample(logLevel="WARNING"))
    wait_ready(kube, ns)
    assert get(kube, ns, "secret", "charterflow-jwt")["data"] == jwt


def test_missing_secret_is_reported_then_picked_up(
    kube: KubeHandle, operator: OperatorProcess, ns: str
) -> None:
    apply(kube, ns, sample())

    def missing() -> bool:
        ready = condition(cf(kube, ns), "Ready")
        return ready.get("reason") == "MissingSecret"

    wait_until(missing, timeout=60, what="MissingSecret reported")
    body = cf(kube, ns)
    assert body["status"]["phase"] == "Degraded"
    assert "charterflow-" in condition(body, "Ready")["message"]
    assert kube.kubectl("get", "deploy", "-n", ns, "-o", "name").stdout.strip() == ""

    apply_secrets(kube, ns)
    wait_ready(kube, ns)


def test_a_refused_child_is_reported_then_retried(
    kube: KubeHandle, operator: OperatorProcess, ns: str
) -> None:
    """A ResourceQuota makes the API server refuse the Services: the CharterFlow says so in its
    Ready condition and the log says so in one line (no traceback). Deleting the quota sends
    the operator no event; its retry with backoff finds out and finishes the job."""
    logged = operator.log_size()
    apply_secrets(kube, ns)
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-services"},
        "spec": {"hard": {"services": "0"}},
    }
    apply(kube, ns, quota)
    apply(kube, ns, sample())

    def refused() -> bool:
        return condition(cf(kube, ns), "Ready").get("reason") == "ApplyFailed"

    wait_until(refused, timeout=60, what="ApplyFailed reported")
    body = cf(kube, ns)
    assert body["status"]["phase"] == "Degraded"
    message = condition(body, "Ready")["message"]
    assert message.startswith("403 Forbidden: "), message
    assert "quota" in message, message
    assert kube.kubectl("get", "deploy", "-n", ns, "-o", "name").stdout.strip() == ""

    kube.kubectl("delete", "resourcequota", "no-services", "-n", ns)
    wait_ready(kube, ns)
    told = [
        record
        for record in log_records(operator.log_since(logged))
        if f"applying children of {ns}/charterflow refused: 403 Forbidden" in record
    ]
    assert told, "the refusal was not logged"
    assert all(record.count("\n") == 1 for record in told), told[0]  # one line, no traceback


def test_paused_changes_nothing(kube: KubeHandle, operator: OperatorProcess, ns: str) -> None:
    apply_secrets(kube, ns)
    apply(kube, ns, sample())
    wait_ready(kube, ns)
    apply(kube, ns, sample(paused=True))
    wait_until(lambda: cf(kube, ns)["status"].get("phase") == "Paused", timeout=60, what="Paused")
    passes = operator.passes()
    apply(kube, ns, sample(paused=True, logLevel="ERROR"))
    wait_until(lambda: operator.passes() > passes, timeout=60, what="a pass over the change")
    assert get(kube, ns, "cm", "charterflow-config")["data"]["LOG_LEVEL"] == "INFO"
    apply(kube, ns, sample(paused=False, logLevel="ERROR"))
    wait_ready(kube, ns)
    assert get(kube, ns, "cm", "charterflow-config")["data"]["LOG_LEVEL"] == "ERROR"


def _delete_and_wait(kube: KubeHandle, ns: str) -> None:
    kube.kubectl("delete", "charterflow", "charterflow", "-n", ns)

    def gone() -> bool:
        left = get(kube, ns, CHILD_KINDS, "-l", "app.kubernetes.io/instance")["items"]
        return not left

    wait_until(gone, timeout=READY_TIMEOUT, what="children garbage-collected")


def test_deleting_removes_children_but_keeps_secrets_and_the_jwt_key(
    kube: KubeHandle, operator: OperatorProcess, ns: str
) -> None:
    apply_secrets(kube, ns)
    apply(kube, ns, sample())
    wait_ready(kube, ns)
    jwt = get(kube, ns, "secret", "charterflow-jwt")["data"]
    _delete_and_wait(kube, ns)
    secrets = {s["metadata"]["name"] for s in get(kube, ns, "secret")["items"]}
    assert {"charterflow-database", "charterflow-redis", "charterflow-s3"} <= secrets
    assert "charterflow-jwt" in secrets  # deletionPolicy Retain (the default)

    apply(kube, ns, sample())  # recreated: the same key, so every session stays valid
    wait_ready(kube, ns)
    assert get(kube, ns, "secret", "charterflow-jwt")["data"] == jwt

    apply(kube, ns, sample(deletionPolicy="Delete"))
    wait_until(
        lambda: get(kube, ns, "secret", "charterflow-jwt")["metadata"].get("ownerReferences"),
        timeout=60,
        what="the JWT Secret owned by the CharterFlow (deletionPolicy Delete)",
    )
    _delete_and_wait(kube, ns)
    wait_until(
        lambda: kube.kubectl("get", "secret", "charterflow-jwt", "-n", ns, check=False).returncode,
        timeout=READY_TIMEOUT,
        what="the JWT Secret deleted with the CharterFlow",
    )


@pytest.mark.parametrize(
    ("name", "accepted"),
    [("a" * 40, True), ("a" * 41, False), ("1charterflow", False), ("char.terflow", False)],
)
def test_names_that_break_child_names_are_refused(
    kube: KubeHandle, crds: None, ns: str, name: str, accepted: bool
) -> None:
    body = yaml.safe_dump(sample(name))
    result = kube.kubectl("apply", "--dry-run=server", "-n", ns, "-f", "-", input=body, check=False)
    assert (result.returncode == 0) == accepted, result.stderr
    if not accepted:
        assert "metadata.name must be at most 40 characters" in result.stderr


def test_a_foreign_object_is_reported_never_adopted(
    kube: KubeHandle, operator: OperatorProcess, ns: str
) -> None:
    kube.kubectl("create", "configmap", "default-config", "-n", ns, "--from-literal=mine=yes")
    apply_secrets(kube, ns)
    apply(kube, ns, sample("default"))  # named like the namespace's ServiceAccount, too

    def conflict() -> bool:
        ready = condition(cf(kube, ns, "default"), "Ready")
        return ready.get("reason") == "NameConflict"

    wait_until(conflict, timeout=60, what="Ready reason NameConflict")
    ready = condition(cf(kube, ns, "default"), "Ready")
    assert "ConfigMap 'default-config'" in ready["message"]
    assert cf(kube, ns, "default")["status"]["phase"] == "Degraded"
    theirs = get(kube, ns, "configmap", "default-config")
    assert theirs["data"] == {"mine": "yes"}
    assert "ownerReferences" not in theirs["metadata"]

    kube.kubectl("delete", "configmap", "default-config", "-n", ns)
    wait_ready(kube, ns, "default")
    account = get(kube, ns, "serviceaccount", "default")
    assert "ownerReferences" not in account["metadata"]  # the namespace's own, untouched
    assert "automountServiceAccountToken" not in account
    pod = get(kube, ns, "deployment", "default-api")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "default-app"


def _replicas_seen(kube: KubeHandle, ns: str, name: str) -> tuple[int, int]:
    found = get(kube, ns, "deployment", name)
    return found["spec"]["replicas"], found["metadata"]["generation"]


def test_toggling_autoscaling_never_lowers_the_replica_count(
    kube: KubeHandle, operator: OperatorProcess, ns: str
) -> None:
    apply_secrets(kube, ns)
    base = sample()["spec"]["api"]
    apply(kube, ns, sample(api={**base, "replicas": 3}))
    wait_ready(kube, ns)
    replicas, generation = _replicas_seen(kube, ns, "charterflow-api")
    assert replicas == 3

    scaled = {**base, "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6}}
    apply(kube, ns, sample(api=scaled))
    wait_until(
        lambda: get(kube, ns, "hpa", "charterflow-api")["spec"]["minReplicas"] == 2,
        timeout=60,
        what="the API's HPA",
    )
    wait_ready(kube, ns)
    passes = operator.passes()
    wait_until(lambda: operator.passes() > passes, timeout=90, what="another pass")
    # The Deployment was never written with fewer replicas: same count, same generation.
    assert _replicas_seen(kube, ns, "charterflow-api") == (3, generation)
    assert cf(kube, ns)["status"]["api"]["readyReplicas"] == 3

    apply(kube, ns, sample(api={**base, "replicas": 3}))  # and off again
    wait_until(
        lambda: kube.kubectl("get", "hpa", "charterflow-api", "-n", ns, check=False).returncode,
        timeout=60,
        what="the HPA pruned",
    )
    wait_ready(kube, ns)
    assert _replicas_seen(kube, ns, "charterflow-api") == (3, generation)


def test_twenty_instances_and_a_quiet_restart(
    kube: KubeHandle, operator: OperatorProcess, make_namespace: Callable[..., str]
) -> None:
    small = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "1"}}
    namespaces = [make_namespace(OPERATOR_PREFIX) for _ in range(4)]
    for ns in namespaces:
        apply_secrets(kube, ns)
        apply(
            kube,
            ns,
            *[
                sample(
                    f"cf{i}",
                    api={"replicas": 2, "resources": small},
                    worker={"replicas": 1, "resources": small},
                )
                for i in range(5)
            ],
        )
    for ns in namespaces:
        for i in range(5):
            wait_ready(kube, ns, f"cf{i}")

    before = writes_snapshot(kube, namespaces)
    assert len(before) == 20 * 13  # 12 children and the generated JWT Secret
    assert all(value[1] for value in before.values() if isinstance(value, tuple))
    operator.restart()
    wait_until(lambda: operator.passes() >= 20, timeout=READY_TIMEOUT, what="resumed all 20")
    assert writes_snapshot(kube, namespaces) == before


@contextlib.contextmanager
def peered_pair(
    kube: KubeHandle, ns: str, tmp_path: Path, **env: str
) -> Iterator[tuple[OperatorProcess, OperatorProcess]]:
    """A leader (priority 100) and a standby (50) in one KopfPeering, both registered in it;
    both stopped afterwards (a stopped one is left alone)."""
    peering = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "cf"}}
    apply(kube, ns, peering)
    env = {"WATCH_NAMESPACES": ns, "OPERATOR_STANDALONE": "", "OPERATOR_PEERING": "cf", **env}
    leader = OperatorProcess(kube.kubeconfig, {**env, "OPERATOR_PRIORITY": "100"}, tmp_path)
    standby = OperatorProcess(kube.kubeconfig, {**env, "OPERATOR_PRIORITY": "50"}, tmp_path)
    leader.start()
    try:
        standby.start()
        try:
            wait_until(
                lambda: len(get(kube, ns, "kopfpeering", "cf").get("status") or {}) == 2,
                timeout=60,
                what="both replicas registered",
            )
            yield leader, standby
        finally:
            standby.stop()
    finally:
        leader.stop()


def test_two_replicas_never_fight(
    kube: KubeHandle, crds: None, peers_ns: str, tmp_path: Path
) -> None:
    """With peering, the lower-priority replica stands by: it makes no reconcile pass at all."""
    with peered_pair(kube, peers_ns, tmp_path) as (leader, standby):
        apply_secrets(kube, peers_ns)
        apply(kube, peers_ns, sample())
        wait_ready(kube, peers_ns)
        apply(kube, peers_ns, sample(logLevel="DEBUG"))  # a second change while both are up
        wait_ready(kube, peers_ns)
        assert leader.passes() > 0
        assert standby.passes() == 0


def test_a_standby_takes_over_when_the_leader_dies(
    kube: KubeHandle, crds: None, peers_ns: str, tmp_path: Path
) -> None:
    """The leader is killed (no clean shutdown): once its peering claim runs out, the standby
    reconciles a change made after the leader died."""
    with peered_pair(kube, peers_ns, tmp_path, OPERATOR_PEERING_LIFETIME="15") as pair:
        leader, standby = pair
        apply_secrets(kube, peers_ns)
        apply(kube, peers_ns, sample())
        wait_ready(kube, peers_ns)
        assert standby.passes() == 0

        leader.kill()
        apply(kube, peers_ns, sample(logLevel="DEBUG"))

        def applied() -> bool:
            config = get(kube, peers_ns, "cm", "charterflow-config")
            return config["data"]["LOG_LEVEL"] == "DEBUG"

        wait_until(applied, timeout=READY_TIMEOUT, what="the standby applies the change")
        wait_ready(kube, peers_ns)
        assert standby.passes() > 0


def test_a_leader_demoted_by_a_later_peer_stops_every_pass(
    kube: KubeHandle, crds: None, peers_ns: str, tmp_path: Path
) -> None:
    """A replica that led alone is demoted when a higher-priority peer starts after it: Kopf
    pauses its watches, and its own backstop loop and work queue make no pass either (a short
    backstop makes the loop ask every few seconds)."""
    peering = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "cf"}}
    apply(kube, peers_ns, peering)
    env = {
        "WATCH_NAMESPACES": peers_ns,
        "OPERATOR_STANDALONE": "",
        "OPERATOR_PEERING": "cf",
        "RESYNC_SECONDS": "2",
    }
    first = OperatorProcess(kube.kubeconfig, {**env, "OPERATOR_PRIORITY": "50"}, tmp_path)
    later = OperatorProcess(kube.kubeconfig, {**env, "OPERATOR_PRIORITY": "100"}, tmp_path)
    with first:
        apply_secrets(kube, peers_ns)
        apply(kube, peers_ns, sample())
        wait_ready(kube, peers_ns)
        base = first.passes()
        wait_until(lambda: first.passes() > base, timeout=60, what="a backstop pass")
        with later:
            wait_until(lambda: later.passes() > 0, timeout=60, what="the later peer leads")
            wait_until(
                lambda: "Pausing operations" in first.log_text(), timeout=60, what="Kopf pauses"
            )
            # A pass that began before the pause (or within leadership.py's cache second) ends
            # while the later peer makes two backstop passes; from then on, none at all.
            led = later.passes()
            wait_until(lambda: later.passes() >= led + 2, timeout=60, what="two backstop passes")
            stopped_at = first.passes()
            led = later.passes()
            wait_until(
                lambda: later.passes() >= led + 3, timeout=60, what="three more backstop passes"
            )
            assert first.passes() == stopped_at


def test_a_snapshot_deletion_backs_up_before_the_children_go(
    kube: KubeHandle, operator: OperatorProcess, ns: str
) -> None:
    apply_secrets(kube, ns)
    apply(kube, ns, sample(deletionPolicy="Snapshot"))
    wait_ready(kube, ns)
    assert cf(kube, ns)["metadata"]["finalizers"] == ["charterflow.app/final-backup"]
    kube.kubectl("delete", "charterflow", "charterflow", "-n", ns, "--wait=false")

    def final_backup() -> list[dict[str, Any]]:
        listed = get(kube, ns, "jobs", "-l", "app.kubernetes.io/component=backup")["items"]
        return [j for j in listed if "-final-backup-" in j["metadata"]["name"]]

    wait_until(final_backup, timeout=60, what="the final backup Job")
    (job,) = final_backup()  # made while the CharterFlow (and so its children) still existed
    (owner,) = job["metadata"]["ownerReferences"]
    assert owner["kind"] == "CharterFlow"

    def gone() -> bool:
        return kube.kubectl("get", "cf", "charterflow", "-n", ns, check=False).returncode != 0

    wait_until(gone, timeout=READY_TIMEOUT, what="the CharterFlow deleted after its backup")
    events = get(kube, ns, "events")["items"]
    assert "FinalBackupSucceeded" in {e["reason"] for e in events}
