"""CharterFlow on real pods: the chart's operator in a pod, one CharterFlow whose pods really run.

One operator and one CharterFlow serve every test of this module, in order (each step builds on
the last, as an administrator's first hour would): install, Ready through real probes, the
application through its ClusterIP, a backup in a pod.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.ingest import samples
from tests.realnode.conftest import RealCluster
from tests.realnode.load import Load
from tests.support import node as real_node
from tests.support.cluster import REPO
from tests.support.processes import wait_until

CHART = REPO / "charts" / "charterflow-operator"
CRDS = REPO / "crds"
RELEASE = "cf"
NAME = "charterflow"
READY_TIMEOUT = 300


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in body.get("status", {}).get("conditions", []) if c["type"] == kind), {})


@pytest.fixture(scope="module")
def operator(real: RealCluster, real_images: dict[str, str]) -> Iterator[str]:
    """``helm install`` of the chart with the built operator image; yields its namespace."""
    for path in sorted(CRDS.glob("*.yaml")):
        real.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    namespace = real.namespace("cf-system")
    repository, tag = real_images["charterflow-operator"].rsplit(":", 1)
    began = time.monotonic()
    real.helm(
        "install", RELEASE, str(CHART), "--namespace", namespace,
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
        "--set", "image.pullPolicy=IfNotPresent", "--set", "logLevel=DEBUG",
        "--set", "crds.install=false",  # applied above, outside any release
        "--wait", "--timeout", "180s",
    )  # fmt: skip
    real.timings["helm_install_operator_ready_s"] = round(time.monotonic() - began, 1)
    try:
        yield namespace
    finally:
        real.helm("uninstall", RELEASE, "--namespace", namespace, check=False)
        real.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture(scope="module")
def app(
    real: RealCluster, operator: str, real_images: dict[str, str], node_services: dict[str, str]
) -> Iterator[str]:
    """One CharterFlow pointed at the host's PostgreSQL, Redis and S3; yields its namespace."""
    namespace = real.namespace("cf-app")
    secrets = [
        _secret(namespace, "charterflow-database", {"url": node_services["DATABASE_URL"]}),
        _secret(namespace, "charterflow-redis", {"url": node_services["REDIS_URL"]}),
        _secret(
            namespace,
            "charterflow-s3",
            {
                "AWS_ACCESS_KEY_ID": node_services["AWS_ACCESS_KEY_ID"],
                "AWS_SECRET_ACCESS_KEY": node_services["AWS_SECRET_ACCESS_KEY"],
            },
        ),
    ]
    repository, version = real_images["charterflow"].rsplit(":", 1)
    resource = {
        "apiVersion": "charterflow.app/v1alpha1",
        "kind": "CharterFlow",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": {
            "version": version,
            "image": {"repository": repository, "pullPolicy": "IfNotPresent"},
            "appUrl": "http://charterflow.local",
            "database": {"urlSecretRef": {"name": "charterflow-database"}},
            "redis": {"urlSecretRef": {"name": "charterflow-redis"}},
            "storage": {
                "s3": {
                    "bucket": node_services["S3_BUCKET"],
                    "endpoint": node_services["S3_ENDPOINT_URL"],
                    "credentialsSecretRef": {"name": "charterflow-s3"},
                }
            },
        },
    }
    began = time.monotonic()
    real.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [*secrets, resource]}),
    )
    wait_ready(real, namespace)
    real.timings["charterflow_ready_s"] = round(time.monotonic() - began, 1)
    try:
        yield namespace
    finally:
        real.kubectl("-n", namespace, "delete", "charterflow", NAME, "--wait=false", check=False)
        real.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _secret(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def wait_ready(real: RealCluster, namespace: str, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def ready() -> bool:
        seen.update(real.get("-n", namespace, "charterflow", NAME))
        status = seen.get("status") or {}
        return (
            status.get("phase") == "Ready"
            and status.get("observedGeneration") == seen["metadata"]["generation"]
        )

    try:
        wait_until(ready, timeout, f"CharterFlow {namespace}/{NAME}", interval=1)
    except TimeoutError as exc:
        pods = real.kubectl("-n", namespace, "get", "pods,jobs", "-o", "wide", check=False)
        events = real.kubectl(
            "-n", namespace, "get", "events", "--sort-by=.lastTimestamp", check=False
        )
        raise AssertionError(
            f"{exc}; status: {json.dumps(seen.get('status'))}\n{pods}\n{events[-3000:]}"
        ) from None
    return seen


def api_url(real: RealCluster, namespace: str) -> str:
    """The API Service's ClusterIP: answered from this host through kube-proxy's rules."""
    service = real.get("-n", namespace, "service", f"{NAME}-api")["spec"]
    return f"http://{service['clusterIP']}:{service['ports'][0]['port']}"


def test_operator_runs_in_a_pod_as_the_charts_service_account(
    real: RealCluster, operator: str
) -> None:
    pods = real.get("-n", operator, "pods")["items"]
    assert len(pods) == 1
    pod = pods[0]
    assert pod["spec"]["nodeName"] == real_node.NODE_NAME or real.node is None
    assert pod["spec"]["serviceAccountName"] == f"{RELEASE}-charterflow-operator"
    assert pod["status"]["containerStatuses"][0]["ready"] is True
    assert pod["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")


def test_charterflow_becomes_ready_through_real_probes(real: RealCluster, app: str) -> None:
    """The migration Job ran in a pod; every API and worker pod passed its readiness probe."""
    jobs = real.get("-n", app, "jobs")["items"]
    migrations = [j for j in jobs if j["status"].get("succeeded")]
    assert migrations, [j["metadata"]["name"] for j in jobs]
    pods = real.get("-n", app, "pods", "-l", "app.kubernetes.io/component in (api,worker)")["items"]
    assert len(pods) >= 3
    for pod in pods:
        assert pod["spec"]["nodeName"] == real_node.NODE_NAME or real.node is None
        assert condition(pod, "Ready").get("status") == "True", pod["metadata"]["name"]
        container = pod["spec"]["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["spec"]["securityContext"]["runAsUser"] == 10001
    ready = httpx.get(api_url(real, app) + "/health/ready", timeout=10)
    assert ready.status_code == 200, ready.text


def test_register_upload_ingest_and_answer_through_the_service(
    real: RealCluster, app: str, tmp_path: Path
) -> None:
    base = api_url(real, app)
    with httpx.Client(base_url=base + "/api/v1", timeout=30) as http:
        email = f"admin-{uuid.uuid4().hex[:6]}@example.com"
        registered = http.post(
            "/auth/register", json={"email": email, "password": "a-long-password-1", "name": "Ada"}
        )
        assert registered.status_code == 201, registered.text
        http.headers["Authorization"] = f"Bearer {registered.json()['access_token']}"
        notebook = http.post("/notebooks", json={"title": "Pumps", "description": ""}).json()
        pdf = samples.pdf(
            ["The pump room valve must be inspected every 90 days by the duty engineer."]
        )
        upload = http.post(
            f"/notebooks/{notebook['id']}/documents",
            files={"file": ("valves.pdf", pdf, "application/pdf")},
        )
        assert upload.status_code == 202, upload.text
        document = upload.json()

        def ingested() -> bool:
            status = http.get(f"/documents/{document['id']}").json()["status"]
            assert status != "failed"
            return status == "ready"

        wait_until(ingested, 120, "document ingested by the worker pod", interval=1)
        answer = http.post(
            f"/notebooks/{notebook['id']}/ask",
            json={"question": "How often is the pump room valve inspected?"},
        )
        assert answer.status_code == 200, answer.text
        assert any(c["document_id"] == document["id"] for c in answer.json()["citations"])
    sign_in = httpx.get(base + "/login", timeout=10, follow_redirects=True)
    assert sign_in.status_code == 200
    assert "<form" in sign_in.text.lower()


def test_backup_now_runs_a_backup_pod_that_writes_dump_and_manifest_to_s3(
    real: RealCluster, app: str, node_services: dict[str, str]
) -> None:
    real.kubectl(
        "-n",
        app,
        "annotate",
        "charterflow",
        NAME,
        f"charterflow.app/backup-now={uuid.uuid4().hex[:8]}",
        "--overwrite",
    )
    seen: dict[str, Any] = {}

    def backed_up() -> bool:
        seen.update(real.get("-n", app, "charterflow", NAME))
        last = (seen.get("status") or {}).get("lastBackup") or {}
        return bool(last.get("key"))

    wait_until(backed_up, 240, "status.lastBackup", interval=2)
    key = seen["status"]["lastBackup"]["key"]
    s3 = boto3.client(
        "s3",
        endpoint_url=node_services["S3_ENDPOINT_URL"],
        aws_access_key_id=node_services["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=node_services["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=node_services["S3_BUCKET"]).get("Contents", [])
    ]
    assert key.endswith(".dump")
    assert {key, key.removesuffix(".dump") + ".json"} <= set(keys), (key, keys)


@pytest.fixture(scope="module")
def token(real: RealCluster, app: str) -> str:
    """A signed-in user's bearer token (the load asks for ``/auth/me``: API and database)."""
    email = f"load-{uuid.uuid4().hex[:6]}@example.com"
    body = {"email": email, "password": "a-long-password-1", "name": "Load"}
    registered = httpx.post(api_url(real, app) + "/api/v1/auth/register", json=body, timeout=30)
    assert registered.status_code == 201, registered.text
    return str(registered.json()["access_token"])


def _load(real: RealCluster, app: str, token: str) -> Load:
    """About 6 requests/s: under the API's default rate limits (600/min per client and user)."""
    url = api_url(real, app) + "/api/v1/auth/me"
    return Load(url, {"Authorization": f"Bearer {token}"}, threads=2, pause=0.3)


def _api_pods(real: RealCluster, app: str) -> list[dict[str, Any]]:
    selector = "app.kubernetes.io/component=api"
    return list(real.get("-n", app, "pods", "-l", selector)["items"])


def test_version_bump_migrates_and_rolls_the_api_with_zero_failed_requests(
    real: RealCluster, app: str, token: str, real_images: dict[str, str]
) -> None:
    """A second tag of the same image: the migration Job runs it, then the API rolls over."""
    repository, version = real_images["charterflow"].rsplit(":", 1)
    bumped = f"{version}-bump"
    real.tag_image(real_images["charterflow"], f"{repository}:{bumped}")
    before = {p["metadata"]["name"] for p in _api_pods(real, app)}
    patch = json.dumps({"spec": {"version": bumped}})
    with _load(real, app, token) as load:
        time.sleep(3)
        real.kubectl("-n", app, "patch", "charterflow", NAME, "--type=merge", "-p", patch)
        body = wait_ready(real, app)
        time.sleep(3)
    real.timings["rolling_update_requests"] = load.ok + load.failed
    real.timings["rolling_update_failed_requests"] = load.failed
    assert body["status"].get("version", bumped) == bumped
    jobs = real.get("-n", app, "jobs")["items"]
    images = {
        j["spec"]["template"]["spec"]["containers"][0]["image"]
        for j in jobs
        if j["status"].get("succeeded")
    }
    assert f"{repository}:{bumped}" in images
    after = _api_pods(real, app)
    assert not before & {p["metadata"]["name"] for p in after}
    assert all(p["spec"]["containers"][0]["image"].endswith(bumped) for p in after)
    assert load.ok > 50
    assert load.failed == 0, (dict(load.failures), load.errors)


def test_deleting_an_api_pod_fails_no_request(real: RealCluster, app: str, token: str) -> None:
    victim = _api_pods(real, app)[0]["metadata"]["name"]
    with _load(real, app, token) as load:
        time.sleep(3)
        real.kubectl("-n", app, "delete", "pod", victim, "--wait=true", "--timeout=120s")
        wait_until(
            lambda: (
                sum(condition(p, "Ready").get("status") == "True" for p in _api_pods(real, app))
                >= 2
            ),
            120,
            "API back to two ready pods",
        )
        time.sleep(3)
    real.timings["pod_deletion_requests"] = load.ok + load.failed
    real.timings["pod_deletion_failed_requests"] = load.failed
    assert load.ok > 30
    assert load.failed == 0, (dict(load.failures), load.errors)


def _hpa(real: RealCluster, app: str) -> dict[str, Any]:
    return real.get("-n", app, "hpa", f"{NAME}-api")


def test_api_hpa_scales_out_under_cpu_load_and_back_in(
    real: RealCluster, app: str, token: str
) -> None:
    """metrics-server reads the pods' real CPU from the kubelet; the HPA adds a replica under
    load and removes it once the load stops (the test cluster's stabilisation is 30 s)."""
    spec = {
        "api": {
            "autoscaling": {
                "enabled": True,
                "minReplicas": 2,
                "maxReplicas": 3,
                "targetCPUUtilizationPercentage": 50,
            },
            "resources": {
                "requests": {"cpu": "50m", "memory": "128Mi"},
                "limits": {"memory": "512Mi"},
            },
        }
    }
    real.kubectl(
        "-n", app, "patch", "charterflow", NAME, "--type=merge", "-p", json.dumps({"spec": spec})
    )
    wait_ready(real, app)
    wait_until(
        lambda: _hpa(real, app).get("status", {}).get("currentMetrics") is not None,
        120,
        "the HPA reads CPU metrics",
        interval=2,
    )
    with Load(
        api_url(real, app) + "/api/v1/auth/me",
        {"Authorization": f"Bearer {token}"},
        threads=4,
        pause=0.0,
    ):
        began = time.monotonic()
        wait_until(
            lambda: _hpa(real, app)["status"].get("desiredReplicas", 0) >= 3,
            180,
            "the HPA scales out",
            interval=2,
        )
        real.timings["hpa_scale_out_s"] = round(time.monotonic() - began, 1)
    began = time.monotonic()
    wait_until(
        lambda: _hpa(real, app)["status"].get("desiredReplicas", 0) == 2,
        240,
        "the HPA scales back in",
        interval=2,
    )
    real.timings["hpa_scale_in_s"] = round(time.monotonic() - began, 1)
