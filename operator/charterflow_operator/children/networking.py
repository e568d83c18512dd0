"""How traffic reaches the API: its Service, the optional Ingress, and the NetworkPolicies that
admit only each component's own port."""

from __future__ import annotations

from typing import Any

from charterflow import contract

from charterflow_operator import api
from charterflow_operator.instance import CharterFlow, Manifest

SERVICE_PORT = 80


def api_service(cf: CharterFlow) -> Manifest:
    return {
        "apiVersion": api.SERVICE.api_version,
        "kind": api.SERVICE.kind,
        "metadata": cf.meta(cf.api_name, "api"),
        "spec": {
            "type": "ClusterIP",
            "selector": cf.selector_labels("api"),
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def body_size(cf: CharterFlow) -> str:
    """The ingress body-size limit: the app's upload limit plus 1 MiB for multipart overhead."""
    return f"{cf.spec['api']['maxUploadMiB'] + 1}m"


def ingress(cf: CharterFlow) -> Manifest | None:
    """The Ingress to the API Service, or None when disabled (then it is pruned)."""
    spec = cf.spec["ingress"]
    if not spec["enabled"]:
        return None
    backend = {"service": {"name": cf.api_name, "port": {"name": "http"}}}
    path = {"path": spec["path"], "pathType": "Prefix", "backend": backend}
    body: dict[str, Any] = {"rules": [{"host": spec["host"], "http": {"paths": [path]}}]}
    if spec.get("className"):
        body = {"ingressClassName": spec["className"], **body}
    if spec.get("tls"):
        body["tls"] = [{"hosts": [spec["host"]], "secretName": spec["tls"]["secretName"]}]
    annotations = {**spec.get("annotations", {}), api.BODY_SIZE_ANNOTATION: body_size(cf)}
    return {
        "apiVersion": api.INGRESS.api_version,
        "kind": api.INGRESS.kind,
        "metadata": cf.meta(cf.name, "api", annotations=annotations),
        "spec": body,
    }


def network_policy(cf: CharterFlow, component: str) -> Manifest:
    """API pods accept traffic on their port; workers only on their health port."""
    port = contract.API_PORT if component == "api" else contract.DEFAULT_WORKER_HEALTH_PORT
    return {
        "apiVersion": api.NETWORK_POLICY.api_version,
        "kind": api.NETWORK_POLICY.kind,
        "metadata": cf.meta(cf.component_name(component), component),
        "spec": {
            "podSelector": {"matchLabels": cf.selector_labels(component)},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": port}]}],
        },
    }
