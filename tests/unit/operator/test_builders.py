"""The desired children, built without a cluster: ownership, security, probes, checksums,
scaling, thread bounds and idempotence."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from charterflow_operator import builders
from charterflow_operator.builders import Owner

from tests.unit.operator.conftest import SECRETS


def everything(owner: Owner) -> list[dict[str, Any]]:
    children = builders.build(owner, SECRETS)
    return children.base + children.workloads


def deployment(owner: Owner, component: str) -> dict[str, Any]:
    name = f"{owner.name}-{component}"
    (found,) = [
        m for m in everything(owner) if m["kind"] == "Deployment" and m["metadata"]["name"] == name
    ]
    return found


def respec(owner: Owner, **changes: Any) -> Owner:
    spec = copy.deepcopy(owner.spec)
    for dotted, value in changes.items():
        target = spec
        *parents, last = dotted.split("__")
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value
    return Owner(owner.name, owner.namespace, owner.uid, builders.with_defaults(spec))


def test_sample_builds_every_child(owner: Owner) -> None:
    kinds = sorted(m["kind"] for m in everything(owner))
    assert kinds == sorted(
        [
            "ServiceAccount",
            "ConfigMap",
            "Service",
            "PodDisruptionBudget",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "NetworkPolicy",
            "Deployment",
            "Deployment",
            "Ingress",
            "CronJob",
        ]
    )


def test_children_are_labelled_and_owned(owner: Owner) -> None:
    for manifest in everything(owner):
        meta = manifest["metadata"]
        assert meta["namespace"] == "team-a"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "charterflow-operator"
        assert meta["labels"]["app.kubernetes.io/instance"] == "charterflow"
        assert meta["labels"]["app.kubernetes.io/version"] == "0.1.0"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "charterflow.app/v1alpha1",
                "kind": "CharterFlow",
                "name": "charterflow",
                "uid": "u-1",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


def test_selectors_leave_out_the_version(owner: Owner) -> None:
    for component in ("api", "worker"):
        selector = deployment(owner, component)["spec"]["selector"]["matchLabels"]
        assert "app.kubernetes.io/version" not in selector
        assert selector["app.kubernetes.io/component"] == component


def pod_specs(owner: Owner) -> list[dict[str, Any]]:
    cron = next(m for m in everything(owner) if m["kind"] == "CronJob")
    return [
        deployment(owner, "api")["spec"]["template"]["spec"],
        deployment(owner, "worker")["spec"]["template"]["spec"],
        cron["spec"]["jobTemplate"]["spec"]["template"]["spec"],
    ]


def test_pods_run_restricted(owner: Owner) -> None:
    for pod in pod_specs(owner):
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = pod["containers"]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]


def test_secrets_reach_pods_by_reference_only(owner: Owner) -> None:
    config = next(m for m in everything(owner) if m["kind"] == "ConfigMap")["data"]
    for name in ("APP_URL", "S3_BUCKET", "S3_REGION", "S3_ENDPOINT_URL", "MAX_UPLOAD_BYTES"):
        assert name in config
    assert config["PORT"] == "8080"
    assert config["CHARTERFLOW_ENV"] == "production"
    assert config["LOG_FORMAT"] == "json"
    assert not {"DATABASE_URL", "REDIS_URL", "JWT_SECRET", "AWS_SECRET_ACCESS_KEY"} & set(config)
    (container,) = deployment(owner, "api")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "charterflow-database",
        "key": "url",
    }
    assert env["JWT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "charterflow-jwt",
        "key": "secret",
    }
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "charterflow-s3"


def test_explicit_jwt_secret_is_used(owner: Owner) -> None:
    mine = respec(owner, auth__jwtSecretRef={"name": "my-jwt", "key": "k"})
    assert builders.referenced_secret_names(mine.name, mine.spec) >= {"my-jwt"}
    assert "charterflow-jwt" not in builders.referenced_secret_names(mine.name, mine.spec)


def test_api_probes_port_and_rollout(owner: Owner) -> None:
    spec = deployment(owner, "api")["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (spread,) = spec["template"]["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    service = next(m for m in everything(owner) if m["kind"] == "Service")
    assert service["spec"]["ports"][0]["port"] == 80


def test_worker_probes_its_health_port(owner: Owner) -> None:
    (container,) = deployment(owner, "worker")["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["charterflow", "worker"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "health"}
    assert container["ports"][0]["containerPort"] == 9191


def digest(owner: Owner, secrets: dict[str, dict[str, str]]) -> str:
    children = builders.build(owner, secrets)
    api = next(m for m in children.workloads if m["metadata"]["name"] == "charterflow-api")
    return api["spec"]["template"]["metadata"]["annotations"][builders.CHECKSUM_ANNOTATION]


def test_checksum_follows_config_and_secret_data(owner: Owner) -> None:
    before = digest(owner, SECRETS)
    assert digest(owner, copy.deepcopy(SECRETS)) == before
    rotated = {**SECRETS, "charterflow-database": {"url": "b3RoZXI="}}
    assert digest(owner, rotated) != before
    assert digest(respec(owner, logLevel="DEBUG"), SECRETS) != before
    assert digest(respec(owner, api__replicas=3), SECRETS) == before  # not configuration


def test_hpa_owns_replicas_when_enabled(owner: Owner) -> None:
    assert deployment(owner, "api")["spec"]["replicas"] == 2
    absent = builders.build(owner, SECRETS).absent
    assert ("autoscaling/v2", "HorizontalPodAutoscaler", "charterflow-api") in absent

    scaled = respec(owner, api__autoscaling={"enabled": True, "minReplicas": 3, "maxReplicas": 9})
    assert "replicas" not in deployment(scaled, "api")["spec"]
    hpa = next(m for m in everything(scaled) if m["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "charterflow-api"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 9)
    metric = hpa["spec"]["metrics"][0]["resource"]["target"]
    assert metric == {"type": "Utilization", "averageUtilization": 70}


@pytest.mark.parametrize(
    ("limits", "requests", "concurrency", "expected"),
    [
        ({"cpu": "2"}, {"cpu": "500m"}, 4, (2, 2)),
        ({"cpu": "1500m"}, {}, 8, (2, 2)),
        ({"cpu": "250m"}, {}, 4, (1, 1)),
        ({"cpu": 3}, {}, 2, (2, 3)),
        ({}, {"cpu": "4"}, 8, (4, 4)),
        ({}, {}, 6, (6, 1)),
    ],
)
def test_threads_are_bounded_by_the_cpu_limit(
    owner: Owner,
    limits: dict[str, Any],
    requests: dict[str, Any],
    concurrency: int,
    expected: tuple[int, int],
) -> None:
    changed = respec(
        owner,
        worker__concurrency=concurrency,
        worker__resources={"limits": limits, "requests": requests},
    )
    (container,) = deployment(changed, "worker")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    threads, blas = expected
    assert env["WORKER_THREADS"] == str(threads)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        assert env[name] == str(blas)


def test_ingress_follows_the_upload_limit(owner: Owner) -> None:
    ingress = next(m for m in everything(owner) if m["kind"] == "Ingress")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == (
        "51m"
    )
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["charterflow.example.com"], "secretName": "charterflow-tls"}
    ]
    bigger = respec(owner, api__maxUploadMiB=200)
    assert builders.body_size(bigger) == "201m"
    config = builders.config_data(bigger)
    assert config["MAX_UPLOAD_BYTES"] == str(200 * 1024 * 1024)
    off = respec(owner, ingress__enabled=False)
    assert ("networking.k8s.io/v1", "Ingress", "charterflow") in builders.build(off, SECRETS).absent


def test_backup_cronjob(owner: Owner) -> None:
    cron = next(m for m in everything(owner) if m["kind"] == "CronJob")["spec"]
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
    off = respec(owner, backup__enabled=False)
    assert ("batch/v1", "CronJob", "charterflow-backup") in builders.build(off, SECRETS).absent


def test_pod_settings_pass_through(owner: Owner) -> None:
    changed = respec(
        owner,
        api__nodeSelector={"pool": "app"},
        api__tolerations=[{"key": "dedicated", "operator": "Exists"}],
        api__priorityClassName="high",
        api__podAnnotations={"sidecar": "off"},
        api__env=[{"name": "LOG_LEVEL", "value": "DEBUG"}],
        api__envFrom=[{"secretRef": {"name": "extra"}}],
        image__pullSecrets=[{"name": "registry"}],
    )
    template = deployment(changed, "api")["spec"]["template"]
    pod = template["spec"]
    assert pod["nodeSelector"] == {"pool": "app"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert pod["priorityClassName"] == "high"
    assert pod["imagePullSecrets"] == [{"name": "registry"}]
    assert template["metadata"]["annotations"]["sidecar"] == "off"
    (container,) = pod["containers"]
    assert container["env"][-1] == {"name": "LOG_LEVEL", "value": "DEBUG"}  # last one wins
    assert container["envFrom"][-1] == {"secretRef": {"name": "extra"}}
    assert "nodeSelector" not in deployment(changed, "worker")["spec"]["template"]["spec"]


def test_building_is_idempotent(owner: Owner) -> None:
    assert builders.build(owner, SECRETS) == builders.build(owner, SECRETS)
    assert builders.with_defaults(owner.spec) == owner.spec


def test_defaults_fill_a_minimal_spec() -> None:
    spec = builders.with_defaults(
        {
            "version": "1.0.0",
            "appUrl": "https://x.example",
            "database": {"urlSecretRef": {"name": "db"}},
            "redis": {"urlSecretRef": {"name": "r"}},
            "storage": {"s3": {"bucket": "b"}},
            "worker": {"resources": {"limits": {"cpu": "3"}}},
        }
    )
    assert spec["database"]["urlSecretRef"] == {"name": "db", "key": "url"}
    assert spec["api"]["replicas"] == 2
    assert spec["worker"]["resources"] == {"limits": {"cpu": "3"}}  # a given map is not merged
    assert "credentialsSecretRef" not in spec["storage"]["s3"]
    assert "jwtSecretRef" not in spec["auth"]
