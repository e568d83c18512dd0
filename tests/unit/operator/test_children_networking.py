"""Service, Ingress, NetworkPolicies (children/networking.py): the body-size limit, the metrics
port kept off both, ingress from the controller and monitoring only, egress to the dependencies."""

from __future__ import annotations

import base64
from typing import Any

from charterflow_operator import children
from charterflow_operator.children import networking
from charterflow_operator.children.config import config_data
from charterflow_operator.instance import (
    CharterFlow,
)

from tests.unit.operator.conftest import SECRETS, everything, respec

NS = "kubernetes.io/metadata.name"


def test_ingress_follows_the_upload_limit(cf: CharterFlow) -> None:
    ingress = next(m for m in everything(cf) if m["kind"] == "Ingress")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == (
        "51m"
    )
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["charterflow.example.com"], "secretName": "charterflow-tls"}
    ]
    bigger = respec(cf, api__maxUploadMiB=200)
    assert networking.body_size(bigger) == "201m"
    config = config_data(bigger)
    assert config["MAX_UPLOAD_BYTES"] == str(200 * 1024 * 1024)
    off = respec(cf, ingress__enabled=False)
    assert ("networking.k8s.io/v1", "Ingress", "charterflow") in children.build(off, SECRETS).absent


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def policies(cf: CharterFlow, secrets: dict | None = None) -> dict[str, dict[str, Any]]:
    built = children.build(cf, secrets or SECRETS)
    return {m["metadata"]["name"]: m["spec"] for m in built.base if m["kind"] == "NetworkPolicy"}


def _ports(rule: dict[str, Any]) -> list[int]:
    return [p["port"] for p in rule["ports"]]


def test_ingress_comes_only_from_the_ingress_controller_and_monitoring(cf: CharterFlow) -> None:
    found = policies(cf)
    api, worker, jobs = (
        found["charterflow-api"],
        found["charterflow-worker"],
        found["charterflow-jobs"],
    )
    controller = {"namespaceSelector": {"matchLabels": {NS: "ingress-nginx"}}}
    monitoring = {"namespaceSelector": {"matchLabels": {NS: "monitoring"}}}
    operator = {
        "namespaceSelector": {},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "charterflow-operator"}},
    }
    assert api["ingress"] == [
        {"from": [controller], "ports": [{"protocol": "TCP", "port": 8080}]},
        {"from": [monitoring], "ports": [{"protocol": "TCP", "port": 9090}]},
        {"from": [operator], "ports": [{"protocol": "TCP", "port": 8080}]},  # its readiness
    ]
    assert worker["ingress"] == [
        {"from": [monitoring], "ports": [{"protocol": "TCP", "port": 9191}]},
        {"from": [operator], "ports": [{"protocol": "TCP", "port": 9191}]},
    ]
    assert "ingress" not in jobs  # nothing connects to a backup, restore or migration pod
    # The Job policy selects every Job's pods and none of the Deployments'.
    selector = jobs["podSelector"]
    assert selector["matchExpressions"][0]["values"] == ["backup", "restore", "migrate"]
    assert "app.kubernetes.io/component" not in selector["matchLabels"]
    for spec in found.values():
        assert spec["policyTypes"] == ["Ingress", "Egress"]


def test_egress_goes_to_dns_and_each_dependency_on_its_urls_port(cf: CharterFlow) -> None:
    secrets = {
        **SECRETS,
        "charterflow-database": {"url": _b64("postgresql://u:p@db.example:6432/cf")},
        "charterflow-redis": {"url": _b64("rediss://cache.example:6380/0")},
    }
    with_models = respec(
        cf,
        storage__s3__endpoint="http://minio.storage:9000",
        api__env=[{"name": "LLM_URL", "value": "http://llm.models:8000/v1/chat/completions"}],
    )
    found = policies(with_models, secrets)
    dns, *rest = found["charterflow-api"]["egress"]
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    # database, redis, storage, models: ports from their URLs, any address (no `to`).
    assert [_ports(rule) for rule in rest] == [[6432], [6380], [9000], [8000]]
    assert all("to" not in rule for rule in rest)
    # Job pods need only the database and S3.
    assert [_ports(rule) for rule in found["charterflow-jobs"]["egress"][1:]] == [[6432], [9000]]


def test_egress_defaults_destinations_and_extra_rules(cf: CharterFlow) -> None:
    found = policies(cf)  # SECRETS' URLs name no port; the sample's MinIO; no model URL
    ports = [_ports(r) for r in found["charterflow-worker"]["egress"][1:]]
    assert ports == [[5432], [6379], [9000], [443]]
    aws = policies(respec(cf, storage__s3__endpoint=None))["charterflow-worker"]["egress"]
    assert _ports(aws[3]) == [443]
    cidr = [{"ipBlock": {"cidr": "10.20.0.0/16"}}]
    smtp = {"to": [{"ipBlock": {"cidr": "192.0.2.25/32"}}], "ports": [{"port": 587}]}
    narrowed = respec(
        cf,
        networkPolicy__egress__database={"to": cidr, "ports": [5433]},
        networkPolicy__egress__extra=[smtp],
    )
    egress = policies(narrowed)["charterflow-api"]["egress"]
    assert egress[1] == {"to": cidr, "ports": [{"protocol": "TCP", "port": 5433}]}
    assert egress[-1] == smtp


def test_switches_turn_egress_or_every_policy_off(cf: CharterFlow) -> None:
    open_egress = policies(respec(cf, networkPolicy__egress__enabled=False))
    for spec in open_egress.values():
        assert spec["policyTypes"] == ["Ingress"]
        assert "egress" not in spec
    anyone = policies(respec(cf, networkPolicy__ingressFrom=[]))["charterflow-api"]["ingress"][0]
    assert anyone == {"ports": [{"protocol": "TCP", "port": 8080}]}  # no `from`: any source
    off = respec(cf, networkPolicy__enabled=False)
    built = children.build(off, SECRETS)
    assert not [m for m in built.base if m["kind"] == "NetworkPolicy"]
    gone = {name for _, kind, name in built.absent if kind == "NetworkPolicy"}
    assert gone == {"charterflow-api", "charterflow-worker", "charterflow-jobs"}


def test_metrics_port_is_neither_in_the_service_nor_the_ingress(cf: CharterFlow) -> None:
    built = everything(cf)
    service = next(m for m in built if m["kind"] == "Service")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    ingress = next(m for m in built if m["kind"] == "Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "charterflow-api", "port": {"name": "http"}}
    assert config_data(cf)["METRICS_PORT"] == "9090"
