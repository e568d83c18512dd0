"""End-to-end fixtures: a real Kubernetes API (``kube``), its CRDs, scratch namespaces and an
operator process per module; the plain helpers they use are in kit.py.

``KUBECONFIG`` naming an existing file selects that cluster, used as it is. Otherwise the suite
starts its own control plane (``tests/support/cluster.py``) once per session and stops it at
the end. A cluster that cannot be had is a failure, never a skip: these tests are the only
proof that the operator and chart work against a real API server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.kit import (
    OPERATOR_PREFIX,
    KubeHandle,
    OperatorProcess,
    install_crds,
    scratch_namespace,
)
from tests.support.cluster import ClusterStartError, LocalCluster, k8s_bin_dir


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the cluster carries the ``cluster`` marker (``-m 'not cluster'``)."""
    for item in items:
        if "kube" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)


def _external_bin_dir() -> Path:
    """kubectl for a cluster we did not start: the pinned build if present, else PATH."""
    with contextlib.suppress(ClusterStartError):
        return k8s_bin_dir(build=False)
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "KUBECONFIG is set but no kubectl was found: run `make k8s-binaries` "
            "or put kubectl on PATH",
            pytrace=False,
        )
    return Path(kubectl).parent


def _start_local_cluster() -> LocalCluster:
    """A fresh control plane under a temporary directory, or a failure that says why."""
    try:
        bin_dir = k8s_bin_dir(build=False)
        root = Path(tempfile.mkdtemp(prefix="charterflow-cluster-"))
        return LocalCluster(root, bin_dir).start()
    except ClusterStartError as exc:
        problem = str(exc)  # failing outside the handler keeps the report to the message
    pytest.fail(f"Kubernetes control plane unavailable: {problem}", pytrace=False)


@pytest.fixture(scope="session")
def kube() -> Iterator[KubeHandle]:
    """The cluster under test; started here (and stopped afterwards) unless KUBECONFIG names one."""
    external = os.environ.get("KUBECONFIG", "")
    if external and Path(external).is_file():
        yield KubeHandle(Path(external), dict(os.environ), _external_bin_dir(), owned=False)
        return

    cluster = _start_local_cluster()
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    try:
        yield KubeHandle(cluster.kubeconfig, env, cluster.bin_dir, owned=True)
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="session")
def crds(kube: KubeHandle) -> None:
    """Every CRD of crds/ installed (once: they are cluster-scoped and shared)."""
    install_crds(kube)


@pytest.fixture
def make_namespace(kube: KubeHandle) -> Iterator[Callable[..., str]]:
    """Makes scratch namespaces (``make_namespace(prefix)``); deleted after the test."""
    with contextlib.ExitStack() as made:
        yield lambda prefix="t-": made.enter_context(scratch_namespace(kube, prefix))


@pytest.fixture
def namespace(make_namespace: Callable[..., str]) -> str:
    """A scratch namespace (``t-*``), which the module operators below do not watch."""
    return make_namespace()


@pytest.fixture
def ns(make_namespace: Callable[..., str]) -> str:
    """A scratch namespace that the module's ``operator`` watches (``cfop-*``)."""
    return make_namespace(OPERATOR_PREFIX)


@pytest.fixture(scope="module")
def operator(
    kube: KubeHandle, crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator as its console script, standalone, watching only ``cfop-*`` namespaces (so
    other suites' operators on the same cluster never meet it); one per test module."""
    env = {"WATCH_NAMESPACES": f"{OPERATOR_PREFIX}*", "OPERATOR_STANDALONE": "true"}
    with OperatorProcess(kube.kubeconfig, env, tmp_path_factory.mktemp("operator")) as running:
        yield running
