"""Static audits that no one here wrote: kube-score over the operator's children of the
production sample (every kind, a migration Job included) and over the rendered chart
(manifests/install.yaml), and Prometheus' rule validation (scripts/audit-tools: rulecheck)
over every alerting rule we ship.

A finding fails the test unless it is accepted below, next to its reason. The tools are built
from the Go module proxy by scripts/audit-tools (cached; `make test` builds them first).
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from charterflow_operator import children
from charterflow_operator.children import jobs
from charterflow_operator.children.monitoring import prometheus_rule
from charterflow_operator.instance import CharterFlow

from tests.conftest import IN_CI
from tests.integration.test_chart import not_exported
from tests.support.cluster import k8s_bin_dir
from tests.unit.operator.conftest import SECRETS

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ROOT / "manifests" / "samples" / "charterflow-production.yaml"
KUBERNETES = "v1.34"

# (kind, name pattern, kube-score check id) -> why we accept it.
ACCEPTED: dict[tuple[str, str, str], str] = {
    ("*", "*", "container-image-pull-policy"): (
        "Images are immutable release tags (or digests) chosen per spec.version; IfNotPresent "
        "avoids a registry round trip per pod start. spec.image.pullPolicy (and the chart's "
        "image.pullPolicy) can be set to Always by those who want it."
    ),
    ("*", "*", "container-ephemeral-storage-request-and-limit"): (
        "The only writable path is the /tmp emptyDir; how much a pod needs there depends on "
        "upload sizes and, for a restore, the dump size, which only the operator of the "
        "installation knows: the emptyDir has a sizeLimit per component "
        "(spec.<component>.tmpSizeLimit), and ephemeral-storage requests go in "
        "spec.<component>.resources (and the chart's resources), passed through unchanged."
    ),
    ("Deployment", "charterflow-*", "deployment-has-host-podantiaffinity"): (
        "API and workers are spread by topologySpreadConstraints on kubernetes.io/hostname and "
        "topology.kubernetes.io/zone (ScheduleAnyway, selecting the instance's component), "
        "which kube-score does not recognise; a required anti-affinity would leave pods "
        "Pending on a small cluster."
    ),
    ("HorizontalPodAutoscaler", "charterflow-worker", "horizontalpodautoscaler-replicas"): (
        "One worker is a valid minimum: it consumes a queue, nothing waits on it synchronously, "
        "and a lost worker's messages are redelivered; the sample keeps 1 for small installs."
    ),
    ("Deployment", "charterflow-operator", "container-resources"): (
        "No CPU limit on the operator: a limit throttles the bursts of reconcile passes after a "
        "restart; the CPU request reserves its share, memory is limited."
    ),
    ("Deployment", "charterflow-operator", "deployment-replicas"): (
        "One operator replica is enough (a restart resumes from the API server's state); "
        "replicaCount: 2 runs a standby through Kopf peering for faster failover."
    ),
}


def _tool(name: str) -> Path:
    """A tool from scripts/audit-tools, built on first use; missing is a failure in CI."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "audit-tools"), name],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        message = f"{name} could not be built: {done.stderr[-2000:]}"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return Path(done.stdout.strip()) / "bin" / name


def production() -> CharterFlow:
    body = yaml.safe_load(PRODUCTION.read_text())
    body["metadata"].update(namespace="prod", uid="u-1")
    return CharterFlow.from_body(body)


def production_children() -> list[dict[str, Any]]:
    cf = production()
    built = children.build(cf, SECRETS)
    return [*built.base, *built.workloads, jobs.migration_job(cf, "expand", 1)]


