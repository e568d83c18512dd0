"""The chart's RBAC is enough for the operator and no more, proven on a real API server.

The chart is installed with helm (kwok only pretends to run its pod, so nothing reconciles from
there). The operator then runs here as a process with the environment of the chart's
Deployment, authenticated AS THE CHART'S ServiceAccount with a TokenRequest token: every call
it makes is authorised by the chart's Roles alone. A CharterFlow must become Ready, changes
that prune children must go through, and the operator must not be refused anything on the way.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.kit import (
    CHART,
    SECRETS,
    KubeHandle,
    OperatorProcess,
    apply,
    condition,
    get,
    helm,
    log_records,
    sample,
    scratch_namespace,
    service_account_kubeconfig,
    wait_ready,
)
from tests.support.processes import wait_until


@dataclass(frozen=True)
class Release:
    """An installed chart: where, its operator's ServiceAccount and container environment."""

    name: str
    namespace: str
    account: str
    env: dict[str, str]


def container_env(deployment: Mapping[str, Any]) -> dict[str, str]:
    """The operator container's environment as the kubelet would set it (pod name invented)."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for var in container.get("env", []):
        if "valueFrom" not in var:
            env[var["name"]] = var.get("value", "")  # the API server drops empty values
        elif var["valueFrom"].get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[var["name"]] = f"{deployment['metadata']['name']}-0"
        else:
            raise AssertionError(f"the test cannot resolve {var}")
    return env


@contextlib.contextmanager
def installed(kube: KubeHandle, namespace: str, *sets: str) -> Iterator[Release]:
    """``helm install`` the chart into ``namespace``; uninstalled afterwards (CRDs stay)."""
    name = f"cf{uuid.uuid4().hex[:6]}"
    # The session's CRDs are applied by the ``crds`` fixture, not owned by a release.
    args = ["install", name, str(CHART), "--namespace", namespace, "--set", "crds.install=false"]
    for value in sets:
        args += ["--set", value]
    helm(kube, *args)
    try:
        selector = f"app.kubernetes.io/instance={name}"
        (deployment,) = get(kube, namespace, "deployment", "-l", selector)["items"]
        account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        yield Release(name, namespace, account, container_env(deployment))
    finally:
        helm(kube, "uninstall", name, "--namespace", namespace, check=False)


def whoami(kube: KubeHandle, config: Path) -> str:
    path = "{.status.userInfo.username}"
    return kube.kubectl(
        "--kubeconfig", str(config), "auth", "whoami", "-o", f"jsonpath={path}"
    ).stdout


def can_i(kube: KubeHandle, config: Path, *request: str) -> bool:
    """``kubectl auth can-i`` (a SelfSubjectAccessReview) with the ServiceAccount's token."""
    done = kube.kubectl("--kubeconfig", str(config), "auth", "can-i", *request, check=False)
    return done.stdout.strip() == "yes"


def refusals(log: str) -> list[str]:
    """Operator log records (a traceback included) that report the API server refusing.

    A namespace that another test is deleting refuses new objects with "forbidden" too; that is
    not RBAC, and a cluster-wide operator meets such leftovers, so those records are left out.
    """
    return [
        record
        for record in log_records(log)
        if re.search("forbidden", record, re.IGNORECASE) and "being terminated" not in record
    ]


def deploy_sample(kube: KubeHandle, ns: str, **spec: Any) -> None:
    kube.kubectl("apply", "-n", ns, "-f", "-", input=SECRETS.read_text())
    apply(kube, ns, sample(**spec))


def test_cluster_wide_install_reconciles_as_its_service_account(
    kube: KubeHandle, crds: None, tmp_path: Path
) -> None:
    with (
        scratch_namespace(kube, "cfsys-") as system,
        scratch_namespace(kube) as team,
        installed(kube, system) as release,
    ):
        assert release.env["WATCH_NAMESPACES"] == ""
        assert release.env["OPERATOR_PEERING"]  # the ClusterKopfPeering the chart created
        config = service_account_kubeconfig(kube, system, release.account, tmp_path / "sa.yaml")
        assert whoami(kube, config) == f"system:serviceaccount:{system}:{release.account}"

        with OperatorProcess(config, release.env, tmp_path) as operator:
            scaled = {**sample()["spec"]["api"], "autoscaling": {"enabled": True}}
            deploy_sample(kube, team, api=scaled)
            body = wait_ready(kube, team)
            optional = get(kube, team, "hpa,ingress,cronjob", "-l", "app.kubernetes.io/instance")
            # A change that prunes every optional child: delete is exercised too.
            off = {"enabled": False}
            deploy_sample(kube, team, ingress=off, backup=off)
            wait_ready(kube, team)
            left = get(kube, team, "hpa,ingress,cronjob", "-l", "app.kubernetes.io/instance")
            print(f"operator RSS after two reconciles: {operator.rss_mib():.0f} MiB")
        log = operator.log_text()

    assert refusals(log) == []
    for kind in ("ApiAvailable", "WorkerAvailable", "BackupScheduled"):
        assert condition(body, kind)["status"] == "True", kind
    kinds = sorted(item["kind"] for item in optional["items"])
    assert kinds == ["CronJob", "HorizontalPodAutoscaler", "Ingress"]
    assert left["items"] == []
    # Least privilege: what the operator never does is not granted.
    assert not can_i(kube, config, "delete", "secrets", "--namespace", team)
    assert not can_i(kube, config, "create", "pods", "--namespace", team)
    assert not can_i(kube, config, "create", "clusterroles")


