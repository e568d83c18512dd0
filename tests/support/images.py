"""Build the charterflow and charterflow-operator images here, without Docker (``make images``).

Dockerfile.app and Dockerfile.operator stay ordinary Dockerfiles (``FROM python:3.11-slim…``).
No registry of images is reachable here, so their ``PYTHON_IMAGE`` base is bootstrapped from
Debian: ``mmdebstrap`` (bookworm, minbase, python3.11) laid out like the official image as far as
the Dockerfiles rely on it (``python`` on PATH, apt that works). ``buildah`` (chroot isolation,
host network, the host's CA bundle mounted read-only for pip) builds both Dockerfiles from it.

Everything is cached outside the repository under ``~/.cache/charterflow/images`` (or
``$CHARTERFLOW_IMAGE_CACHE``), keyed by its inputs and built under one lock:

- ``storage/``: buildah's own image store (``--root``; overlay driver, vfs with
  ``CHARTERFLOW_STORAGE_DRIVER=vfs``);
- the base image, tagged ``localhost/charterflow-base:<key>``, key = hash of its recipe
  (suite, mirror, package list, hook);
- ``<name>-<version>.tar``: each image as a docker-archive whose ref is ``<name>:<version>``,
  rebuilt only when the hash of its Dockerfile, build context (what .dockerignore lets in), base
  and version changes. ``ctr -n k8s.io images import <file>`` makes it runnable by containerd;
- ``build.json``: each image's key, ID, size and the seconds its last cold and warm builds took
  (read by the benchmarks).

    python -m tests.support.images [build] [--print-archives] [--force] [--prune]

The store keeps older builds' layers (they speed up the next build); ``--prune`` drops them.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(
    os.environ.get("CHARTERFLOW_IMAGE_CACHE", Path.home() / ".cache" / "charterflow" / "images")
)
STORAGE_DRIVER = os.environ.get("CHARTERFLOW_STORAGE_DRIVER", "overlay")
#: The CA bundle pip inside a RUN step trusts (Debian's pip reads the system bundle): the host's,
#: so that whatever the host trusts on the way to the package index is trusted in the build too.
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

SUITE = "bookworm"
MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
#: What the Dockerfiles need from the official image: python (and venv with pip), TLS roots,
#: useradd/groupadd (passwd), and a merged /usr without usrmerge's Perl.
PACKAGES = ("python3.11", "python3.11-venv", "ca-certificates", "passwd", "usr-is-merged")
#: Layout of the official python image that the Dockerfiles rely on (python on PATH, apt lists
#: empty, no binary package caches left behind by apt: 80 MB a layer); no usrmerge (/usr is merged
#: already; it only drags in 47 MB of Perl), docs, man pages.
HOOK = (
    'printf \'Dir::Cache::pkgcache "";\\nDir::Cache::srcpkgcache "";\\n\' '
    '> "$1/etc/apt/apt.conf.d/docker-clean"; '
    'ln -sf /usr/bin/python3.11 "$1/usr/local/bin/python"; '
    'ln -sf /usr/bin/python3.11 "$1/usr/local/bin/python3"; '
    'chroot "$1" dpkg --purge usrmerge libfile-find-rule-perl libnumber-compare-perl '
    "libtext-glob-perl perl perl-modules-5.36 libperl5.36; "
    'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb '
    '"$1"/var/log/apt "$1"/var/log/dpkg.log "$1"/var/log/alternatives.log'
)
DPKG_OPTS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
)
BASE_CONFIG = ("PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")


@dataclass(frozen=True)
class Image:
    """One image that ``make images`` builds."""

    name: str
    dockerfile: str

    def ref(self, version: str) -> str:
        return f"{self.name}:{version}"

    def archive(self, version: str) -> Path:
        return CACHE / f"{self.name}-{version}.tar"


IMAGES = (
    Image("charterflow", "Dockerfile.app"),
    Image("charterflow-operator", "Dockerfile.operator"),
)


def version() -> str:
    """The package version (``charterflow.__version__``), read without importing the package."""
    text = (ROOT / "app" / "charterflow" / "__init__.py").read_text()
    found = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M)
    if not found:
        raise SystemExit("images: no __version__ in app/charterflow/__init__.py")
    return found.group(1)


def _store() -> list[str]:
    """buildah's flags for the cache's own image store (not the system's, which others may use)."""
    root, run = str(CACHE / "storage"), str(CACHE / "run")
    return ["--root", root, "--runroot", run, "--storage-driver", STORAGE_DRIVER]


def buildah(*args: str, capture: bool = True) -> str:
    """Run buildah on the cache's own image store (not the system's, which others may use)."""
    cmd = ["buildah", *_store(), *args]
    done = subprocess.run(cmd, stdout=subprocess.PIPE if capture else sys.stderr, text=True)
    if done.returncode:
        raise SystemExit(f"images: {' '.join(cmd)} failed (exit {done.returncode})")
    return done.stdout or ""


def image_id(ref: str) -> str | None:
    """The ID of ``ref`` in the image store, or None."""
    done = subprocess.run(
        [
            "buildah",
            *_store(),
            "inspect",
            "--type",
            "image",
            "--format",
            "{{.FromImageID}}",
            ref,
        ],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or None if done.returncode == 0 else None


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def base_key() -> str:
    """The base image's key: everything its recipe is made of."""
    return _digest(SUITE, MIRRORS, PACKAGES, HOOK, DPKG_OPTS, BASE_CONFIG)


def base_ref() -> str:
    return f"localhost/charterflow-base:{SUITE}-py3.11-{base_key()}"


def build_base(log: Path) -> None:
    """Bootstrap the Debian root file system with mmdebstrap and commit it as the base image."""
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        cmd = [
            "mmdebstrap",
            "--variant=minbase",
            "--include=" + ",".join(PACKAGES),
            *(f"--dpkgopt={opt}" for opt in DPKG_OPTS),
            f"--customize-hook={HOOK}",
            SUITE,
            str(tarball),
            *MIRRORS,
        ]
        with log.open("a") as out:
            done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode:
            raise SystemExit(f"images: mmdebstrap failed (exit {done.returncode}); see {log}")
        container = buildah("from", "scratch").strip()
        try:
            buildah("add", container, str(tarball), "/")
            config = [f"--env={env}" for env in BASE_CONFIG]
            buildah("config", *config, "--cmd", "python3", container)
            buildah("commit", "--rm", container, base_ref())
        except BaseException:
            subprocess.run(["buildah", *_store(), "rm", container], check=False)
            raise


def prune_stale_bases(current: str) -> None:
    """Drop older base images and the layers cached on them: nothing builds on them any more."""
    names = buildah("images", "--format", "{{.Name}}:{{.Tag}}").split()
    stale = [n for n in names if n.startswith(current.split(":")[0] + ":") and n != current]
    if stale:
        buildah("rmi", "--force", *stale)
    subprocess.run(["buildah", *_store(), "rmi", "--prune"], capture_output=True, check=False)


def _ignore_rules() -> list[tuple[bool, str, re.Pattern[str]]]:
    """.dockerignore as (negated, pattern, regex), in order: the last rule that matches decides."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = (line[1:] if negated else line).strip().strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        # A rule that matches a directory matches everything in it.
        rules.append((negated, pattern, re.compile(regex + "(?:/.*)?$")))
    return rules


def context_files() -> list[str]:
    """The files of the build context, selected by .dockerignore as docker and buildah do."""
    rules = _ignore_rules()

    def excluded(rel: str) -> bool:
        out = False
        for negated, _pattern, regex in rules:
            if regex.match(rel):
                out = not negated
        return out

    def may_hold_included(rel: str) -> bool:
        """Whether a "!" rule could still let in something under the excluded directory rel."""
        parts = rel.split("/")
        for negated, pattern, _regex in rules:
            if not negated:
                continue
            segments = pattern.split("/")
            for part, segment in zip(parts, segments, strict=False):
                if segment == "**":
                    return True
                if not fnmatch.fnmatchcase(part, segment):
                    break
            else:
                return True
        return False

    files = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        here = Path(dirpath).relative_to(ROOT).as_posix()
        prefix = "" if here == "." else here + "/"
        dirnames[:] = sorted(
            d for d in dirnames if not excluded(prefix + d) or may_hold_included(prefix + d)
        )
        files += [prefix + f for f in filenames if not excluded(prefix + f)]
    return sorted(files)


def image_key(image: Image, base_id: str, ver: str) -> str:
    """An image's key: its Dockerfile, base, version and every byte of its build context."""
    files = []
    for rel in context_files():
        path = ROOT / rel
        files.append((rel, os.access(path, os.X_OK), hashlib.sha256(path.read_bytes()).hexdigest()))
    return _digest((ROOT / image.dockerfile).read_text(), base_id, ver, files)


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """One build at a time on this machine: two would race on the store and the archives."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def record() -> dict:
    """What the last builds recorded (build.json), or an empty record."""
    try:
        return json.loads((CACHE / "build.json").read_text())
    except (OSError, ValueError):
        return {}


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def _save(data: dict) -> None:
    tmp = CACHE / "build.json.tmp"
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(CACHE / "build.json")


def build(force: bool = False) -> list[Image]:
    """Build what is missing or stale; returns the images (all present afterwards)."""
    ver = version()
    for tool in ("buildah", "mmdebstrap"):
        if not shutil.which(tool):
            raise SystemExit(f"images: {tool} is missing (scripts/image-deps installs it)")
    log = CACHE / "build.log"
    with locked():
        data = record()
        started = time.monotonic()
        base = base_ref()
        base_id = image_id(base)
        base_built = base_id is None or force
        built: list[str] = []
        if base_built:
            print(f"images: bootstrapping {base} (mmdebstrap, ~2 min)", file=sys.stderr)
            build_base(log)
            base_id = image_id(base)
            prune_stale_bases(base)
            data["base"] = {
                "ref": base,
                "key": base_key(),
                "seconds": round(time.monotonic() - started, 1),
                "built_at": _now(),
            }
        for image in IMAGES:
            began = time.monotonic()
            key = image_key(image, base_id or "", ver)
            entry = data.get(image.name, {})
            archive = image.archive(ver)
            fresh = (
                not force
                and entry.get("key") == key
                and archive.exists()
                and image_id(f"localhost/{image.ref(ver)}") == entry.get("id")
            )
            if not fresh:
                print(f"images: building {image.ref(ver)} from {image.dockerfile}", file=sys.stderr)
                buildah(
                    "build",
                    "--isolation",
                    "chroot",
                    "--network",
                    "host",
                    "--layers",
                    *(
                        ["--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
                        if Path(CA_BUNDLE).exists()
                        else []
                    ),
                    "--build-arg",
                    f"PYTHON_IMAGE={base}",
                    "--build-arg",
                    f"VERSION={ver}",
                    "--file",
                    str(ROOT / image.dockerfile),
                    "--tag",
                    image.ref(ver),
                    str(ROOT),
                    capture=False,
                )
                tmp = archive.with_suffix(".tar.tmp")
                tmp.unlink(missing_ok=True)
                buildah("push", "--quiet", image.ref(ver), f"docker-archive:{tmp}:{image.ref(ver)}")
                tmp.replace(archive)
                entry = {
                    "key": key,
                    "id": image_id(f"localhost/{image.ref(ver)}"),
                    "ref": image.ref(ver),
                    "archive": str(archive),
                    "bytes": archive.stat().st_size,
                    "build_seconds": round(time.monotonic() - began, 1),
                    "built_at": _now(),
                }
                built.append(image.name)
            data[image.name] = entry
        # A cold run: the base and both images built from nothing (make bench reports it).
        total = time.monotonic() - started
        if built == [image.name for image in IMAGES] and base_built:
            data["cold_run"] = {"seconds": round(total, 1), "at": _now()}
        _save(data)
    return list(IMAGES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.images", description=__doc__.splitlines()[0]
    )
    parser.add_argument("command", nargs="?", default="build", choices=["build"])
    parser.add_argument(
        "--print-archives",
        action="store_true",
        help="print the docker-archive paths instead of the refs",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even what is fresh")
    parser.add_argument(
        "--prune",
        action="store_true",
        help="first drop untagged images (older builds, layer caches) from the store",
    )
    args = parser.parse_args(argv)
    if args.prune:
        with locked():
            buildah("rmi", "--prune")
    images = build(force=args.force)
    ver = version()
    for image in images:
        print(image.archive(ver) if args.print_archives else image.ref(ver))
    return 0


if __name__ == "__main__":
    sys.exit(main())
