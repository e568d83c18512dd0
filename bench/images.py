"""Image build times and sizes (``make bench``): read from what ``make images`` recorded.

A cold build (Debian bootstrap, both pip installs) takes minutes and needs the network, so it is
not repeated here: ``make images`` records the wall time of its last cold run in
``~/.cache/charterflow/images/build.json`` with the time it happened, and this benchmark reports
it, dated. What it measures itself is the warm case: ``make images`` with nothing changed, which
hashes the build contexts and finds both images fresh. Sizes are the docker-archives' (every layer,
uncompressed), what a node imports.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import median
from tests.support import images


def run(repeats: int = 3) -> dict[str, Any]:
    images.build()  # brings the cache up to date first; the runs below are then warm
    warm = []
    for _ in range(repeats):
        started = time.monotonic()
        images.build()
        warm.append(round(time.monotonic() - started, 3))
    record = images.record()
    version = images.version()
    built = {
        image.name: {
            "ref": image.ref(version),
            "mb": round(record[image.name]["bytes"] / 1e6, 1),
            "build_seconds": round(record[image.name]["build_seconds"], 1),
            "built_at": record[image.name].get("built_at"),
        }
        for image in images.IMAGES
    }
    return {
        "images": built,
        "base": record.get("base", {}),
        "cold": record.get("cold_run", {}),
        "warm_seconds": {"median": median(warm), "runs": warm},
        "goals_mb": {"charterflow": 350, "charterflow-operator": 200},
    }
