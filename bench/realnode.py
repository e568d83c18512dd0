"""The real-pod tier, measured: ``python -m bench --only realnode``.

Runs ``tests/realnode`` (which records its own timings in ``~/.cache/charterflow/
realnode-timings.json``: cluster + node Ready, image import, ``helm install`` to a Ready
operator pod, CharterFlow Ready on real pods, requests and failures under load during the
version bump and the pod deletion, HPA scale-out and scale-in) and adds the tier's wall time
and the node binaries' build time, cold (``scripts/node-binaries`` log of its first run, when
given) and warm (a cached run).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TIMINGS = Path.home() / ".cache" / "charterflow" / "realnode-timings.json"


def _warm_node_build() -> float:
    began = time.monotonic()
    subprocess.run([str(ROOT / "scripts" / "node-binaries")], check=True, capture_output=True)
    return round(time.monotonic() - began, 2)


def _cold_node_build() -> float | None:
    """Seconds of the first (cold) build, which scripts/node-binaries records next to it."""
    out = subprocess.run(
        [str(ROOT / "scripts" / "node-binaries"), "--print"], capture_output=True, text=True
    ).stdout.strip()
    recorded = Path(out).parent / "build-seconds"
    return float(recorded.read_text()) if recorded.exists() else None


def run() -> dict[str, Any]:
    TIMINGS.unlink(missing_ok=True)
    began = time.monotonic()
    tier = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/realnode", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        check=False,
    )
    wall = round(time.monotonic() - began, 1)
    if tier.returncode != 0:
        raise RuntimeError(f"tests/realnode failed (exit {tier.returncode})")
    return {
        "tier_wall_seconds": wall,
        "timings": json.loads(TIMINGS.read_text()),
        "node_build_warm_seconds": _warm_node_build(),
        "node_build_cold_seconds": _cold_node_build(),
    }
