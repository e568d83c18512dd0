"""The Helm chart: lint-clean, CRDs from crds/, values checked by schema, bundle in sync."""

from __future__ import annotations

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
    copied = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
    assert source, "crds/ is empty"
    assert copied == source, "charts/charterflow-operator/crds differs from crds/: `make manifests`"


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
