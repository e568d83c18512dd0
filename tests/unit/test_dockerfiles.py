"""Static checks of Dockerfile.app and Dockerfile.operator (no Docker engine runs here)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.support import images
from tests.support.dockerfile import parse

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {"Dockerfile.app": "charterflow", "Dockerfile.operator": "charterflow-operator"}
PINNED = re.compile(r"^[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?$")


@pytest.fixture(params=sorted(DOCKERFILES))
def dockerfile(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param, DOCKERFILES[request.param]


def test_every_base_image_is_pinned_to_a_full_version(dockerfile: tuple[str, str]) -> None:
    parsed = parse(ROOT / dockerfile[0])
    assert len(parsed.stages) >= 2, "multi-stage: build and runtime"
    for stage in parsed.stages:
        base = parsed.resolve(stage.base)
        assert PINNED.match(base), f"{dockerfile[0]}: base image {base!r} is not pinned"
        assert ":latest" not in base


def test_runtime_stage_runs_as_a_numeric_non_root_user(dockerfile: tuple[str, str]) -> None:
    final = parse(ROOT / dockerfile[0]).final
    user = final.last("USER")
    assert user is not None, "no USER in the final stage"
    uid = user.value.split(":")[0]
    assert uid.isdigit(), f"USER {user.value!r}: a numeric uid lets runAsNonRoot verify it"
    assert int(uid) != 0, f"USER {user.value!r} is root"


def test_no_remote_add_and_no_compilers_in_the_runtime(dockerfile: tuple[str, str]) -> None:
    parsed = parse(ROOT / dockerfile[0])
    for stage in parsed.stages:
        for add in stage.all("ADD"):
            assert "://" not in add.value, f"ADD of a URL: {add.value}"
    runtime_runs = " ".join(i.value for i in parsed.final.all("RUN"))
    for compiler in ("build-essential", "gcc", "g++", "clang", "python3-dev"):
        assert not re.search(rf"\b{re.escape(compiler)}\b", runtime_runs), compiler


def test_oci_labels_are_set(dockerfile: tuple[str, str]) -> None:
    labels = " ".join(i.value for i in parse(ROOT / dockerfile[0]).final.all("LABEL"))
    for key in ("title", "version", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_entrypoint_is_a_declared_console_script(dockerfile: tuple[str, str]) -> None:
    entrypoint = parse(ROOT / dockerfile[0]).final.last("ENTRYPOINT")
    assert entrypoint is not None
    program = entrypoint.exec_form()[0]
    assert program == dockerfile[1]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert program in scripts, f"{program} is not a console script in pyproject.toml"


def test_dockerignore_keeps_the_context_to_the_sources() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "deny by default, then allow the sources"
    for needed in ("!pyproject.toml", "!requirements-model.txt", "!app/", "!operator/"):
        assert needed in rules


def test_image_cache_key_covers_exactly_the_build_context() -> None:
    """`make images` rebuilds when a file of the context changes, and only then."""
    files = images.context_files()
    assert {"pyproject.toml", "README.md", "app/charterflow/__init__.py"} <= set(files)
    assert any(f.startswith("operator/charterflow_operator/") for f in files)
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    assert not [f for f in files if f.startswith(("tests/", ".venv/", ".git/", "docs/"))]
