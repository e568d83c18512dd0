"""The ConfigMap and Secret references (children/config.py): no secret value in the ConfigMap."""

from __future__ import annotations

import copy
from typing import Any

from charterflow_operator import children
from charterflow_operator.instance import (
    CharterFlow,
)

from tests.unit.operator.conftest import SECRETS, deployment, everything


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
