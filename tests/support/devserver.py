"""``charterflow dev`` (SQLite, local uploads, in-process ingestion) in a scratch folder,
exactly as a developer runs it: for the browser tests and the streaming benchmark."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.processes import ManagedProcess, free_port


@contextmanager
def dev_server(
    home: Path, port: int | None = None, **extra_env: str
) -> Iterator[tuple[str, ManagedProcess]]:
    """The server's base URL and process, once ``/health/live`` answers; ``extra_env``
    overrides the defaults (generous rate limits, a fixed signing key). ``port``: when the URL
    must be known first (an OpenID provider's redirect URI); a free one otherwise."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "S3_"))}
    env.update(
        PORT=str(port),
        CHARTERFLOW_ENV="development",
        DATABASE_URL=f"sqlite:{home / 'app.db'}",
        UPLOAD_PATH=str(home / "uploads"),
        JWT_SECRET="dev-server-signing-key-" + "k" * 32,
        RATE_LIMIT_PER_MINUTE="100000",
        LOGIN_RATE_LIMIT_PER_MINUTE="100000",
        REGISTER_RATE_LIMIT_PER_MINUTE="100000",
        LOG_FORMAT="console",
    )
    env.update(extra_env)
    proc = ManagedProcess(
        "charterflow dev",
        [sys.executable, "-m", "charterflow", "dev"],
        home / "server.log",
        env,
        home,
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        proc.wait_ready(lambda: httpx.get(f"{url}/health/live").status_code == 200, timeout=120)
        yield url, proc
    finally:
        proc.stop()
