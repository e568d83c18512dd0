"""Monitoring objects and NetworkPolicies against a real API server, which validates them.

The Prometheus Operator's CRDs come from its Go module at a pinned tag (scripts/audit-tools,
cached); without them a CharterFlow that asks for monitoring gets one Warning Event, and once
they are installed its PodMonitors and PrometheusRule are created (the API server checks them
against the real CRD schemas) and removed again when monitoring is turned off.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.e2e.kit import (
    READY_TIMEOUT,
    KubeHandle,
    OperatorProcess,
    apply,
    apply_secrets,
    get,
    sample,
    wait_ready,
)
from tests.support.processes import wait_until

REPO = Path(__file__).resolve().parents[2]
MONITORING_CRDS = ("podmonitors", "prometheusrules", "servicemonitors")


def monitoring_crds() -> list[Path]:
    """The CRD files, fetched once (scripts/audit-tools crds)."""
    out = subprocess.run(
        [str(REPO / "scripts" / "audit-tools"), "crds"],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout.strip()
    return [Path(out) / "crds" / f"monitoring.coreos.com_{name}.yaml" for name in MONITORING_CRDS]


def patch_spec(kube: KubeHandle, ns: str, spec: dict) -> None:
    """Merge ``spec`` into the CharterFlow's spec (``None`` removes a field)."""
    body = json.dumps({"spec": spec})
    kube.kubectl("patch", "charterflow", "charterflow", "-n", ns, "--type=merge", "-p", body)


def served(kube: KubeHandle) -> bool:
    found = kube.kubectl("get", "crd", "podmonitors.monitoring.coreos.com", check=False)
    return found.returncode == 0


def names(kube: KubeHandle, ns: str, kind: str) -> set[str]:
    return {item["metadata"]["name"] for item in get(kube, ns, kind)["items"]}


def warnings(kube: KubeHandle, ns: str, reason: str) -> list[str]:
    events = get(kube, ns, "events", "--field-selector", f"reason={reason}")["items"]
    return [e["message"] for e in events]


def test_monitoring_objects_follow_the_crds_and_the_switch(
    kube: KubeHandle, operator: OperatorProcess, ns: str
) -> None:
    apply_secrets(kube, ns)
    apply(kube, ns, sample(monitoring={"enabled": True, "labels": {"release": "kps"}}))
    wait_ready(kube, ns)
    if not served(kube):  # the cluster has no Prometheus Operator yet: said once, not failed
        wait_until(
            lambda: warnings(kube, ns, "MonitoringUnavailable"),
            timeout=READY_TIMEOUT,
            what="a MonitoringUnavailable Event",
        )
        (message,) = warnings(kube, ns, "MonitoringUnavailable")
        assert "monitoring.coreos.com" in message
        for path in monitoring_crds():
            kube.kubectl("apply", "--server-side", "-f", str(path))
        kube.kubectl(
            "wait",
            "--for=condition=Established",
            *(f"crd/{n}.monitoring.coreos.com" for n in MONITORING_CRDS),
        )
    wait_until(
        lambda: (
            names(kube, ns, "podmonitors") == {"charterflow-api", "charterflow-worker"}
            and names(kube, ns, "prometheusrules") == {"charterflow"}
        ),
        timeout=READY_TIMEOUT,
        what="PodMonitors and PrometheusRule",
    )
    monitor = get(kube, ns, "podmonitor", "charterflow-api")
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    rule = get(kube, ns, "prometheusrule", "charterflow")
    alerts = {r["alert"] for r in rule["spec"]["groups"][0]["rules"]}
    assert "CharterFlowBackupTooOld" in alerts

    patch_spec(kube, ns, {"monitoring": {"enabled": False}})
    wait_until(
        lambda: not names(kube, ns, "podmonitors") and not names(kube, ns, "prometheusrules"),
        timeout=READY_TIMEOUT,
        what="monitoring objects pruned",
    )


def test_network_policies_are_accepted_and_switch_off(
    kube: KubeHandle, operator: OperatorProcess, ns: str
) -> None:
    apply_secrets(kube, ns)
    smtp = {"to": [{"ipBlock": {"cidr": "192.0.2.25/32"}}], "ports": [{"port": 587}]}
    policy = {
        "egress": {"database": {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}, "extra": [smtp]}
    }
    apply(kube, ns, sample(networkPolicy=policy))
    wait_ready(kube, ns)
    policies = {p["metadata"]["name"]: p["spec"] for p in get(kube, ns, "networkpolicies")["items"]}
    assert set(policies) == {"charterflow-api", "charterflow-worker", "charterflow-jobs"}
    api = policies["charterflow-api"]
    assert api["policyTypes"] == ["Ingress", "Egress"]
    assert api["egress"][1]["to"] == [{"ipBlock": {"cidr": "10.0.0.0/8"}}]
    assert {"port": 587, "protocol": "TCP"} in api["egress"][-1]["ports"]
    jobs = policies["charterflow-jobs"]
    assert jobs["podSelector"]["matchExpressions"][0]["values"] == ["backup", "restore", "migrate"]

    # A peer the API server refuses (an invalid CIDR) fails the apply: Degraded, ApplyFailed.
    bad = {"egress": {"redis": {"to": [{"ipBlock": {"cidr": "not-a-cidr"}}]}}}
    patch_spec(kube, ns, {"networkPolicy": bad})
    wait_until(
        lambda: (
            (get(kube, ns, "charterflow", "charterflow").get("status") or {}).get("phase")
            == "Degraded"
        ),
        timeout=READY_TIMEOUT,
        what="Degraded on an invalid NetworkPolicy peer",
    )
    patch_spec(kube, ns, {"networkPolicy": {"enabled": False, "egress": {"redis": None}}})
    wait_until(
        lambda: not get(kube, ns, "networkpolicies")["items"],
        timeout=READY_TIMEOUT,
        what="NetworkPolicies removed by the switch",
    )
    wait_ready(kube, ns)
