"""`charterflow dev` as a person runs it (through `make dev`): a real process on a real port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.processes import free_port, wait_until


def start_dev(cwd: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "S3_"))}
    env.update({"PORT": str(port), "CHARTERFLOW_ENV": "development"})
    return subprocess.Popen(
        [sys.executable, "-m", "charterflow", "dev"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_with_ctrl_c(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    return out


def test_dev_serves_health_with_seed_defaults_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_dev(tmp_path, port)
    try:
        wait_until(lambda: httpx.get(f"{base}/health/live").status_code == 200, 60, "dev server")
        ready = httpx.get(f"{base}/health/ready")
        assert ready.status_code == 200
        checks = ready.json()["checks"]
        assert checks["database"]["status"] == "ok"
        assert checks["storage"]["status"] == "ok"
        assert checks["redis"]["status"] == "not_configured"
    finally:
        out = stop_with_ctrl_c(proc)
    assert proc.returncode == 0, out
    assert f"http://localhost:{port}" in out  # the URL is printed for the person
    assert (tmp_path / "data" / "app.db").is_file()  # the seed's ./data/app.db
    assert (tmp_path / "uploads").is_dir()
