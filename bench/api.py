"""API throughput and latency, as a ratio to a bare FastAPI app measured in the same run.

``charterflow serve`` (production settings: JSON logs, one access-log line per request, Redis
rate limiting, PostgreSQL) and ``bench.hello`` (a bare FastAPI app) run side by side under
uvicorn with 1 and then 2 worker processes; the load comes from ``bench.load`` subprocesses.
Windows alternate between the two servers, so that a noisy neighbour hurts both alike.

Endpoints: ``/health/live`` (against the baseline), an authenticated notebook list (a page of
20), and ``ask`` (extractive) over a notebook of 10k chunks embedded by the default
(semantic) model, with 40 different questions in turn: under load (16 connections) and one
at a time (its latency).

    python -m bench.api [--duration 5] [--repeats 3] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from charterflow.retrieval.embedders import SemanticEmbedder
from charterflow.settings import Settings

from bench import corpus
from bench.common import (
    ROOT,
    app_env,
    median,
    ratio,
    services,
    write_result,
)
from bench.dataset import Owner, load_chunks, seed_owner
from tests.support.processes import ManagedProcess, free_port

CHUNKS = 10_000
NOTEBOOKS = 20
FEW = 4
QUESTIONS = 40


def start_server(
    name: str, argv: list[str], env: dict[str, str], log: Path
) -> tuple[ManagedProcess, str]:
    """Start a uvicorn server; returns it and its base URL once ``/health/live`` answers."""
    port = free_port()
    proc = ManagedProcess(name, [*argv, "--port", str(port)], log, env=env, cwd=ROOT).start()
    url = f"http://127.0.0.1:{port}"
    proc.wait_ready(lambda: httpx.get(f"{url}/health/live").status_code == 200, timeout=60)
    return proc, url


def load(url: str, *, connections: int, duration: float, **request: Any) -> dict[str, Any]:
    """One measurement window by a ``bench.load`` subprocess."""
    argv = [sys.executable, "-m", "bench.load", url, "--connections", str(connections)]
    argv += ["--duration", str(duration), "--warmup", "1"]
    if bodies := request.get("bodies"):
        argv += ["--method", "POST"]
        for body in bodies:
            argv += ["--body", json.dumps(body)]
    for header in request.get("headers", []):
        argv += ["--header", header]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    result: dict[str, Any] = json.loads(out)
    if result["ok"] != result["requests"]:
        raise RuntimeError(f"{url}: non-2xx answers {result['statuses']}")
    return result


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rps": round(median([r["rps"] for r in runs]), 1),
        "p50_ms": round(median([r["p50_ms"] for r in runs]), 2),
        "p99_ms": round(median([r["p99_ms"] for r in runs]), 2),
        "runs_rps": [r["rps"] for r in runs],
    }


def measure(
    settings: Settings,
    owner: Owner,
    workers: int,
    repeats: int,
    duration: float,
    connections: int,
    chunks: int = CHUNKS,
) -> list[dict[str, Any]]:
    logs = Path(settings.upload_path).parent
    hello_proc, hello = start_server(
        "bare FastAPI",
        [
            *(sys.executable, "-m", "uvicorn", "bench.hello:app", "--host", "127.0.0.1"),
            *("--workers", str(workers), "--no-access-log", "--log-level", "warning"),
        ],
        app_env(settings),
        logs / "hello.log",
    )
    app_proc, app = start_server(
        "charterflow serve",
        [
            sys.executable,
            "-m",
            "charterflow",
            "serve",
            "--host",
            "127.0.0.1",
            "--workers",
            f"{workers}",
        ],
        app_env(settings, CHARTERFLOW_ENV="production", LOG_LEVEL="INFO"),
        logs / "charterflow.log",
    )
    auth = [f"Authorization: Bearer {owner.token}"]
    questions = [{"question": q} for q in corpus.queries(QUESTIONS)]
    ask = f"{app}/api/v1/notebooks/{owner.notebook_id}/ask"
    cases: list[tuple[str, str, str, dict[str, Any]]] = [
        ("bare FastAPI", "/health/live", f"{hello}/health/live", {}),
        ("charterflow", "/health/live", f"{app}/health/live", {}),
        ("charterflow", "GET /api/v1/notebooks", f"{app}/api/v1/notebooks", {"headers": auth}),
        (  # fewer connections than the engine's pool (10): does concurrency itself cost?
            "charterflow",
            f"GET /api/v1/notebooks, {FEW} connections",
            f"{app}/api/v1/notebooks",
            {"headers": auth, "connections": FEW},
        ),
        (
            "charterflow",
            f"POST ask ({chunks:,} chunks)",
            ask,
            {"headers": auth, "bodies": questions},
        ),
        (
            "charterflow",
            f"POST ask ({chunks:,} chunks), 1 connection",
            ask,
            {"headers": auth, "bodies": questions, "connections": 1},
        ),
    ]
    runs: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(cases))}
    try:
        for _ in range(repeats):  # alternate servers within each repeat
            for i, (_, _, url, request) in enumerate(cases):
                request = {"connections": connections, **request}
                runs[i].append(load(url, duration=duration, **request))
    finally:
        app_proc.stop()
        hello_proc.stop()
    rows = []
    for i, (server, endpoint, _, _) in enumerate(cases):
        row = {"server": server, "workers": workers, "endpoint": endpoint}
        rows.append({**row, **summary(runs[i])})
        print(f"api: {rows[-1]}", flush=True)
    return rows


def run(repeats: int, duration: float, connections: int, chunks: int = CHUNKS) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with services() as svc:
        settings = svc.database("api")
        owner = seed_owner(settings, notebooks=NOTEBOOKS)
        load_chunks(settings, owner, chunks, model=SemanticEmbedder.name, with_sentences=True)
        for workers in (1, 2):
            rows += measure(settings, owner, workers, repeats, duration, connections, chunks)
    baseline = {
        r["workers"]: r["rps"]
        for r in rows
        if r["server"] == "bare FastAPI" and r["endpoint"] == "/health/live"
    }
    for r in rows:
        r["rps_vs_bare_fastapi"] = ratio(r["rps"], baseline[r["workers"]])
    return {
        "benchmark": "API requests per second and latency (uvicorn, HTTP/1.1 keep-alive)",
        "connections": connections,
        "window_seconds": duration,
        "repeats": repeats,
        "chunks": chunks,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--chunks", type=int, default=CHUNKS)
    args = parser.parse_args(argv)
    write_result("api", run(args.repeats, args.duration, args.connections, args.chunks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