def test_namespaced_install_is_confined_to_its_namespaces(
    kube: KubeHandle, crds: None, tmp_path: Path
) -> None:
    with (
        scratch_namespace(kube, "cfsys-") as system,
        scratch_namespace(kube) as team,
        scratch_namespace(kube) as other,
        installed(kube, system, f"watchNamespaces={{{team}}}") as release,
    ):
        assert release.env["WATCH_NAMESPACES"] == team
        config = service_account_kubeconfig(kube, system, release.account, tmp_path / "sa.yaml")
        kube.kubectl("create", "secret", "generic", "private", "-n", other, "--from-literal=k=v")

        assert can_i(kube, config, "get", "secrets", "--namespace", team)
        assert not can_i(kube, config, "get", "secrets", "--namespace", other)
        assert not can_i(kube, config, "list", "secrets", "--all-namespaces")
        denied = kube.kubectl(
            "--kubeconfig", str(config), "get", "secret", "private", "-n", other, check=False
        )
        assert denied.returncode != 0
        assert 'cannot get resource "secrets"' in denied.stderr, denied.stderr

        with OperatorProcess(config, release.env, tmp_path) as operator:
            deploy_sample(kube, other)  # outside its namespaces: must stay untouched
            deploy_sample(kube, team)
            wait_ready(kube, team)
            deploy_sample(kube, team, logLevel="DEBUG")
            wait_ready(kube, team)
            level = get(kube, team, "configmap", "charterflow-config")["data"]["LOG_LEVEL"]
            print(f"operator RSS (namespaced): {operator.rss_mib():.0f} MiB")
        log = operator.log_text()
        ignored = get(kube, other, "charterflow", "charterflow")
        children = get(kube, other, "deploy,cm", "-l", "app.kubernetes.io/instance")

    assert refusals(log) == []
    assert level == "DEBUG"
    assert "status" not in ignored
    assert children["items"] == []


def test_refusals_are_recognised() -> None:
    """The refusal filter recognises Kopf's and the client's refusal records (else it proves
    nothing), tracebacks whole, and leaves out the namespace-termination case (not RBAC)."""
    kopf_record = (
        "2025-01-01 00:00:00,403 ERROR kopf._core.reactor.running: "
        'APIForbiddenError(\'clusterkopfpeerings.kopf.dev "cf" is forbidden: User '
        '"system:serviceaccount:s:cf" cannot patch resource "clusterkopfpeerings"\')\n'
    )
    client_record = (
        "2025-01-01 00:00:01,000 ERROR kopf.objects: Handler 'reconcile' failed\n"
        "Traceback (most recent call last):\n"
        "kubernetes.client.exceptions.ForbiddenException: (403)\n"
        "Reason: Forbidden\n"
    )
    ok = "2025-01-01 00:00:02,000 INFO charterflow_operator.reconcile: ok\n"
    terminating = (
        "2025-01-01 00:00:03,000 ERROR kopf.objects: Handler 'reconcile' failed\n"
        "kubernetes.client.exceptions.ForbiddenException: (403)\n"
        "Reason: Forbidden\n"
        'HTTP response body: {"message": "configmaps \\"x\\" is forbidden: unable to create '
        'new content in namespace t-1 because it is being terminated"}\n'
    )
    log = kopf_record + ok + client_record + terminating
    assert refusals(log) == [kopf_record, client_record]


def _can(kube: KubeHandle, user: str, verb: str, namespace: str) -> bool:
    done = kube.kubectl(
        "auth",
        "can-i",
        verb,
        "charterflows.charterflow.app",
        "-n",
        namespace,
        "--as",
        user,
        check=False,
    )
    return done.stdout.strip() == "yes"


def test_namespace_editors_manage_charterflows_through_aggregated_roles(
    kube: KubeHandle, crds: None, namespace: str
) -> None:
    """The chart's charterflow-view/-edit join the built-in view, edit and admin roles (the
    cluster's aggregation controller fills those in), so a namespace editor needs no extra
    grant to manage CharterFlows and a viewer can only read them."""
    roles = helm(
        kube, "template", "cf", str(CHART), "--show-only", "templates/aggregated-roles.yaml"
    ).stdout
    kube.kubectl("apply", "-f", "-", input=roles)
    try:
        for user, role in (("jane", "edit"), ("joe", "view")):
            kube.kubectl(
                "create",
                "rolebinding",
                user,
                f"--clusterrole={role}",
                f"--user={user}",
                "-n",
                namespace,
            )
        wait_until(
            lambda: _can(kube, "jane", "create", namespace),
            timeout=60,
            what="edit aggregating charterflow-edit",
        )
        assert _can(kube, "jane", "delete", namespace)
        wait_until(
            lambda: _can(kube, "joe", "list", namespace),
            timeout=60,
            what="view aggregating charterflow-view",
        )
        assert not _can(kube, "joe", "create", namespace)
        assert not _can(kube, "jane", "create", "kube-system")  # only where the binding is
    finally:
        kube.kubectl("delete", "-f", "-", "--ignore-not-found", input=roles, check=False)
