"""The Helm chart: lint-clean, CRDs from crds/, values checked by schema, bundle in sync."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.cluster import ClusterStartError, k8s_bin_dir

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "charterflow-operator"


@pytest.fixture(scope="module")
def helm() -> Path:
    try:
        return k8s_bin_dir(build=False) / "helm"
    except ClusterStartError as exc:
        pytest.fail(f"helm is missing: {exc}")


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120)


def render(helm: Path, *sets: str) -> list[dict]:
    args = ["template", "cf", str(CHART), "--namespace", "cf-system"]
    for value in sets:
        args += ["--set", value]
    done = run_helm(helm, *args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def test_chart_crds_are_the_crds_directory() -> None:
    source = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    copied = {p.name: p.read_text() for p in (CHART / "files" / "crds").glob("*.yaml")}
    assert source, "crds/ is empty"
    assert copied == source, (
        "charts/charterflow-operator/files/crds differs from crds/: `make manifests`"
    )


def test_helm_lint_is_clean(helm: Path) -> None:
    done = run_helm(helm, "lint", str(CHART), "--strict")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[WARNING]" not in done.stdout
    assert "[ERROR]" not in done.stdout


def test_install_bundle_is_rendered_from_the_chart(helm: Path) -> None:
    rendered = subprocess.run(
        [ROOT / "scripts" / "render-install", str(helm)], capture_output=True, text=True, check=True
    ).stdout
    assert (ROOT / "manifests" / "install.yaml").read_text() == rendered, (
        "manifests/install.yaml is out of date: run `make manifests`"
    )


def test_values_schema_refuses_a_wrong_type_and_an_unknown_key(helm: Path) -> None:
    wrong_type = run_helm(helm, "template", "cf", str(CHART), "--set", "replicaCount=two")
    assert wrong_type.returncode != 0
    assert "replicaCount" in wrong_type.stderr
    unknown = run_helm(helm, "template", "cf", str(CHART), "--set", "replicas=2")
    assert unknown.returncode != 0
    assert "replicas" in unknown.stderr


def test_values_schema_checks_the_instances_llm(helm: Path) -> None:
    """``instance.spec.llm`` is checked at install with the CRD's schema, naming the field."""
    base = ["template", "cf", str(CHART), "--set", "instance.enabled=true"]
    bad = run_helm(helm, *base, "--set", "instance.spec.llm.url=ollama:11434")
    assert bad.returncode != 0
    assert "llm" in bad.stderr, bad.stderr
    assert "url" in bad.stderr, bad.stderr
    missing = run_helm(helm, *base, "--set", "instance.spec.llm.url=http://ollama:11434/v1")
    assert missing.returncode != 0
    assert "model" in missing.stderr, missing.stderr
    good = render(
        helm,
        "instance.enabled=true",
        "instance.spec.llm.url=http://ollama:11434/v1",
        "instance.spec.llm.model=llama3.1:8b",
        "instance.spec.llm.timeoutSeconds=30",
    )
    (instance,) = [d for d in good if d["kind"] == "CharterFlow"]
    assert instance["spec"]["llm"] == {
        "url": "http://ollama:11434/v1",
        "model": "llama3.1:8b",
        "timeoutSeconds": 30,
    }


def test_operator_pod_is_restricted(helm: Path) -> None:
    deployment = next(d for d in render(helm) if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "limits" in container["resources"]


def test_namespaced_mode_grants_secrets_only_in_the_watched_namespaces(helm: Path) -> None:
    docs = render(helm, "watchNamespaces={team-a,team-b}")
    cluster_rules = next(d for d in docs if d["kind"] == "ClusterRole")["rules"]
    assert all("secrets" not in rule["resources"] for rule in cluster_rules)
    roles = [d for d in docs if d["kind"] == "Role"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert any("secrets" in rule["resources"] for rule in role["rules"])
    env = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    watch = {e["name"]: e.get("value") for e in env["containers"][0]["env"]}
    assert watch["WATCH_NAMESPACES"] == "team-a,team-b"


def test_cluster_mode_never_grants_wildcards(helm: Path) -> None:
    for doc in render(helm):
        for rule in doc.get("rules", []):
            assert "*" not in rule["verbs"], rule
            assert "*" not in rule["resources"], rule


def _kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def test_operator_down_alert_needs_the_scrape_that_feeds_it(helm: Path) -> None:
    def alerts(*sets: str) -> set[str]:
        (rule,) = _kind(
            render(helm, "metrics.prometheusRule.enabled=true", *sets), "PrometheusRule"
        )
        return {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}

    # Without the ServiceMonitor nothing scrapes the operator: `absent(up)` would fire forever.
    assert "CharterFlowOperatorDown" not in alerts()
    assert "CharterFlowOperatorDown" in alerts("metrics.serviceMonitor.enabled=true")
    assert "CharterFlowReconcileErrors" in alerts()


def test_operator_has_a_readiness_probe_and_a_network_policy(helm: Path) -> None:
    docs = render(helm)
    (deployment,) = _kind(docs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    (bare,) = _kind(render(helm, "metrics.enabled=false"), "Deployment")
    probe = bare["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["httpGet"] == {"path": "/healthz", "port": "health"}
    (policy,) = _kind(docs, "NetworkPolicy")
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert [p["port"] for p in spec["ingress"][0]["ports"]] == [9090]
    assert [p["port"] for p in spec["egress"][1]["ports"]] == [443, 6443]
    assert not _kind(render(helm, "networkPolicy.enabled=false"), "NetworkPolicy")


METRIC = re.compile(r"\b(charterflow_[a-z_]+?)(?:_bucket|_count|_sum)?\b")


def not_exported(exprs: list[str]) -> set[str]:
    """The ``charterflow_*`` series named in ``exprs`` that no application module defines."""
    used = {m for e in exprs for m in METRIC.findall(e)}
    source = "\n".join(p.read_text() for p in (ROOT / "app" / "charterflow").rglob("*.py"))
    exported = {m.removesuffix("_total") for m in re.findall(r'"(charterflow_[a-z_]+)"', source)}
    return {m for m in used if m.removesuffix("_total") not in exported}


def test_grafana_dashboard_is_a_labelled_configmap_of_exported_metrics(helm: Path) -> None:
    assert not _kind(render(helm), "ConfigMap")  # opt-in
    (config,) = _kind(render(helm, "dashboard.enabled=true"), "ConfigMap")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config["data"]["charterflow.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 15
    assert not_exported(exprs) == set(), "the dashboard plots metrics the app does not export"
