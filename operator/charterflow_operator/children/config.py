"""The instance's ServiceAccount, its non-secret configuration (a ConfigMap), the generated JWT
Secret, and the checksum that rolls the pods when configuration or Secrets change."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from charterflow import contract

from charterflow_operator import api
from charterflow_operator.instance import DELETE, JWT_KEY, CharterFlow, Manifest

UPLOAD_PATH = "/tmp/uploads"  # noqa: S108 - an emptyDir; files go to S3


def service_account(cf: CharterFlow) -> Manifest | None:
    """``<name>-app`` with ``spec.serviceAccount.annotations`` (IRSA's role-arn, GKE Workload
    Identity's gcp-service-account ...); None when ``spec.serviceAccount.name`` names an existing
    one, which the operator neither changes nor deletes."""
    wanted = cf.spec["serviceAccount"]
    if wanted.get("name"):
        return None
    meta = cf.meta(cf.own_service_account_name, "app")
    if wanted.get("annotations"):
        meta["annotations"] = dict(wanted["annotations"])
    return {
        "apiVersion": api.SERVICE_ACCOUNT.api_version,
        "kind": api.SERVICE_ACCOUNT.kind,
        "metadata": meta,
        "automountServiceAccountToken": False,
    }


def config_data(cf: CharterFlow) -> dict[str, str]:
    """The non-secret environment of the application pods (names: ``charterflow.contract``)."""
    spec = cf.spec
    s3 = spec["storage"]["s3"]
    origins = [spec["appUrl"], *spec.get("corsOrigins", [])]
    data = {
        contract.APP_URL: spec["appUrl"],
        contract.CHARTERFLOW_ENV: "production",
        contract.CHARTERFLOW_INSTANCE: cf.name,
        contract.CORS_ORIGINS: ",".join(dict.fromkeys(origins)),
        contract.LOG_FORMAT: "json",
        contract.LOG_LEVEL: spec["logLevel"],
        contract.MAX_UPLOAD_BYTES: str(spec["api"]["maxUploadMiB"] * 1024 * 1024),
        contract.PORT: str(contract.API_PORT),
        contract.S3_BUCKET: s3["bucket"],
        contract.S3_REGION: s3["region"],
        contract.UPLOAD_PATH: UPLOAD_PATH,
        contract.WORKER_HEALTH_PORT: str(contract.DEFAULT_WORKER_HEALTH_PORT),
        contract.METRICS_PORT: str(contract.API_METRICS_PORT),
    }
    if s3.get("endpoint"):
        data[contract.S3_ENDPOINT_URL] = s3["endpoint"]
    data.update(identity_config(spec))
    data.update(model_config(spec))
    return data


def model_config(spec: Mapping[str, Any]) -> dict[str, str]:
    """The model server's and embeddings server's settings (``spec.llm``; their keys come from
    Secrets: ``secret_refs``); none without ``spec.llm``, so answers are extracts."""
    llm, data = spec.get("llm"), {}
    if not llm:
        return data
    data[contract.LLM_URL] = llm["url"]
    data[contract.LLM_MODEL] = llm["model"]
    if llm.get("timeoutSeconds"):
        data[contract.LLM_TIMEOUT_SECONDS] = str(llm["timeoutSeconds"])
    if llm.get("connectTimeoutSeconds"):
        data[contract.LLM_CONNECT_TIMEOUT_SECONDS] = str(llm["connectTimeoutSeconds"])
    if llm.get("maxTokens"):
        data[contract.LLM_MAX_TOKENS] = str(llm["maxTokens"])
    embeddings = llm.get("embeddings")
    if embeddings:
        data[contract.EMBEDDINGS_URL] = embeddings["url"]
        data[contract.EMBEDDINGS_MODEL] = embeddings["model"]
        if embeddings.get("timeoutSeconds"):
            data[contract.EMBEDDINGS_TIMEOUT_SECONDS] = str(embeddings["timeoutSeconds"])
    return data


def identity_config(spec: Mapping[str, Any]) -> dict[str, str]:
    """Sign-in and email settings (their secrets come from Secrets: ``secret_refs``)."""
    auth, data = spec["auth"], {}
    if auth.get("adminEmails"):
        data[contract.ADMIN_EMAILS] = ",".join(auth["adminEmails"])
    data[contract.PASSWORD_LOGIN_ENABLED] = "true" if auth["passwordLogin"] else "false"
    oidc = auth.get("oidc")
    if oidc:
        data[contract.OIDC_ISSUER] = oidc["issuer"]
        data[contract.OIDC_CLIENT_ID] = oidc["clientId"]
        data[contract.OIDC_SCOPES] = oidc["scopes"]
        data[contract.OIDC_NAME_CLAIM] = oidc["nameClaim"]
        data[contract.OIDC_GROUPS_CLAIM] = oidc["groupsClaim"]
        if oidc.get("allowedDomains"):
            data[contract.OIDC_ALLOWED_DOMAINS] = ",".join(oidc["allowedDomains"])
        if oidc.get("adminGroups"):
            data[contract.OIDC_ADMIN_GROUPS] = ",".join(oidc["adminGroups"])
        if oidc.get("displayName"):
            data[contract.OIDC_DISPLAY_NAME] = oidc["displayName"]
    smtp = spec.get("email", {}).get("smtp")
    if smtp:
        data[contract.SMTP_HOST] = smtp["host"]
        data[contract.SMTP_PORT] = str(smtp["port"])
        data[contract.SMTP_STARTTLS] = "true" if smtp["startTLS"] else "false"
        data[contract.SMTP_FROM] = smtp["from"]
    return data


def config_map(cf: CharterFlow) -> Manifest:
    return {
        "apiVersion": api.CONFIG_MAP.api_version,
        "kind": api.CONFIG_MAP.kind,
        "metadata": cf.meta(cf.config_name, "app"),
        "data": config_data(cf),
    }


def jwt_owner_references(cf: CharterFlow) -> list[dict]:
    """Who owns the generated JWT Secret: nobody (it outlives the CharterFlow, so that deleting
    and recreating one keeps every session and API token valid) unless ``deletionPolicy`` is
    Delete, when the CharterFlow does and garbage collection removes it with the rest."""
    return [cf.owner_reference()] if cf.spec["deletionPolicy"] == DELETE else []


def jwt_secret(cf: CharterFlow, value: str) -> Manifest:
    """The generated JWT Secret; created once if absent, never applied again (its labels say
    whose it is: ``kubectl get secret -l app.kubernetes.io/instance=<name>``)."""
    meta = cf.meta(cf.jwt_secret_name, "app", ownerReferences=jwt_owner_references(cf))
    if not meta["ownerReferences"]:
        del meta["ownerReferences"]
    return {
        "apiVersion": api.SECRET.api_version,
        "kind": api.SECRET.kind,
        "metadata": meta,
        "type": "Opaque",
        "stringData": {JWT_KEY: value},
    }


def checksum(config: Mapping[str, str], secrets: Mapping[str, Mapping[str, str]]) -> str:
    """sha256 of the ConfigMap data and the referenced Secrets' data: a change rolls the pods."""
    payload = json.dumps({"config": config, "secrets": secrets}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()
