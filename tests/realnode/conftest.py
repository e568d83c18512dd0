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
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import node as real_node
from tests.support.cluster import ClusterStartError, k8s_bin_dir
from tests.support.processes import wait_until

# The tier's last measurements (docs/benchmarks.md quotes them; tests never assert timings).
TIMINGS = Path.home() / ".cache" / "charterflow" / "realnode-timings.json"


@dataclass
class RealCluster:
    """How tests reach the cluster with the real node."""

    kubeconfig: Path
    bin_dir: Path
    dns: str
    node: real_node.RealNode | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def helm(self, *args: str, check: bool = True) -> str:
        return self._run("helm", args, check=check)

    def _run(
        self, tool: str, args: tuple[str, ...], input: str | None = None, check: bool = True
    ) -> str:
        """``tool`` (helm or kubectl, from the built binaries) against this cluster; its output,
        or, with ``check``, an AssertionError naming the command and its stderr."""
        result = subprocess.run(
            [str(self.bin_dir / tool), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{tool} {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result.stdout

    def tag_image(self, source: str, target: str) -> None:
        """Give a loaded image a second name (a "new version" of the same image)."""
        full = [ref if "/" in ref else f"docker.io/library/{ref}" for ref in (source, target)]
        if self.node is not None:
            address = str(self.node.sock)
        elif not (address := os.environ.get("REALNODE_CONTAINERD", "")):
            pytest.fail(
                f"tag {source} as {target} on the cluster's nodes, or set REALNODE_CONTAINERD"
            )
        ctr = ["ctr", "--address", address, "-n", "k8s.io", "images", "tag", "--force", *full]
        result = subprocess.run(ctr, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr

    def namespace(self, prefix: str) -> str:
        """A new namespace enforcing Pod Security ``restricted``, its pods on the real node."""
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        manifest = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
                "annotations": real_node.NAMESPACE_ANNOTATIONS,
            },
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        wait_until(
            lambda: self.kubectl("-n", name, "get", "sa", "default", check=False) != "",
            60,
            f"service account default in {name}",
        )
        return name

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        return self._run("kubectl", args, input=input, check=check)

    def get(self, *args: str) -> dict:  # type: ignore[type-arg]
        return json.loads(self.kubectl("get", "-o", "json", *args))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tier; the CLI test runs first, before the session's own real node starts."""
    for item in items:
        if "realnode" in str(item.fspath):
            item.add_marker(pytest.mark.realnode)
    items.sort(key=lambda item: "test_cluster_cli" not in str(item.fspath))


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
    began = time.monotonic()
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
    handle = RealCluster(cluster.kubeconfig, cluster.bin_dir, real_node.CLUSTER_DNS, node)
    handle.timings["cluster_with_real_node_ready_s"] = round(time.monotonic() - began, 1)
    try:
        yield handle
    finally:
        TIMINGS.parent.mkdir(parents=True, exist_ok=True)
        TIMINGS.write_text(json.dumps(handle.timings, indent=2) + "\n")
        node.stop()
        cluster.stop()
        left = real_node.leftovers(root)
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"the real node left behind: {left}"


@pytest.fixture
def real_namespace(real: RealCluster) -> Iterator[str]:
    """A namespace enforcing Pod Security ``restricted`` whose pods land on the real node."""
    name = real.namespace("r")
    try:
        yield name
    finally:
        real.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def real_images(real: RealCluster) -> dict[str, str]:
    """The images `make images` built (name -> ref), imported into the node's containerd.

    With REALNODE_KUBECONFIG they must already be loaded (``kind load image-archive ...``).
    """
    from tests.support import images

    version = images.version()
    refs = {image.name: image.ref(version) for image in images.IMAGES}
    if real.node is None:
        return refs
    for image in images.IMAGES:
        archive = image.archive(version)
        if not archive.exists():
            pytest.fail(f"{archive} is missing: run `make images`", pytrace=False)
        began = time.monotonic()
        real.node.import_image(archive)
        real.timings[f"import_{image.name}_s"] = round(time.monotonic() - began, 1)
    return refs


@pytest.fixture(scope="session")
def node_services(real: RealCluster) -> Iterator[dict[str, str]]:
    """PostgreSQL, Redis and S3 on the node address (the exports of `make services`).

    With REALNODE_KUBECONFIG, the same variables (DATABASE_URL, REDIS_URL, S3_ENDPOINT_URL,
    S3_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) must name services its pods reach.
    """
    names = (
        "DATABASE_URL",
        "REDIS_URL",
        "S3_ENDPOINT_URL",
        "S3_BUCKET",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    )
    if real.node is None:
        missing = [n for n in names if not os.environ.get(n)]
        if missing:
            pytest.fail(f"REALNODE_KUBECONFIG needs {', '.join(missing)}", pytrace=False)
        yield {n: os.environ[n] for n in names}
        return
    from tests.support import hostservices

    root = Path(tempfile.mkdtemp(prefix="charterflow-node-services-"))
    try:
        values, started = hostservices.start(root)
    except Exception as exc:
        pytest.fail(f"services on the node address: {exc}", pytrace=False)
    try:
        yield values
    finally:
        for proc in reversed(started):
            proc.stop()
        real_node.release_address("services")
        shutil.rmtree(root, ignore_errors=True)
