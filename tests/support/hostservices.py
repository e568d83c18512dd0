"""``make services`` / ``make services-down``: the test services outside pytest.

PostgreSQL (with pgvector), Redis and S3 (moto) from ``tests/support/services.py``, bound to
the real node's address (``tests/support/node.py``: a dummy interface this command brings up
when no node has yet), so that both this host and pods on the real node reach them. ``up``
prints ``export NAME=value`` lines; the processes keep running until ``down``.

CLI::

    python -m tests.support.hostservices up     # start (detached), print the exports
    python -m tests.support.hostservices down   # stop them, remove their data
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from tests.support import processes
from tests.support.cluster import _running, stop_recorded
from tests.support.node import NODE_IP, POD_CIDR, acquire_address, release_address
from tests.support.services import PostgresServer, RedisServer, S3Server

DATABASE = "charterflow"
BUCKET = "charterflow"


def default_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "charterflow" / "services"


def exports(pg: PostgresServer, redis: RedisServer, s3: S3Server) -> dict[str, str]:
    """The settings a CharterFlow (process or pod) uses to reach these services."""
    return {
        "DATABASE_URL": pg.url(DATABASE),
        "REDIS_URL": redis.url,
        "S3_ENDPOINT_URL": s3.endpoint,
        "S3_BUCKET": BUCKET,
        "S3_REGION": s3.region,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }


def start(root: Path) -> tuple[dict[str, str], list[processes.ManagedProcess]]:
    """Start the three services on NODE_IP under ``root``; returns the exports and processes."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # noqa: S103 - PostgreSQL's system user must enter it
    acquire_address("services", str(root))
    started: list[processes.ManagedProcess] = []
    try:
        pg = PostgresServer(root / "pg", host=NODE_IP, clients=(POD_CIDR, f"{NODE_IP}/32"))
        pg.start()
        started.append(pg.proc)  # type: ignore[arg-type]
        pg.create_database(DATABASE)
        redis = RedisServer(root / "redis", host=NODE_IP).start()
        started.append(redis.proc)  # type: ignore[arg-type]
        s3 = S3Server(root / "s3", host=NODE_IP).start()
        started.append(s3.proc)  # type: ignore[arg-type]
        s3.create_bucket(BUCKET)
    except BaseException:
        for proc in reversed(started):
            proc.stop()
        release_address("services")
        raise
    return exports(pg, redis, s3), started


def _up(root: Path) -> int:
    state = root / "pids.json"
    if state.exists():
        print(f"services already up in {root}:", file=sys.stderr)
        print((root / "exports.sh").read_text(), end="")
        return 0
    shutil.rmtree(root, ignore_errors=True)
    values, started = start(root)
    for proc in started:
        processes.disown(proc)
    recorded = [
        {"name": p.name, "pid": p.proc.pid, "exe": str(Path(p.argv[0]).resolve())}
        for p in started
        if p.proc is not None
    ]
    state.write_text(json.dumps({"processes": recorded}, indent=2) + "\n")
    text = "".join(f"export {name}={value}\n" for name, value in values.items())
    (root / "exports.sh").write_text(text)
    print(text, end="")
    return 0


def _down(root: Path) -> int:
    stopped = stop_recorded(root)
    release_address("services")
    shutil.rmtree(root, ignore_errors=True)
    print(f"stopped {', '.join(stopped) or 'nothing'}", file=sys.stderr)
    return 0


def running(root: Path) -> bool:
    """Every recorded service process is alive."""
    try:
        state = json.loads((root / "pids.json").read_text())
    except OSError:
        return False
    return all(_running(p["pid"], p["exe"]) for p in state["processes"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.hostservices")
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args(argv)
    root = args.dir or default_dir()
    return (_up if args.command == "up" else _down)(root)


if __name__ == "__main__":
    sys.exit(main())
