"""Vendoring pdf.js: the pinned tarball is checked against its sha512 before a file of it is
used, only the listed files are copied, and a stamp says which version is in place."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path

import pytest
from charterflow.web import vendor


def _tgz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _package(data: bytes) -> vendor.NpmPackage:
    digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
    return vendor.NpmPackage(
        name="demo", version="1.0.0", integrity=f"sha512-{digest}", into="demo",
        files=("LICENSE", "build/a.mjs", "fonts/"),
    )  # fmt: skip


FILES = {
    "package/LICENSE": b"Apache-2.0",
    "package/build/a.mjs": b"export const a = 1;",
    "package/build/a.mjs.map": b"{}",
    "package/fonts/x.pfb": b"font",
    "package/../escape": b"no",
}


def test_the_pin_is_the_registrys_tarball_of_pdfjs() -> None:
    assert vendor.PDFJS.tarball == (
        f"https://registry.npmjs.org/pdfjs-dist/-/pdfjs-dist-{vendor.PDFJS.version}.tgz"
    )
    assert vendor.PDFJS.integrity.startswith("sha512-")
    assert "legacy/build/pdf.worker.min.mjs" in vendor.PDFJS.files


def test_a_tampered_tarball_is_refused() -> None:
    data = _tgz(FILES)
    package = _package(data)
    vendor.check_integrity(data, package.integrity)
    with pytest.raises(vendor.VendorError, match="integrity mismatch"):
        vendor.check_integrity(data + b"x", package.integrity)
    with pytest.raises(vendor.VendorError, match="unsupported"):
        vendor.check_integrity(data, "sha1-abc")


def test_only_the_listed_files_are_copied_and_stamped(tmp_path: Path) -> None:
    data = _tgz(FILES)
    package = _package(data)
    target = tmp_path / "demo"
    copied = vendor.extract(package, data, target)
    assert sorted(copied) == ["LICENSE", "build/a.mjs", "fonts/x.pfb"]
    assert (target / "build/a.mjs").read_bytes() == b"export const a = 1;"
    assert not (target / "build/a.mjs.map").exists()
    assert not (tmp_path / "escape").exists()
    assert vendor.is_current(package, tmp_path)
    other = vendor.NpmPackage(**{**package.__dict__, "integrity": "sha512-other"})
    assert not vendor.is_current(other, tmp_path)


def test_a_missing_file_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    data = _tgz({"package/LICENSE": b"x"})
    with pytest.raises(vendor.VendorError, match=r"has no build/a\.mjs"):
        vendor.extract(_package(data), data, tmp_path / "demo")
    assert list(tmp_path.iterdir()) == []


def test_the_cache_is_used_and_a_damaged_entry_refetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    data = _tgz(FILES)
    package = _package(data)
    fetched: list[str] = []

    def download(url: str) -> bytes:  # stands in for the registry: no network in unit tests
        fetched.append(url)
        return data

    monkeypatch.setattr(vendor, "_download", download)
    assert vendor.tarball(package) == data
    assert vendor.tarball(package) == data
    assert len(fetched) == 1  # the second came from the cache
    cached = tmp_path / "charterflow" / "npm" / "demo-1.0.0.tgz"
    cached.write_bytes(b"damaged")
    assert vendor.tarball(package) == data
    assert len(fetched) == 2
