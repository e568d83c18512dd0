"""``make cluster NODE=real`` / ``make cluster-down``: up, Ready, and nothing left behind.

Runs before the session's real node starts (only one real node runs per machine), through the
same CLI the Makefile calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support import node as real_node
from tests.support.cluster import REPO


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.support.cluster", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.skipif(bool(os.environ.get("REALNODE_KUBECONFIG")), reason="an outside cluster")
def test_cluster_up_real_then_down_leaves_nothing() -> None:
    # A short path: the kubelet's unix sockets live under it (108 bytes at most).
    root = Path(tempfile.mkdtemp(prefix="cf-cli-")) / "cluster"
    up = _cli("up", "--node", "real", "--dir", str(root))
    try:
        assert up.returncode == 0, up.stderr
        assert up.stdout.startswith("export KUBECONFIG=")
        state = json.loads((root / "node.json").read_text())
        pids = [p["pid"] for p in state["processes"]]
        assert {p["name"] for p in state["processes"]} == {"containerd", "kubelet", "kube-proxy"}
        created = real_node.leftovers(root)
        assert any(item.startswith("interface") for item in created), created
        assert any("KUBE-" in item for item in created), created
        assert any(item.startswith("mount") for item in created), created
    finally:
        down = _cli("down", "--dir", str(root))
    assert down.returncode == 0, down.stderr
    assert real_node.leftovers(root) == []
    assert [pid for pid in pids if Path(f"/proc/{pid}").exists()] == []
    assert not root.exists()
