"""The ConfigMap and Secret references (children/config.py): no secret value in the ConfigMap."""

from __future__ import annotations

import copy
from typing import Any

from charterflow_operator import children
from charterflow_operator.children.config import jwt_secret
from charterflow_operator.instance import CharterFlow, referenced_secret_names, with_defaults

from tests.unit.operator.conftest import SECRETS, deployment, everything, pod_templates, respec


def test_secrets_reach_pods_by_reference_only(cf: CharterFlow) -> None:
    config = next(m for m in everything(cf) if m["kind"] == "ConfigMap")["data"]
    for name in ("APP_URL", "S3_BUCKET", "S3_REGION", "S3_ENDPOINT_URL", "MAX_UPLOAD_BYTES"):
        assert name in config
    assert config["PORT"] == "8080"
    assert config["CHARTERFLOW_ENV"] == "production"
    assert config["LOG_FORMAT"] == "json"
    assert not {"DATABASE_URL", "REDIS_URL", "JWT_SECRET", "AWS_SECRET_ACCESS_KEY"} & set(config)
    (container,) = deployment(cf, "api")["spec"]["template"]["spec"]["containers"]
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


def test_a_read_replica_reaches_pods_by_reference_when_given(sample: dict[str, Any]) -> None:
    plain = CharterFlow.from_body(
        {**sample, "metadata": {**sample["metadata"], "namespace": "team-a", "uid": "u-1"}}
    )
    assert "DATABASE_READ_URL" not in _api_env(plain)
    spec = copy.deepcopy(sample["spec"])
    spec["database"]["readUrlSecretRef"] = {"name": "charterflow-database-ro"}
    body = {
        **sample,
        "spec": spec,
        "metadata": {**sample["metadata"], "namespace": "team-a", "uid": "u-1"},
    }
    with_replica = CharterFlow.from_body(body)
    assert _api_env(with_replica)["DATABASE_READ_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "charterflow-database-ro",
        "key": "url",
    }
    ref = next(r for r in with_replica.secret_refs() if r.env == "DATABASE_READ_URL")
    assert ref.field == "spec.database.readUrlSecretRef"  # named when the Secret is missing


def _api_env(cf: CharterFlow) -> dict[str, Any]:
    secrets = {**SECRETS, "charterflow-database-ro": {"url": "cG9zdGdyZXNxbDovL3k="}}
    desired = children.build(cf, secrets)
    (api,) = [
        m
        for m in desired.workloads
        if m["kind"] == "Deployment" and m["metadata"]["name"] == f"{cf.name}-api"
    ]
    (container,) = api["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def test_service_account_is_never_the_namespace_default(cf: CharterFlow) -> None:
    named_default = CharterFlow("default", "team-a", "u-2", cf.spec)
    (account,) = [m for m in everything(named_default) if m["kind"] == "ServiceAccount"]
    assert account["metadata"]["name"] == "default-app"
    pod = deployment(named_default, "api")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "default-app"
    stale = [name for _, kind, name in children.build(named_default, SECRETS).absent]
    assert "default" not in stale  # the namespace's own is never pruned


def test_service_account_annotations_and_an_existing_one(cf: CharterFlow) -> None:
    role = {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/charterflow"}
    annotated = respec(cf, serviceAccount__annotations=role)
    (account,) = [m for m in everything(annotated) if m["kind"] == "ServiceAccount"]
    assert account["metadata"]["annotations"] == role
    assert account["metadata"]["name"] == "charterflow-app"

    existing = respec(cf, serviceAccount__name="workload-identity")
    assert not [m for m in everything(existing) if m["kind"] == "ServiceAccount"]
    for template in pod_templates(existing):
        assert template["spec"]["serviceAccountName"] == "workload-identity"
    absent = children.build(existing, SECRETS).absent
    assert ("v1", "ServiceAccount", "charterflow-app") in absent  # ours, pruned if ours


def test_s3_without_static_keys_uses_the_service_account_identity(cf: CharterFlow) -> None:
    spec = copy.deepcopy(cf.spec)
    del spec["storage"]["s3"]["credentialsSecretRef"]
    spec["serviceAccount"]["annotations"] = {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"}
    ambient = CharterFlow(cf.name, cf.namespace, cf.uid, with_defaults(spec))
    secrets = {k: v for k, v in SECRETS.items() if k != "charterflow-s3"}
    desired = children.build(ambient, secrets)
    for template in pod_templates(ambient):
        names = {e["name"] for e in template["spec"]["containers"][0]["env"]}
        assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & names
    assert "charterflow-s3" not in {r.name for r in ambient.secret_refs()}
    assert desired.digest


def test_env_secrets_are_referenced_checked_and_checksummed(cf: CharterFlow) -> None:
    changed = respec(
        cf,
        api__env=[
            {"name": "LLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "k"}}}
        ],
        worker__envFrom=[{"secretRef": {"name": "extra", "optional": True}}],
    )
    refs = changed.env_secret_refs()
    assert [(r.name, r.key, r.optional) for r in refs] == [
        ("llm", "k", False),
        ("extra", None, True),
    ]
    assert refs[0].field == "spec.api.env[0]"
    assert {"llm", "extra"} <= referenced_secret_names(changed.name, changed.spec)
    base = {**SECRETS, "llm": {"k": "YQ=="}}
    before = children.build(changed, base).digest
    assert children.build(changed, {**base, "llm": {"k": "Yg=="}}).digest != before


def test_generated_jwt_secret_is_owned_by_nothing_unless_policy_is_delete(cf: CharterFlow) -> None:
    kept = jwt_secret(cf, "x")
    assert "ownerReferences" not in kept["metadata"]
    assert kept["metadata"]["labels"]["app.kubernetes.io/instance"] == cf.name
    assert kept["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "charterflow-operator"
    deleted = jwt_secret(respec(cf, deletionPolicy="Delete"), "x")
    assert deleted["metadata"]["ownerReferences"] == [cf.owner_reference()]
