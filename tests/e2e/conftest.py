"""End-to-end fixtures: a real Kubernetes API (``kube``) and a scratch namespace per test.

``KUBECONFIG`` naming an existing file selects that cluster, used as it is. Otherwise the suite
starts its own control plane (``tests/support/cluster.py``) once per session and stops it at
the end. A cluster that cannot be had is a failure, never a skip: these tests are the only
proof that the operator and chart work against a real API server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.support.cluster import ClusterStartError, LocalCluster, k8s_bin_dir
from tests.support.processes import wait_until


@dataclass
class KubeHandle:
    """How tests reach the cluster: kubectl/helm from ``bin_dir``, or the Python client."""

    kubeconfig: Path
    env: dict[str, str]
    bin_dir: Path
    owned: bool

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; on failure the error names the command and stderr."""
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), *args],
            input=input,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def api_client(self) -> client.ApiClient:
        """A fresh Python client for this cluster (close it, or use it in a ``with``)."""
        return config.new_client_from_config(config_file=str(self.kubeconfig))


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


@pytest.fixture
def namespace(kube: KubeHandle) -> Iterator[str]:
    """A fresh namespace, deleted (without waiting) after the test."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    with kube.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        # Pods are rejected until the service-account controller has made "default".
        wait_until(
            lambda: core.read_namespaced_service_account("default", name) is not None,
            timeout=60,
            what=f"service account default in {name}",
        )
        try:
            yield name
        finally:
            core.delete_namespace(name, propagation_policy="Background")
