"""Service, Ingress, NetworkPolicies (children/networking.py): the body-size limit."""

from __future__ import annotations

from charterflow_operator import children
from charterflow_operator.children import networking
from charterflow_operator.children.config import config_data
from charterflow_operator.instance import (
    CharterFlow,
)

from tests.unit.operator.conftest import SECRETS, everything, respec


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
