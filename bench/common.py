"""What every benchmark shares: the machine description, statistics, results files, and the
real services (PostgreSQL + pgvector, Redis) started the way the test suite starts them."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charterflow.db import migrate_database
from charterflow.settings import Settings

from tests.support.services import PostgresServer, RedisServer, scratch_dir

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
JWT_SECRET = "bench-signing-key-" + "b" * 32
#: Settings no benchmark wants measured: rate limits high enough never to answer 429.
UNTHROTTLED: dict[str, Any] = {
    "rate_limit_per_minute": 1_000_000_000,
    "login_rate_limit_per_minute": 1_000_000_000,
    "register_rate_limit_per_minute": 1_000_000_000,
    "jwt_secret": JWT_SECRET,
}


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM and Python: the context without which no number means anything."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(ram_gib, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def load_average() -> list[float]:
    """1/5/15-minute load: shows how busy the machine was while we measured."""
    return [round(x, 2) for x in os.getloadavg()]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def ratio(value: float, baseline: float) -> float | None:
    return round(value / baseline, 3) if baseline else None


def write_result(name: str, data: dict[str, Any]) -> Path:
    """``bench/results/<name>.json``, with the machine and its load attached."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {**data, "machine": machine(), "load_average_after": load_average()}
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def read_results() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}


@dataclass
class Services:
    """Running PostgreSQL (pgvector) and Redis for one benchmark; scratch files under ``root``."""

    root: Path
    pg: PostgresServer
    redis: RedisServer | None

    def database(self, prefix: str) -> Settings:
        """Settings on a fresh, migrated database (local uploads in a scratch folder)."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        url = self.pg.create_database(name)
        settings = Settings(
            _env_file=None,
            database_url=url,
            redis_url=self.redis.url if self.redis else None,
            upload_path=self.root / name / "uploads",
            log_level="WARNING",
            **UNTHROTTLED,
        )
        return migrate_database(settings)


@contextmanager
def services(redis: bool = True) -> Iterator[Services]:
    """PostgreSQL (and Redis) on free loopback ports; stopped and deleted afterwards."""
    root = scratch_dir("bench")
    os.chmod(root, 0o755)  # noqa: S103 - as root, PostgreSQL runs as a system user that enters it
    pg = PostgresServer(root / "pg").start()
    server = None
    try:
        server = RedisServer(root / "redis").start() if redis else None
        yield Services(root, pg, server)
    finally:
        if server:
            server.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def app_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a ``charterflow`` subprocess reads ``settings`` from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        {
            "DATABASE_URL": settings.database_url,
            "UPLOAD_PATH": str(settings.upload_path),
            "JWT_SECRET": settings.jwt_secret.get_secret_value(),
            "RATE_LIMIT_PER_MINUTE": str(settings.rate_limit_per_minute),
            "LOGIN_RATE_LIMIT_PER_MINUTE": str(settings.login_rate_limit_per_minute),
            "REGISTER_RATE_LIMIT_PER_MINUTE": str(settings.register_rate_limit_per_minute),
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
        }
    )
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    return {**env, **extra}
