"""The test control plane behaves like a real cluster where the operator will rely on it.

Each test exercises a controller or API path that CharterFlow's operator and chart depend on:
Deployments becoming ready on (fake) nodes, CronJobs running Jobs to completion, garbage
collection through ownerReferences, ServiceAccount tokens under RBAC, and HPAs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.kit import KubeHandle
from tests.support.processes import wait_until

pytestmark = pytest.mark.cluster


def _eventually(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    """Poll the API at a pace that does not load it; controllers act within seconds."""
    wait_until(check, timeout=timeout, what=what, interval=0.5)


def _deployment(name: str, replicas: int, spread: bool = False) -> dict[str, Any]:
    """A Deployment pinned to the kwok nodes; ``spread`` asks for one pod per node at most skew."""
    pod_spec: dict[str, Any] = {
        "nodeSelector": {"type": "kwok"},
        "containers": [{"name": "app", "image": "registry.invalid/charterflow/fake:0"}],
    }
    if spread:
        pod_spec["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": name}},
            }
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }


def _ready_replicas(apps: client.AppsV1Api, name: str, namespace: str) -> int:
    return apps.read_namespaced_deployment_status(name, namespace).status.ready_replicas or 0


def test_fake_nodes_are_ready_with_declared_capacity(kube: KubeHandle) -> None:
    nodes = json.loads(kube.kubectl("get", "nodes", "-l", "type=kwok", "-o", "json").stdout)
    assert len(nodes["items"]) >= 2
    for node in nodes["items"]:
        conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        assert conditions["Ready"] == "True", node["metadata"]["name"]
        assert node["status"]["allocatable"]["cpu"] == "32"
        assert node["status"]["allocatable"]["pods"] == "110"


def test_deployment_becomes_ready_spread_over_fake_nodes(kube: KubeHandle, namespace: str) -> None:
    manifest = json.dumps(_deployment("web", replicas=3, spread=True))
    kube.kubectl("apply", "--namespace", namespace, "-f", "-", input=manifest)

    with kube.api_client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        _eventually(lambda: _ready_replicas(apps, "web", namespace) == 3, "3 ready replicas")
        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        kwok_nodes = {n.metadata.name for n in core.list_node(label_selector="type=kwok").items}

    assert len(pods) == 3
    assert all(p.status.phase == "Running" for p in pods)
    placed_on = {p.spec.node_name for p in pods}
    assert placed_on <= kwok_nodes
    assert len(placed_on) >= 2, "the scheduler honoured the spread constraint"


def test_cronjob_runs_a_job_to_completion(kube: KubeHandle, namespace: str) -> None:
    job_pod = client.V1PodSpec(
        restart_policy="Never",
        node_selector={"type": "kwok"},
        containers=[client.V1Container(name="tick", image="registry.invalid/tick:0")],
    )
    cronjob = client.V1CronJob(
        metadata=client.V1ObjectMeta(name="tick"),
        spec=client.V1CronJobSpec(
            schedule="* * * * *",
            concurrency_policy="Forbid",
            job_template=client.V1JobTemplateSpec(
                spec=client.V1JobSpec(
                    backoff_limit=0,
                    template=client.V1PodTemplateSpec(spec=job_pod),
                )
            ),
        ),
    )
    with kube.api_client() as api:
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        batch.create_namespaced_cron_job(namespace, cronjob)

        def succeeded_jobs() -> list[client.V1Job]:
            return [
                job
                for job in batch.list_namespaced_job(namespace).items
                if any(o.kind == "CronJob" for o in job.metadata.owner_references or [])
                and job.status.succeeded == 1
            ]

        # The first run is at the next full minute, then the Job controller and kwok act.
        _eventually(lambda: bool(succeeded_jobs()), "a Job of the CronJob succeeded", 150)
        job = succeeded_jobs()[0]
        pods = core.list_namespaced_pod(
            namespace, label_selector=f"job-name={job.metadata.name}"
        ).items
        _eventually(
            lambda: (
                batch.read_namespaced_cron_job("tick", namespace).status.last_successful_time
                is not None
            ),
            "the CronJob recorded its successful run",
        )

    assert job.metadata.owner_references[0].name == "tick"
    assert [p.status.phase for p in pods] == ["Succeeded"]


def test_deleting_a_deployment_collects_its_replicaset_and_pods(
    kube: KubeHandle, namespace: str
) -> None:
    with kube.api_client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        apps.create_namespaced_deployment(namespace, _deployment("gc", replicas=2))
        _eventually(lambda: _ready_replicas(apps, "gc", namespace) == 2, "2 ready replicas")
        replica_sets = apps.list_namespaced_replica_set(namespace, label_selector="app=gc").items
        assert [rs.metadata.owner_references[0].kind for rs in replica_sets] == ["Deployment"]
        assert len(core.list_namespaced_pod(namespace, label_selector="app=gc").items) == 2

        apps.delete_namespaced_deployment("gc", namespace, propagation_policy="Foreground")

        def collected() -> bool:
            rs_left = apps.list_namespaced_replica_set(namespace, label_selector="app=gc").items
            pods_left = core.list_namespaced_pod(namespace, label_selector="app=gc").items
            deployments = apps.list_namespaced_deployment(namespace).items
            return not rs_left and not pods_left and not deployments

        _eventually(collected, "garbage collection of the ReplicaSet and its pods")

        assert apps.list_namespaced_replica_set(namespace).items == []
        assert core.list_namespaced_pod(namespace, label_selector="app=gc").items == []


def _client_with_token(admin: client.ApiClient, token: str) -> client.ApiClient:
    """A client for the same API server that authenticates with a bearer token only."""
    configuration = client.Configuration()
    configuration.host = admin.configuration.host
    configuration.ssl_ca_cert = admin.configuration.ssl_ca_cert
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)


def test_service_account_token_authenticates_and_rbac_limits_it(
    kube: KubeHandle, namespace: str
) -> None:
    with kube.api_client() as api:
        core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
        core.create_namespaced_service_account(
            namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
        )
        rbac.create_namespaced_role(
            namespace,
            client.V1Role(
                metadata=client.V1ObjectMeta(name="reader"),
                rules=[
                    client.V1PolicyRule(
                        api_groups=[""], resources=["configmaps"], verbs=["get", "list"]
                    )
                ],
            ),
        )
        rbac.create_namespaced_role_binding(
            namespace,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name="reader"),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name="reader"
                ),
                subjects=[
                    client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)
                ],
            ),
        )
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
        )
        token = core.create_namespaced_service_account_token("reader", namespace, request)

        with _client_with_token(api, token.status.token) as as_reader:
            review = client.AuthenticationV1Api(as_reader).create_self_subject_review(
                client.V1SelfSubjectReview()
            )
            reader_core = client.CoreV1Api(as_reader)
            # The authorizer's cache sees the new RoleBinding within moments.
            _eventually(
                lambda: reader_core.list_namespaced_config_map(namespace) is not None,
                "the Role granting configmaps",
                timeout=30,
            )
            with pytest.raises(ApiException) as secrets:
                reader_core.list_namespaced_secret(namespace)
            with pytest.raises(ApiException) as elsewhere:
                reader_core.list_namespaced_config_map("kube-system")

        with _client_with_token(api, "not-a-token") as stranger, pytest.raises(ApiException) as bad:
            client.AuthenticationV1Api(stranger).create_self_subject_review(
                client.V1SelfSubjectReview()
            )

    assert review.status.user_info.username == f"system:serviceaccount:{namespace}:reader"
    assert secrets.value.status == 403
    assert elsewhere.value.status == 403
    assert bad.value.status == 401


def test_hpa_is_accepted_and_enforces_its_minimum(kube: KubeHandle, namespace: str) -> None:
    hpa = client.V2HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name="api"),
        spec=client.V2HorizontalPodAutoscalerSpec(
            scale_target_ref=client.V2CrossVersionObjectReference(
                api_version="apps/v1", kind="Deployment", name="api"
            ),
            min_replicas=2,
            max_replicas=10,
            metrics=[
                client.V2MetricSpec(
                    type="Resource",
                    resource=client.V2ResourceMetricSource(
                        name="cpu",
                        target=client.V2MetricTarget(type="Utilization", average_utilization=70),
                    ),
                )
            ],
        ),
    )
    with kube.api_client() as api:
        apps, autoscaling = client.AppsV1Api(api), client.AutoscalingV2Api(api)
        apps.create_namespaced_deployment(namespace, _deployment("api", replicas=1))
        autoscaling.create_namespaced_horizontal_pod_autoscaler(namespace, hpa)
        stored = autoscaling.read_namespaced_horizontal_pod_autoscaler("api", namespace)

        # No metrics server here, but below minReplicas the HPA controller scales regardless.
        _eventually(
            lambda: apps.read_namespaced_deployment("api", namespace).spec.replicas == 2,
            "the HPA controller raising the Deployment to minReplicas",
        )

        invalid = client.V2HorizontalPodAutoscaler(
            metadata=client.V1ObjectMeta(name="invalid"),
            spec=client.V2HorizontalPodAutoscalerSpec(
                scale_target_ref=hpa.spec.scale_target_ref, min_replicas=5, max_replicas=2
            ),
        )
        with pytest.raises(ApiException) as rejected:
            autoscaling.create_namespaced_horizontal_pod_autoscaler(namespace, invalid)

    assert stored.spec.metrics[0].resource.target.average_utilization == 70
    assert stored.spec.max_replicas == 10
    assert rejected.value.status == 422
