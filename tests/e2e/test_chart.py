"""The chart's output, the install bundle and the samples are accepted by a real API server.

``kubectl apply --dry-run=server`` runs every object through admission, schema validation,
CEL rules and RBAC escalation checks without persisting it. The CRDs are applied for real first
(they are shared, cluster-scoped and never deleted), because the CharterFlow and Kopf peering
objects cannot even be dry-run without them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.kit import (
    CHART,
    CRD_NAMES,
    CRDS,
    INSTALL,
    SAMPLES,
    SECRETS,
    KubeHandle,
    helm,
    sample,
    scratch_namespace,
)

INSTALL_NAMESPACE = "charterflow-system"  # the bundle's own namespace (scripts/render-install)


def dry_run(kube: KubeHandle, manifests: str, *flags: str) -> list[str]:
    """Server-side dry-run apply; returns kubectl's per-object lines (all must be dry-run)."""
    result = kube.kubectl("apply", "--dry-run=server", *flags, "-f", "-", input=manifests)
    lines = result.stdout.strip().splitlines()
    assert lines, "nothing was applied"
    assert all(line.endswith("(server dry run)") for line in lines), result.stdout
    return lines


def objects(manifests: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(manifests) if doc]


def render(kube: KubeHandle, namespace: str, *args: str) -> str:
    done = helm(kube, "template", "cf", str(CHART), "--namespace", namespace, *args)
    return done.stdout


def test_default_values_are_accepted(kube: KubeHandle, crds: None, namespace: str) -> None:
    manifests = render(kube, namespace)
    lines = dry_run(kube, manifests)
    kinds = {doc["kind"] for doc in objects(manifests)}
    assert {"ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering", "Deployment"} <= kinds
    assert len(lines) == len(objects(manifests))


def test_namespaced_values_are_accepted(kube: KubeHandle, crds: None, namespace: str) -> None:
    with scratch_namespace(kube) as team_a, scratch_namespace(kube) as team_b:
        manifests = render(kube, namespace, "--set", f"watchNamespaces={{{team_a},{team_b}}}")
        lines = dry_run(kube, manifests)
    docs = objects(manifests)
    placed = {(d["kind"], d["metadata"].get("namespace")) for d in docs}
    for team in (team_a, team_b):
        assert {("Role", team), ("RoleBinding", team), ("KopfPeering", team)} <= placed
    assert len(lines) == len(docs)


def test_instance_with_the_sample_spec_is_accepted(
    kube: KubeHandle, crds: None, namespace: str, tmp_path: Path
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"instance": {"enabled": True, "spec": sample()["spec"]}}))
    manifests = render(kube, namespace, "--values", str(values))
    lines = dry_run(kube, manifests)
    assert "charterflow.charterflow.app/charterflow created (server dry run)" in lines


def test_an_invalid_instance_spec_is_refused(
    kube: KubeHandle, crds: None, namespace: str, tmp_path: Path
) -> None:
    """The dry-run is a real check: the CRD's CEL rule refuses an ingress without a host."""
    spec = {**sample()["spec"], "ingress": {"enabled": True}}
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"instance": {"enabled": True, "spec": spec}}))
    manifests = render(kube, namespace, "--values", str(values))
    result = kube.kubectl("apply", "--dry-run=server", "-f", "-", input=manifests, check=False)
    assert result.returncode != 0
    assert "spec.ingress" in result.stderr


@contextlib.contextmanager
def bundle_namespace(kube: KubeHandle) -> Iterator[None]:
    """The bundle's namespace, made for real (a dry-run Namespace holds nothing), then removed."""
    created = kube.kubectl("create", "namespace", INSTALL_NAMESPACE, check=False).returncode == 0
    try:
        yield
    finally:
        if created:
            kube.kubectl("delete", "namespace", INSTALL_NAMESPACE, "--timeout=60s", check=False)


def test_install_bundle_is_accepted_as_the_readme_applies_it(kube: KubeHandle, crds: None) -> None:
    manifests = INSTALL.read_text()
    with bundle_namespace(kube):
        lines = dry_run(kube, manifests, "--server-side")
    docs = objects(manifests)
    assert len(lines) == len(docs)
    kinds = {doc["kind"] for doc in docs}
    assert {"Namespace", "CustomResourceDefinition", "ClusterRole", "Deployment"} <= kinds


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("charterflow*.yaml")), ids=lambda p: p.name)
def test_samples_are_accepted(kube: KubeHandle, crds: None, namespace: str, path: Path) -> None:
    """Every sample (with the Secrets it references) passes the CRD's schema and CEL rules."""
    manifests = SECRETS.read_text() + "\n---\n" + path.read_text()
    lines = dry_run(kube, manifests, "-n", namespace)
    assert "charterflow.charterflow.app/charterflow created (server dry run)" in lines


def test_chart_ships_this_trees_crds_kept_on_uninstall(kube: KubeHandle) -> None:
    """The CRDs are templates (so `helm upgrade` upgrades them), equal to crds/ but for the
    keep policy; ``crds.install=false`` leaves them out."""
    rendered = objects(render(kube, "default", "--show-only", "templates/crds.yaml"))
    sources = [doc for path in sorted(CRDS.glob("*.yaml")) for doc in objects(path.read_text())]
    assert sorted(d["metadata"]["name"] for d in rendered) == sorted(CRD_NAMES)
    by_name = {d["metadata"]["name"]: d for d in rendered}
    for source in sources:
        shipped = by_name[source["metadata"]["name"]]
        annotations = shipped["metadata"].pop("annotations")
        assert annotations == {"helm.sh/resource-policy": "keep"}
        assert shipped == source, "run `make manifests`"
    off = helm(kube, "template", "cf", str(CHART), "--set", "crds.install=false").stdout
    assert "CustomResourceDefinition" not in off
