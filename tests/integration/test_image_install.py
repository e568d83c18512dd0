"""Run the build stage of each Dockerfile on this machine, to prove its install step works.

No Docker engine runs here, so the build stage's RUN lines are executed as they are written, with
the image paths (/opt/charterflow, /src) mapped to temporary directories. The build context is
assembled from .dockerignore, so a file the image needs but the context leaves out fails here.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.dockerfile import parse

ROOT = Path(__file__).resolve().parents[2]


def build_context(dest: Path) -> Path:
    """Copy what .dockerignore lets into the build context (deny-all, then the allowed paths)."""
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    allowed = [r[1:].rstrip("/") for r in rules if r.startswith("!")]
    ignored = [r for r in rules if not r.startswith("!") and r != "*"]

    def skip(_dir: str, names: list[str]) -> set[str]:
        return {n for n in names if any(fnmatch.fnmatch(n, p.split("/")[-1]) for p in ignored)}

    dest.mkdir(parents=True)
    for name in allowed:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=skip)
        else:
            shutil.copy2(src, dest / name)
    return dest


@pytest.mark.parametrize(
    ("dockerfile", "entrypoint"),
    [("Dockerfile.app", "charterflow"), ("Dockerfile.operator", "charterflow-operator")],
)
def test_build_stage_installs_a_working_entrypoint(
    tmp_path: Path, dockerfile: str, entrypoint: str
) -> None:
    parsed = parse(ROOT / dockerfile)
    build = parsed.stages[0]
    context = build_context(tmp_path / "src")
    prefix = tmp_path / "opt"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for run in build.all("RUN"):
        command = run.value.replace("/opt/charterflow", str(prefix)).replace("/src", str(context))
        command = command.replace("python -m venv", f"{sys.executable} -m venv")
        done = subprocess.run(
            ["bash", "-ec", command], env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, f"{dockerfile}: RUN {run.value}\n{done.stderr[-3000:]}"

    program = prefix / "bin" / entrypoint
    assert program.exists(), f"{dockerfile} installs no {entrypoint}"
    helped = subprocess.run([program, "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0, helped.stderr[-2000:]
    assert "usage" in helped.stdout.lower()
    if entrypoint == "charterflow":  # the default embedder's weights are in the image
        found = subprocess.run(
            [prefix / "bin" / "python", "-c", "from charterflow.ingest.minilm import model_zip; "
             "print(model_zip().stat().st_size)"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert found.returncode == 0, found.stderr[-2000:]
        assert int(found.stdout) > 50_000_000
