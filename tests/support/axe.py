"""axe-core, the accessibility engine, from the npm registry into a cache outside the repo.

``npm install`` runs once per version under a lock (~/.cache/charterflow/axe-core-<v>); the
browser tests inject ``axe.min.js`` through the DevTools protocol (not a <script> tag, which
the app's Content-Security-Policy would rightly refuse) and fail on any violation.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

VERSION = "4.10.2"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "charterflow"


def axe_source() -> str:
    """The text of ``axe.min.js`` of axe-core ``VERSION`` (installed on first use)."""
    home = CACHE / f"axe-core-{VERSION}"
    script = home / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is missing: run `make system-deps` (scripts/system-deps)")
        CACHE.mkdir(parents=True, exist_ok=True)
        with open(CACHE / "axe-core.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not script.exists():
                home.mkdir(parents=True, exist_ok=True)
                subprocess.run(
                    [
                        npm,
                        "install",
                        "--prefix",
                        str(home),
                        "--no-save",
                        "--no-audit",
                        "--no-fund",
                        "--ignore-scripts",
                        f"axe-core@{VERSION}",
                    ],
                    check=True,
                    timeout=600,
                    capture_output=True,
                )
    return script.read_text()
