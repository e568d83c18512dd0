"""The ConfigMap and Secret references (children/config.py): no secret value in the ConfigMap."""

from __future__ import annotations

from charterflow_operator.instance import (
    CharterFlow,
)

from tests.unit.operator.conftest import deployment, everything


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
