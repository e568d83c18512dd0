"""The built images, unpacked from the docker-archives that ``make images`` wrote, and a runner.

Without buildah, mmdebstrap or runc these tests fail under ``CI=true`` (naming what is missing)
and are skipped elsewhere, like every other test that needs something from the machine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import start_or_fail
from tests.support import images, oci


def _built() -> dict[str, Path]:
    """The archives of both images, built now if stale (seconds when ``make images`` ran)."""
    missing = [tool for tool in ("buildah", "mmdebstrap") if not shutil.which(tool)]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} missing (scripts/image-deps installs them)")
    if why := oci.runc_available():
        raise RuntimeError(why)
    version = images.version()
    try:
        images.build()
    except SystemExit as exc:
        raise RuntimeError(str(exc)) from None
    return {image.name: image.archive(version) for image in images.IMAGES}


@pytest.fixture(scope="session")
def archives() -> dict[str, Path]:
    return start_or_fail("The images (make images)", _built)


@pytest.fixture(scope="session")
def runner(tmp_path_factory: pytest.TempPathFactory) -> oci.Runner:
    return oci.Runner(tmp_path_factory.mktemp("runc"))


@pytest.fixture(scope="session")
def app_image(archives: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> oci.Image:
    return oci.unpack(archives["charterflow"], tmp_path_factory.mktemp("app") / "image")


@pytest.fixture(scope="session")
def operator_image(
    archives: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> oci.Image:
    return oci.unpack(archives["charterflow-operator"], tmp_path_factory.mktemp("op") / "image")
