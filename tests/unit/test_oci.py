"""Unpacking a docker-archive applies its layers in order, whiteouts included."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from tests.support import oci


def _layer(files: dict[str, bytes], extra: tuple[tarfile.TarInfo, ...] = ()) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for info in extra:
            tar.addfile(info)
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def _entry(name: str, kind: bytes, mode: int = 0o755, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    return info


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


def test_modes_are_kept_and_nothing_lands_outside_the_root(tmp_path: Path) -> None:
    tmp = _entry("tmp", tarfile.DIRTYPE, 0o1777)
    escape = _entry("escape", tarfile.SYMTYPE, link=str(tmp_path / "outside"))
    ok = _archive(tmp_path / "ok.tar", [_layer({}, (tmp,))], {})
    assert (oci.unpack(ok, tmp_path / "ok").rootfs / "tmp").stat().st_mode & 0o7777 == 0o1777

    (tmp_path / "outside").mkdir()
    bad = _archive(tmp_path / "bad.tar", [_layer({}, (escape,)), _layer({"escape/x": b"!"})], {})
    with pytest.raises(tarfile.FilterError):
        oci.unpack(bad, tmp_path / "bad")
    assert not (tmp_path / "outside" / "x").exists()
