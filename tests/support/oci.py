"""Run a built image's container for real, without Docker: its docker-archive unpacked, run by runc.

The container gets what the chart's pods get: UID/GID 10001, a read-only root file system, no
capabilities, ``no_new_privs``, and one writable tmpfs at /tmp. It has its own PID, mount, IPC and
UTS namespaces and shares the host's network (tests reach it on 127.0.0.1). runc keeps its state
under a directory of its own, so no other runc or containerd user on the machine is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

#: What the pods run as (charts/…/values.yaml securityContext).
UID = GID = 10001


@dataclass
class Image:
    """An image unpacked from its docker-archive: the root file system and the image config."""

    rootfs: Path
    config: dict = field(default_factory=dict)

    @property
    def env(self) -> list[str]:
        return list(self.config.get("Env") or [])

    @property
    def entrypoint(self) -> list[str]:
        return list(self.config.get("Entrypoint") or [])


def _whiteout(dest: Path, member: tarfile.TarInfo) -> bool:
    """Apply an OCI whiteout (``.wh.NAME`` deletes NAME, ``.wh..wh..opq`` empties the directory)."""
    path = Path(member.name)
    if not path.name.startswith(".wh."):
        return False
    parent = dest / path.parent
    targets = list(parent.iterdir()) if path.name == ".wh..wh..opq" else [parent / path.name[4:]]
    for target in targets:
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    return True


def _confined(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """Refuse what would land outside the root file system (even through an absolute symlink
    in it), but keep modes and owners as shipped: a 1777 /tmp must stay 1777."""
    tarfile.tar_filter(member, dest)  # raises tarfile.FilterError
    return member


def unpack(archive: Path, dest: Path) -> Image:
    """Unpack a docker-archive's layers in order into ``dest``: the image exactly as shipped."""
    dest.mkdir(parents=True)
    rootfs = dest / "rootfs"
    rootfs.mkdir()
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = json.load(outer.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer)) as tar:
                members = [m for m in tar.getmembers() if not _whiteout(rootfs, m)]
                tar.extractall(rootfs, members, numeric_owner=True, filter=_confined)  # noqa: S202
    return Image(rootfs=rootfs, config=config.get("config", {}))


def _spec(image: Image, args: list[str], env: dict[str, str]) -> dict:
    """The runtime spec: ``runc spec``'s defaults, hardened like the chart's pod securityContext."""
    merged = dict(item.split("=", 1) for item in image.env)
    merged.update(env)
    none: list[str] = []
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": UID, "gid": GID},
            "args": args,
            "env": [f"{k}={v}" for k, v in merged.items()],
            "cwd": image.config.get("WorkingDir") or "/",
            "capabilities": {
                "bounding": none,
                "effective": none,
                "inheritable": none,
                "permitted": none,
                "ambient": none,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096}],
            "noNewPrivileges": True,
        },
        "root": {"path": str(image.rootfs), "readonly": True},
        "hostname": "charterflow",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            {
                "destination": "/tmp",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "nodev", "mode=1777", "size=262144k"],
            },
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/sched_debug",
                "/sys/firmware",
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },
    }


class Runner:
    """Runs containers of unpacked images with runc; its state lives under ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.state = workdir / "runc-state"
        self.state.mkdir(parents=True, exist_ok=True)
        self.runc = shutil.which("runc") or "runc"

    def _bundle(self, image: Image, args: list[str], env: dict[str, str]) -> tuple[str, Path]:
        name = f"cf-{uuid.uuid4().hex[:10]}"
        bundle = self.workdir / name
        bundle.mkdir()
        (bundle / "config.json").write_text(json.dumps(_spec(image, args, env)))
        return name, bundle

    def _cmd(self, *args: str) -> list[str]:
        return [self.runc, "--root", str(self.state), *args]

    def run(
        self,
        image: Image,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run a container to its end (``args`` default to the image's entrypoint)."""
        name, bundle = self._bundle(image, args or image.entrypoint, env or {})
        try:
            return subprocess.run(
                self._cmd("run", "--bundle", str(bundle), name),
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        finally:
            self.delete(name)

    def start(
        self, image: Image, args: list[str], env: dict[str, str], log: Path
    ) -> tuple[str, subprocess.Popen[bytes]]:
        """Start a long-running container; returns its name and the ``runc run`` process."""
        name, bundle = self._bundle(image, args, env)
        with log.open("wb") as out:
            process = subprocess.Popen(
                self._cmd("run", "--bundle", str(bundle), name),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return name, process

    def stop(self, name: str, process: subprocess.Popen[bytes], timeout: float = 30) -> int:
        """SIGTERM the container (as the kubelet does), wait, then remove it."""
        subprocess.run(self._cmd("kill", name, "TERM"), capture_output=True, check=False)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            subprocess.run(self._cmd("kill", name, "KILL"), capture_output=True, check=False)
            return process.wait(timeout=10)
        finally:
            self.delete(name)

    def delete(self, name: str) -> None:
        subprocess.run(self._cmd("delete", "--force", name), capture_output=True, check=False)


def runc_available() -> str | None:
    """Why containers cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "runc needs root here (no rootless setup)"
    if not shutil.which("runc"):
        return "runc is missing (scripts/image-deps installs it)"
    return None
