"""Hostile requests against a running API (issue 26, item 3 and 4): what oversized JSON bodies
and charter edits cost the server.

The API runs as ``charterflow serve`` in a process of its own (development settings, SQLite,
the hashing embedder), so its peak RSS (``VmHWM``, reset through ``/proc/<pid>/clear_refs``)
is the server's alone.

- JSON bodies: four clients each send a 50 MB JSON login at once; with ``MAX_JSON_BYTES``
  they are refused (413) unparsed. Recorded: the server's peak RSS over its idle RSS.
- Charter history: bytes the database grows (and the versions' stored sections grow) per
  edit of a 50 kB section, and per 40-byte edit of another section beside it (the attack of
  item 4: versions share unchanged sections, so the large one is not stored again), and
  what a charter larger than ``MAX_CHARTER_BYTES`` gets.

    python -m bench.hostile_http
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import free_port, wait_until

API = "/api/v1"
MB = 1000 * 1000
BRIEF = (
    b"Harbor intake brief.\n"
    b"The problem is that volunteers lose track of donated food because intake is recorded on "
    b"paper.\nOur users are the pantry volunteers and the warehouse coordinators.\n"
)


def _rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _db_bytes(root: Path) -> int:
    """The database's size once its write-ahead log is checkpointed: what it stores, not the
    log's churn (each save rewrites the charter row, its pages reused after a checkpoint)."""
    with sqlite3.connect(root / "app.db") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in root.glob("app.db*"))


def _version_bytes(root: Path) -> int:
    """The bytes of every charter version's title and sections, as stored."""
    with sqlite3.connect(root / "app.db") as db:
        row = db.execute(
            "SELECT coalesce(sum(length(CAST(title AS BLOB)) + length(CAST(sections AS BLOB))), 0)"
            " FROM charter_versions"
        ).fetchone()
    return int(row[0])


def _serve(root: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CHARTERFLOW_", "DATABASE"))},
        "DATABASE_URL": f"sqlite:{root}/app.db",
        "UPLOAD_PATH": str(root / "uploads"),
        "EMBEDDINGS_PROVIDER": "hashing",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_PER_MINUTE": "100000",
        "LOGIN_RATE_LIMIT_PER_MINUTE": "100000",
        "REGISTER_RATE_LIMIT_PER_MINUTE": "100000",
    }
    cli = [sys.executable, "-m", "charterflow.cli"]
    subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True)
    return subprocess.Popen([*cli, "serve", "--port", str(port)], env=env)


def _json_bodies(client: httpx.Client, pid: int) -> dict[str, Any]:
    idle = _rss_kb(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # peak RSS := current RSS
    body = b'{"email": "a@example.com", "password": "' + b"x" * (50 * MB) + b'"}'

    def send(_: int) -> int:
        with httpx.Client(base_url=str(client.base_url), timeout=120) as own:
            return own.post(
                f"{API}/auth/login", content=body, headers={"Content-Type": "application/json"}
            ).status_code

    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(send, range(4)))
    seconds = time.perf_counter() - start
    live_start = time.perf_counter()
    client.get("/health/live")
    return {
        "clients": 4,
        "body_mb": 50,
        "statuses": codes,
        "idle_rss_mb": round(idle / 1024, 1),
        "peak_rss_over_idle_mb": round((_rss_kb(pid, "VmHWM") - idle) / 1024, 1),
        "seconds": round(seconds, 2),
        "health_live_after_ms": round((time.perf_counter() - live_start) * 1000, 1),
    }


def _charter_history(client: httpx.Client, root: Path) -> dict[str, Any]:
    password = "bench password 1"  # a throwaway account of this run
    r = client.post(
        f"{API}/auth/register",
        json={"email": "bench@example.com", "password": password, "name": "Bench"},
    )
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    nb = client.post(f"{API}/notebooks", json={"title": "Bench"}, headers=headers).json()["id"]
    files = {"file": ("brief.txt", BRIEF, "text/plain")}
    doc = client.post(f"{API}/notebooks/{nb}/documents", files=files, headers=headers).json()
    wait_until(
        lambda: (
            client.get(f"{API}/documents/{doc['id']}", headers=headers).json()["status"] == "ready"
        ),
        120,
        "the brief to be ready",
    )
    body = {"template": "product-charter", "title": "Harbor"}
    charter = client.post(f"{API}/notebooks/{nb}/charters", json=body, headers=headers).json()
    key, other = (charter["sections"][i]["key"] for i in (0, 1))
    url = f"{API}/charters/{charter['id']}/sections/{key}"
    big = {"body": "word " * 9_999, "citations": "drop"}  # ~50 kB, the largest body allowed
    assert client.patch(url, json=big, headers=headers).status_code == 200
    edits = 25
    # The attack of item 4: tiny edits of another section beside the large one.
    before, stored = _db_bytes(root), _version_bytes(root)
    for n in range(edits):
        edit = {"body": f"A forty-byte edit of a section, no {n:04d}.", "citations": "drop"}
        r = client.patch(url.replace(f"/{key}", f"/{other}"), json=edit, headers=headers)
        assert r.status_code == 200
    beside = _db_bytes(root) - before
    beside_versions = _version_bytes(root) - stored
    # Edits of the large section itself: each version holds its new text.
    before, stored = _db_bytes(root), _version_bytes(root)
    for n in range(edits):
        edit = {"body": f"{'word ' * 9_990}edit {n:04d}.", "citations": "drop"}
        assert client.patch(url, json=edit, headers=headers).status_code == 200
    grown = _db_bytes(root) - before
    grown_versions = _version_bytes(root) - stored
    huge = {"body": "x" * 2 * MB, "citations": "drop"}
    return {
        "section_bytes": len(big["body"]),
        "edits": edits,
        "beside_db_growth_bytes": beside,
        "beside_bytes_per_edit": round(beside / edits),
        "beside_version_bytes_per_edit": round(beside_versions / edits),
        "db_growth_bytes": grown,
        "bytes_per_edit": round(grown / edits),
        "version_bytes_per_edit": round(grown_versions / edits),
        "two_mb_section_status": client.patch(url, json=huge, headers=headers).status_code,
        "versions_kept": client.get(
            f"{API}/charters/{charter['id']}/versions", headers=headers
        ).json()["total"],
    }


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cf-hostile-http-") as tmp:
        root, port = Path(tmp), free_port()
        server = _serve(root, port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                wait_until(_up(client), 60, "the API")
                json_bodies = _json_bodies(client, server.pid)
                history = _charter_history(client, root)
        finally:
            server.terminate()
            server.wait(30)
    return {"json_bodies": json_bodies, "charter_history": history}


def _up(client: httpx.Client) -> Any:
    def check() -> bool:
        try:
            return client.get("/health/live").status_code == 200
        except httpx.HTTPError:
            return False

    return check


def main() -> int:
    from bench.common import write_result

    result = run()
    print(write_result("hostile_http", result))
    print(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
