"""What every pod shares (children/pods.py): restricted security, pass-through settings."""

from __future__ import annotations

from charterflow_operator import children
from charterflow_operator.children import jobs
from charterflow_operator.instance import CharterFlow, referenced_secret_names

from tests.unit.operator.conftest import SECRETS, deployment, pod_specs, respec


def test_pods_run_restricted(cf: CharterFlow) -> None:
    for pod in pod_specs(cf):
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
        (tmp,) = (v for v in pod["volumes"] if v["name"] == "tmp")
        assert set(tmp["emptyDir"]) == {"sizeLimit"}


def test_pod_settings_pass_through(cf: CharterFlow) -> None:
    changed = respec(
        cf,
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


def test_tmp_is_bounded_per_component_and_configurable(cf: CharterFlow) -> None:
    api_pod, worker_pod, backup_pod = pod_specs(cf)
    assert api_pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]
    assert worker_pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}}]
    assert backup_pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "8Gi"}}]
    changed = respec(cf, api__tmpSizeLimit="3Gi", migrations__tmpSizeLimit="40Gi")
    pod = deployment(changed, "api")["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "3Gi"}}]
    job = jobs.migration_job(changed, "expand", 1)["spec"]["template"]["spec"]
    assert job["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "40Gi"}}]


def test_user_ids_can_be_left_to_the_platform(cf: CharterFlow) -> None:
    changed = respec(cf, securityContext__setUserIds=False)
    for pod in pod_specs(changed):
        security = pod["securityContext"]
        assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(security)
        assert security["runAsNonRoot"] is True
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}


def test_image_digest_pins_the_image_and_keeps_the_version_label(cf: CharterFlow) -> None:
    digest = "sha256:" + "ab" * 32
    changed = respec(cf, image__digest=digest)
    for pod in pod_specs(changed):
        assert pod["containers"][0]["image"] == f"{cf.spec['image']['repository']}@{digest}"
    labels = deployment(changed, "api")["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/version"] == cf.version
    assert changed.migration_job_name("expand") != cf.migration_job_name("expand")


def test_pod_labels_reach_every_pod_but_never_replace_ours(cf: CharterFlow) -> None:
    changed = respec(
        cf,
        podLabels={"azure.workload.identity/use": "true", "app.kubernetes.io/instance": "x"},
    )
    templates = [
        deployment(changed, "api")["spec"]["template"],
        deployment(changed, "worker")["spec"]["template"],
        jobs.migration_job(changed, "expand", 1)["spec"]["template"],
    ]
    for template in templates:
        labels = template["metadata"]["labels"]
        assert labels["azure.workload.identity/use"] == "true"
        assert labels["app.kubernetes.io/instance"] == cf.name


def test_api_and_worker_spread_over_nodes_and_zones_by_instance(cf: CharterFlow) -> None:
    for component in ("api", "worker"):
        pod = deployment(cf, component)["spec"]["template"]["spec"]
        constraints = pod["topologySpreadConstraints"]
        keys = [c["topologyKey"] for c in constraints]
        assert keys == ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
        for constraint in constraints:
            selector = constraint["labelSelector"]["matchLabels"]
            assert selector["app.kubernetes.io/instance"] == cf.name
            assert selector["app.kubernetes.io/component"] == component


def test_tls_ca_bundles_reach_every_pod_and_job(cf: CharterFlow) -> None:
    secure = respec(
        cf,
        database__tls={"caSecretRef": {"name": "db-ca"}},
        redis__tls={"caSecretRef": {"name": "redis-ca", "key": "bundle.pem"}},
    )
    pods = [*pod_specs(secure)]
    pods += [
        j["spec"]["template"]["spec"]
        for j in (
            jobs.migration_job(secure, "expand", 1),
            jobs.restore_job(respec(secure, restore={"from": "latest"}), 1),
            jobs.backup_now_job(secure, "d", "t"),
        )
    ]
    for pod in pods:
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["database-ca"]["secret"]["secretName"] == "db-ca"
        assert volumes["database-ca"]["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
        assert volumes["redis-ca"]["secret"]["items"] == [{"key": "bundle.pem", "path": "ca.crt"}]
        (container,) = pod["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["PGSSLMODE"] == "verify-full"
        assert env["PGSSLROOTCERT"] == "/etc/charterflow/tls/database/ca.crt"
        assert env["REDIS_CA_FILE"] == "/etc/charterflow/tls/redis/ca.crt"
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["database-ca"] == {
            "name": "database-ca",
            "mountPath": "/etc/charterflow/tls/database",
            "readOnly": True,
        }
    # The CA Secrets are watched, checksummed and required like the URL Secrets.
    assert {"db-ca", "redis-ca"} <= referenced_secret_names("x", secure.spec)
    with_ca = {**SECRETS, "db-ca": {"ca.crt": "QQ=="}, "redis-ca": {"bundle.pem": "QQ=="}}
    rotated = {**with_ca, "db-ca": {"ca.crt": "Qg=="}}
    assert children.build(secure, with_ca).digest != children.build(secure, rotated).digest


def test_no_tls_no_ca_mounts(cf: CharterFlow) -> None:
    for pod in pod_specs(cf):
        assert [v["name"] for v in pod["volumes"]] == ["tmp"]
        env = {e["name"] for e in pod["containers"][0]["env"]}
        assert not env & {"PGSSLMODE", "PGSSLROOTCERT", "REDIS_CA_FILE"}