def findings(paths: list[Path]) -> list[tuple[str, str, str, int]]:
    """(kind, name, check id, grade) of every check kube-score does not pass."""
    tool = _tool("kube-score")
    done = subprocess.run(
        [str(tool), "score", "--kubernetes-version", KUBERNETES, "-o", "json", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout, done.stderr
    return [
        (obj["type_meta"]["kind"], obj["object_meta"]["name"], check["check"]["id"], check["grade"])
        for obj in json.loads(done.stdout)
        for check in obj["checks"]
        if not check["skipped"] and check["grade"] < 10
    ]


def unaccepted(found: list[tuple[str, str, str, int]]) -> list[tuple[str, str, str, int]]:
    return [
        finding
        for finding in found
        if not any(
            fnmatch.fnmatch(finding[0], kind)
            and fnmatch.fnmatch(finding[1], name)
            and finding[2] == check
            for kind, name, check in ACCEPTED
        )
    ]


def test_kube_score_of_the_production_samples_children(tmp_path: Path) -> None:
    docs = production_children()
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "CronJob", "Job", "NetworkPolicy", "HorizontalPodAutoscaler"} <= kinds
    path = tmp_path / "children.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    found = findings([path])
    assert unaccepted(found) == []
    # Every pod, the backup and migration pods included, matches a NetworkPolicy with egress.
    checked = {(kind, name) for kind, name, check, _ in found if check == "pod-networkpolicy"}
    assert not checked


def test_kube_score_of_the_rendered_chart() -> None:
    found = findings([ROOT / "manifests" / "install.yaml"])
    assert unaccepted(found) == []


def test_an_unaccepted_finding_fails(tmp_path: Path) -> None:
    """The audit can fail: a Deployment without resources or probes is reported."""
    bare = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bare", "namespace": "x"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "bare"}},
            "template": {
                "metadata": {"labels": {"app": "bare"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
            },
        },
    }
    path = tmp_path / "bare.yaml"
    path.write_text(yaml.safe_dump(bare))
    checks = {check for _, _, check, _ in unaccepted(findings([path]))}
    assert {"container-resources", "pod-networkpolicy"} <= checks


def _rule_files(tmp_path: Path) -> list[Path]:
    """The application's rules (the operator's builder, backups on) and the chart's."""
    app = tmp_path / "application.yaml"
    app.write_text(yaml.safe_dump(prometheus_rule(production())["spec"]))
    return [app, _chart_rules(tmp_path)]


def _chart_rules(tmp_path: Path) -> Path:
    """The chart's PrometheusRule with every alert rendered (the ServiceMonitor on)."""
    helm = k8s_bin_dir(build=False) / "helm"
    chart = ROOT / "charts" / "charterflow-operator"
    done = subprocess.run(
        [
            str(helm),
            "template",
            "cf",
            str(chart),
            "--set",
            "metrics.prometheusRule.enabled=true",
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--show-only",
            "templates/prometheusrule.yaml",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    spec = yaml.safe_load(done.stdout)["spec"]
    assert "CharterFlowOperatorDown" in {r["alert"] for r in spec["groups"][0]["rules"]}
    path = tmp_path / "operator.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_every_alerting_rule_passes_prometheus_rule_validation(tmp_path: Path) -> None:
    """Prometheus' own rule validation (what `promtool check rules` runs: PromQL parse of
    every expression, durations, labels, annotation templates)."""
    rulecheck = _tool("rulecheck")
    files = _rule_files(tmp_path)
    done = subprocess.run(
        [str(rulecheck), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(files)
    broken = tmp_path / "broken.yaml"
    spec = yaml.safe_load(files[0].read_text())
    spec["groups"][0]["rules"][0]["expr"] = "sum(rate(x[5m]) /"
    broken.write_text(yaml.safe_dump(spec))
    failed = subprocess.run(
        [str(rulecheck), str(broken)], capture_output=True, text=True, check=False
    )
    assert failed.returncode != 0
    assert "parse error" in failed.stderr


def test_the_application_alerts_use_series_the_application_exports() -> None:
    rules = prometheus_rule(production())["spec"]["groups"][0]["rules"]
    assert not_exported([r["expr"] for r in rules]) == set()
