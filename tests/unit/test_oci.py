"""Unpacking a docker-archive applies its layers in order, whiteouts included."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from tests.support import oci


def _layer(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def _archive(path: Path, layers: list[bytes], config: dict) -> Path:
    with tarfile.open(path, "w") as tar:
        entries = {"config.json": json.dumps({"config": config}).encode()}
        entries |= {f"l{i}.tar": layer for i, layer in enumerate(layers)}
        manifest = [{"Config": "config.json", "Layers": [f"l{i}.tar" for i in range(len(layers))]}]
        entries["manifest.json"] = json.dumps(manifest).encode()
        for name, body in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return path


def test_layers_apply_in_order_with_file_and_opaque_whiteouts(tmp_path: Path) -> None:
    first = _layer({"a/keep": b"1", "a/gone": b"2", "b/old": b"3", "c": b"old"})
    second = _layer({"a/.wh.gone": b"", "b/.wh..wh..opq": b"", "b/new": b"4", "c": b"new"})
    archive = _archive(tmp_path / "img.tar", [first, second], {"Entrypoint": ["x"], "Env": ["A=1"]})

    image = oci.unpack(archive, tmp_path / "out")

    files = sorted(p.relative_to(image.rootfs).as_posix() for p in image.rootfs.rglob("*"))
    assert files == ["a", "a/keep", "b", "b/new", "c"]
    assert (image.rootfs / "c").read_text() == "new"
    assert image.entrypoint == ["x"]
    assert image.env == ["A=1"]
