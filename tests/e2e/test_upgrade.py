"""Upgrading the operator's chart on a real API server: from the previous release (0.1.0, whose
CRDs sat in the chart's crds/ folder, which Helm never upgrades) to this one (CRDs as templates
kept on uninstall), with the one-time step docs/operations.md gives. A CharterFlow made before
the upgrade keeps working, and gains the new fields with their defaults.

``charts/charterflow-operator-0.1.0.tgz`` is that release as `helm package` made it (the chart of
the commit before the CRDs moved), so the test needs no registry and no git history.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.e2e.kit import (
    CHART,
    CRD_NAMES,
    KubeHandle,
    OperatorProcess,
    apply,
    apply_secrets,
    cf,
    get,
    helm,
    install_crds,
    sample,
    wait_ready,
)
from tests.support.processes import wait_until

PREVIOUS = Path(__file__).parent / "charts" / "charterflow-operator-0.1.0.tgz"
RELEASE = "cf-upgrade"


def previous_crds(into: Path) -> list[Path]:
    """The CRD files of the previous release's chart."""
    with tarfile.open(PREVIOUS) as chart:
        members = [m for m in chart.getmembers() if "/crds/" in m.name and m.isfile()]
        chart.extractall(into, members=members, filter="data")
    return sorted(into.rglob("crds/*.yaml"))


def adopt_crds(kube: KubeHandle, release: str, namespace: str) -> None:
    """The one-time step before the first upgrade from 0.1.0 (docs/operations.md)."""
    for name in CRD_NAMES:
        kube.kubectl("label", "crd", name, "app.kubernetes.io/managed-by=Helm", "--overwrite")
        kube.kubectl(
            "annotate", "crd", name, "--overwrite",
            f"meta.helm.sh/release-name={release}", f"meta.helm.sh/release-namespace={namespace}",
        )  # fmt: skip


def test_helm_upgrade_from_the_previous_chart_upgrades_the_crds_and_keeps_instances(
    kube: KubeHandle,
    operator: OperatorProcess,
    ns: str,
    make_namespace: Callable[..., str],
    tmp_path: Path,
) -> None:
    system = make_namespace()
    for path in previous_crds(tmp_path):  # the cluster as the previous release left it
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    try:
        helm(kube, "install", RELEASE, str(PREVIOUS), "--namespace", system)
        apply_secrets(kube, ns)
        apply(kube, ns, sample())
        wait_ready(kube, ns)
        body = yaml.safe_dump(sample(deletionPolicy="Delete"))
        refused = kube.kubectl("apply", "-n", ns, "-f", "-", input=body, check=False)
        assert 'unknown field "spec.deletionPolicy"' in refused.stderr  # the old schema

        adopt_crds(kube, RELEASE, system)
        helm(
            kube, "upgrade", RELEASE, str(CHART), "--namespace", system,
            "--set", "rbac.aggregatedRoles=false",
        )  # fmt: skip
        crd = get(kube, "", "crd", CRD_NAMES[0])
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert "deletionPolicy" in schema["properties"]["spec"]["properties"]
        assert cf(kube, ns)["spec"]["deletionPolicy"] == "Retain"  # the new default, on read

        apply(kube, ns, sample(deletionPolicy="Delete"))
        assert cf(kube, ns)["spec"]["deletionPolicy"] == "Delete"  # kept now
        wait_until(
            lambda: get(kube, ns, "secret", "charterflow-jwt")["metadata"].get("ownerReferences"),
            timeout=60,
            what="the existing instance reconciled with its new field",
        )
        wait_ready(kube, ns)

        helm(kube, "uninstall", RELEASE, "--namespace", system)
        assert get(kube, "", "crd", CRD_NAMES[0])["metadata"]["name"] == CRD_NAMES[0]  # kept
        assert cf(kube, ns)["metadata"]["name"] == "charterflow"
    finally:
        helm(kube, "uninstall", RELEASE, "--namespace", system, check=False)
        install_crds(kube)  # this tree's CRDs for the rest of the session
