"""The real-pod tier: images run by containerd on a real kubelet node (``tests/support/node.py``).

By default the session starts its own control plane on the node address, the real node and
CoreDNS, and removes them all at the end, checking that nothing is left behind. Setting
``REALNODE_KUBECONFIG`` runs the same tests against an existing cluster instead (kind, ...):
pods must be schedulable in namespaces labelled/annotated as ``real_namespace`` makes them, and
the cluster DNS must answer at ``REALNODE_DNS`` (default 10.96.0.10) from the host.

A node that cannot start FAILS the run with its reason (log tail), never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import node as real_node
from tests.support.cluster import ClusterStartError, k8s_bin_dir
from tests.support.processes import wait_until


@dataclass
class RealCluster:
    """How tests reach the cluster with the real node."""

    kubeconfig: Path
    bin_dir: Path
    dns: str
    node: real_node.RealNode | None = None
    env: dict[str, str] = field(default_factory=dict)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result.stdout

    def get(self, *args: str) -> dict:  # type: ignore[type-arg]
        return json.loads(self.kubectl("get", "-o", "json", *args))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "realnode" in str(item.fspath):
            item.add_marker(pytest.mark.realnode)


@pytest.fixture(scope="session")
def real() -> Iterator[RealCluster]:
    """The cluster with a real node: ours (started, then fully removed) or REALNODE_KUBECONFIG."""
    external = os.environ.get("REALNODE_KUBECONFIG")
    if external:
        kubectl = shutil.which("kubectl")
        bin_dir = Path(kubectl).parent if kubectl else k8s_bin_dir(build=False)
        yield RealCluster(
            Path(external), bin_dir, os.environ.get("REALNODE_DNS", real_node.CLUSTER_DNS)
        )
        return
    root = Path(tempfile.mkdtemp(prefix="charterflow-real-"))
    try:
        cluster, node = real_node.start_real_cluster(
            root, k8s_bin_dir(build=False), real_node.node_bin_dir()
        )
    except ClusterStartError as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"real node unavailable: {problem}", pytrace=False)
    try:
        yield RealCluster(cluster.kubeconfig, cluster.bin_dir, real_node.CLUSTER_DNS, node)
    finally:
        node.stop()
        cluster.stop()
        left = real_node.leftovers(root)
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"the real node left behind: {left}"


@pytest.fixture
def real_namespace(real: RealCluster) -> Iterator[str]:
    """A namespace enforcing Pod Security ``restricted`` whose pods land on the real node."""
    name = f"r-{uuid.uuid4().hex[:8]}"
    manifest = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            "annotations": real_node.NAMESPACE_ANNOTATIONS,
        },
    }
    real.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    wait_until(
        lambda: real.kubectl("-n", name, "get", "serviceaccount", "default", check=False) != "",
        60,
        f"service account default in {name}",
    )
    try:
        yield name
    finally:
        real.kubectl("delete", "namespace", name, "--wait=false", check=False)
