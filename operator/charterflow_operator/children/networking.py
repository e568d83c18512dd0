"""How traffic reaches the API and leaves the pods: its Service, the optional Ingress, and the
NetworkPolicies (ingress from the ingress controller and monitoring only, egress to DNS and the
dependencies only)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

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


# Components of the run-once Jobs (backup CronJob, on-demand backups, restore, migrations).
JOB_COMPONENTS = ("backup", "restore", "migrate")
DEFAULT_PORTS = {"database": 5432, "redis": 6379}


def _url_port(url: str, default: int) -> int:
    """The port of ``url`` (``default`` when it names none or cannot be read)."""
    try:
        parsed = urlsplit(url)
        port = parsed.port
    except ValueError:  # several hosts (libpq's host1,host2), a malformed port
        return default
    if port:
        return port
    return {"https": 443, "http": 80}.get(parsed.scheme, default)


def _secret_value(secrets: Mapping[str, Mapping[str, str]], name: str, key: str) -> str:
    """A referenced Secret's value, decoded ("" when absent: ports then use the default)."""
    data = secrets.get(name, {}).get(key)
    try:
        return base64.b64decode(data).decode() if data else ""
    except ValueError:
        return ""


def _env_values(cf: CharterFlow, names: tuple[str, ...]) -> list[str]:
    """Literal values of ``names`` in the api's and worker's ``env`` (valueFrom is unknown)."""
    return [
        item["value"]
        for component in ("api", "worker")
        for item in cf.spec[component].get("env", [])
        if item.get("name") in names and item.get("value")
    ]


def dependency_ports(
    cf: CharterFlow, secrets: Mapping[str, Mapping[str, str]]
) -> dict[str, list[int]]:
    """Each dependency's TCP ports, from its URL: the database's and Redis's from their Secrets,
    S3's from ``spec.storage.s3.endpoint`` (else 443), the models' from ``spec.llm.url``,
    ``spec.llm.embeddings.url`` and ``LLM_URL``/``EMBEDDINGS_URL`` literal env values (else
    443). ``egress.<dependency>.ports`` overrides."""
    spec = cf.spec
    derived: dict[str, list[int]] = {}
    for dependency in ("database", "redis"):
        ref = spec[dependency]["urlSecretRef"]
        url = _secret_value(secrets, ref["name"], ref["key"])
        derived[dependency] = [_url_port(url, DEFAULT_PORTS[dependency])]
    endpoint = spec["storage"]["s3"].get("endpoint")
    derived["storage"] = [_url_port(endpoint, 443) if endpoint else 443]
    llm = spec.get("llm") or {}
    models = [
        *(url for url in (llm.get("url"), (llm.get("embeddings") or {}).get("url")) if url),
        *_env_values(cf, (contract.LLM_URL, contract.EMBEDDINGS_URL)),
    ]
    derived["models"] = sorted({_url_port(url, 443) for url in models}) or [443]
    egress = spec["networkPolicy"]["egress"]
    return {
        name: sorted(set(egress.get(name, {}).get("ports") or ports))
        for name, ports in derived.items()
    }


def _rule(peers: list[dict[str, Any]], ports: list[dict[str, Any]]) -> dict[str, Any]:
    """One rule; no peers means any address (the ports still limit it)."""
    rule: dict[str, Any] = {"ports": ports}
    if peers:
        rule = {"to": peers, **rule}
    return rule


def _tcp(ports: list[int]) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def egress_rules(
    cf: CharterFlow, secrets: Mapping[str, Mapping[str, str]], needs: tuple[str, ...]
) -> list[dict[str, Any]]:
    """DNS, then one rule per dependency in ``needs`` (its ``to`` peers, its ports), then
    ``egress.extra`` as given."""
    egress = cf.spec["networkPolicy"]["egress"]
    ports = dependency_ports(cf, secrets)
    dns = [{"protocol": proto, "port": 53} for proto in ("UDP", "TCP")]
    rules = [_rule(egress["dns"], dns)]
    rules += [_rule(egress.get(name, {}).get("to", []), _tcp(ports[name])) for name in needs]
    return [*rules, *egress.get("extra", [])]


def _policy(
    cf: CharterFlow,
    name: str,
    component: str,
    selector: dict[str, Any],
    ingress: list[dict[str, Any]],
    egress: list[dict[str, Any]] | None,
) -> Manifest:
    spec: dict[str, Any] = {
        "podSelector": selector,
        "policyTypes": ["Ingress", "Egress"] if egress is not None else ["Ingress"],
    }
    if ingress:  # none (with policyType Ingress) admits nothing; the API server drops `[]`,
        spec["ingress"] = ingress  # so sending it would make every apply a change
    if egress is not None:
        spec["egress"] = egress
    return {
        "apiVersion": api.NETWORK_POLICY.api_version,
        "kind": api.NETWORK_POLICY.kind,
        "metadata": cf.meta(name, component),
        "spec": spec,
    }


def _from(peers: list[dict[str, Any]], port: int) -> dict[str, Any]:
    """An ingress rule to ``port`` from ``peers`` (none: from anywhere)."""
    rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": port}]}
    if peers:
        rule = {"from": peers, **rule}
    return rule


# The operator's pods (any namespace): they ask an unready pod's /health/ready which dependency
# is down (dependencies.py), on the API's port and the worker's health port.
OPERATOR_PEERS = [
    {
        "namespaceSelector": {},
        "podSelector": {"matchLabels": {api.NAME_LABEL: "charterflow-operator"}},
    }
]


def network_policies(
    cf: CharterFlow, secrets: Mapping[str, Mapping[str, str]]
) -> list[Manifest] | None:
    """The API, worker and Job pods' policies, or None when ``networkPolicy.enabled`` is off.

    Ingress: the API's port from the ingress controller (``ingressFrom``), the metrics ports
    from monitoring (``metricsFrom``), nothing at all to Job pods. Egress (unless
    ``egress.enabled`` is off): DNS and each dependency the pod talks to, on its ports.
    """
    policy = cf.spec["networkPolicy"]
    if not policy["enabled"]:
        return None
    restrict = policy["egress"]["enabled"]

    def egress(needs: tuple[str, ...]) -> list[dict[str, Any]] | None:
        return egress_rules(cf, secrets, needs) if restrict else None

    ingress_from, metrics_from = policy["ingressFrom"], policy["metricsFrom"]
    jobs = {
        "matchLabels": {
            k: v for k, v in cf.selector_labels("backup").items() if k != api.COMPONENT_LABEL
        },
        "matchExpressions": [
            {"key": api.COMPONENT_LABEL, "operator": "In", "values": list(JOB_COMPONENTS)}
        ],
    }
    everything = ("database", "redis", "storage", "models")
    return [
        _policy(
            cf,
            cf.api_name,
            "api",
            {"matchLabels": cf.selector_labels("api")},
            [
                _from(ingress_from, contract.API_PORT),
                _from(metrics_from, contract.API_METRICS_PORT),
                _from(OPERATOR_PEERS, contract.API_PORT),
            ],
            egress(everything),
        ),
        _policy(
            cf,
            cf.worker_name,
            "worker",
            {"matchLabels": cf.selector_labels("worker")},
            [
                _from(metrics_from, contract.DEFAULT_WORKER_HEALTH_PORT),
                _from(OPERATOR_PEERS, contract.DEFAULT_WORKER_HEALTH_PORT),
            ],
            egress(everything),
        ),
        _policy(cf, cf.jobs_name, "backup", jobs, [], egress(("database", "storage"))),
    ]
