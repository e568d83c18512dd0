"""Ingestion throughput: documents and chunks per second, with 1 and 2 worker processes.

200 mixed documents (PDF, DOCX, HTML, Markdown, text; 2-12 KB of text each) are uploaded once
through the real API, whose queue is parked on another Redis database so nothing consumes it.
Each measurement then resets the documents to ``pending``, starts ``charterflow worker``
processes on Redis + PostgreSQL, waits until they are healthy (so start-up is not measured),
sends the 200 ingest messages and times until every document is ``ready`` or ``failed``.

    python -m bench.ingestion [--documents 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import redis
from charterflow.ingest.actors import make_sender
from charterflow.settings import Settings
from sqlalchemy import create_engine, text

from bench import corpus
from bench.api import start_server
from bench.common import app_env, median, services, write_result
from bench.dataset import Owner, seed_owner
from tests.support.processes import ManagedProcess, free_port, wait_until

THREADS = 4  # WORKER_THREADS default
#: Embedders measured, with the share of the documents each ingests (the model costs ~70x
#: more per chunk than hashing, so it gets fewer documents to stay within minutes).
EMBEDDERS = {"semantic": 0.25, "hashing": 1.0}


def upload_all(settings: Settings, owner: Owner, count: int, logs: Path) -> list[str]:
    """Upload ``count`` documents through the API; returns their ids."""
    parked = (settings.redis_url or "").rsplit("/", 1)[0] + "/1"
    proc, url = start_server(
        "charterflow serve",
        [sys.executable, "-m", "charterflow", "serve", "--host", "127.0.0.1"],
        app_env(settings, REDIS_URL=parked),
        logs / "api.log",
    )
    ids = []
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            for name, data in corpus.documents(count):
                r = client.post(
                    f"/api/v1/notebooks/{owner.notebook_id}/documents",
                    files={"file": (name, data, "application/octet-stream")},
                    headers={"Authorization": f"Bearer {owner.token}"},
                )
                r.raise_for_status()
                ids.append(r.json()["id"])
    finally:
        proc.stop()
    return ids


def start_workers(
    settings: Settings, count: int, logs: Path, provider: str
) -> list[ManagedProcess]:
    procs = []
    for i in range(count):
        port = free_port()
        env = app_env(
            settings,
            WORKER_HEALTH_PORT=str(port),
            WORKER_THREADS=str(THREADS),
            EMBEDDINGS_PROVIDER=provider,
        )
        proc = ManagedProcess(
            "charterflow worker",
            [sys.executable, "-m", "charterflow", "worker"],
            logs / f"worker-{count}-{i}.log",
            env=env,
        ).start()
        procs.append(proc)
        proc.wait_ready(
            lambda p=port: httpx.get(f"http://127.0.0.1:{p}/health/live").status_code == 200
        )
    return procs


def one_run(
    settings: Settings, ids: list[str], workers: int, logs: Path, provider: str
) -> dict[str, Any]:
    engine = create_engine(settings.sqlalchemy_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM chunks"))
            conn.execute(
                text(
                    "UPDATE documents SET status = 'pending', attempts = 0, error = NULL, "
                    "lease_expires_at = NULL, chunk_count = 0"
                )
            )
        redis.Redis.from_url(settings.redis_url or "").flushdb()
        procs = start_workers(settings, workers, logs, provider)
        try:
            sender = make_sender(settings)
            started = time.perf_counter()
            for doc_id in ids:
                sender.send(doc_id)

            def settled() -> bool:
                with engine.connect() as conn:
                    done = conn.scalar(
                        text("SELECT count(*) FROM documents WHERE status IN ('ready', 'failed')")
                    )
                return done == len(ids)

            wait_until(settled, 600, "every document ingested", interval=0.05)
            seconds = time.perf_counter() - started
            sender.broker.close()
        finally:
            for proc in procs:
                proc.stop()
        with engine.connect() as conn:
            chunks = conn.scalar(text("SELECT count(*) FROM chunks")) or 0
            failed = conn.scalar(text("SELECT count(*) FROM documents WHERE status = 'failed'"))
    finally:
        engine.dispose()
    return {
        "seconds": round(seconds, 2),
        "documents_per_second": round(len(ids) / seconds, 2),
        "chunks_per_second": round(chunks / seconds, 1),
        "chunks": chunks,
        "failed": failed,
    }


def run(documents: int, repeats: int) -> dict[str, Any]:
    rows = []
    with services() as svc:
        settings = svc.database("ingest")
        logs = Path(settings.upload_path).parent
        owner = seed_owner(settings)
        uploaded = upload_all(settings, owner, documents, logs)
        for provider, share in EMBEDDERS.items():
            ids = uploaded[: max(1, int(documents * share))]
            rows += _rows(settings, ids, logs, provider, repeats)
    kinds = {k: sum(1 for i in range(documents) if corpus.KINDS[i % 5] == k) for k in corpus.KINDS}
    return {
        "benchmark": "ingestion by `charterflow worker` processes (Redis + PostgreSQL)",
        "documents": documents,
        "mix": kinds,
        "repeats": repeats,
        "rows": rows,
    }


def _rows(
    settings: Settings, ids: list[str], logs: Path, provider: str, repeats: int
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for workers in (1, 2):
        runs = [one_run(settings, ids, workers, logs, provider) for _ in range(repeats)]
        row = {
            "embedder": provider,
            "documents": len(ids),
            "workers": workers,
            "threads_per_worker": THREADS,
            "documents_per_second": median([r["documents_per_second"] for r in runs]),
            "chunks_per_second": median([r["chunks_per_second"] for r in runs]),
            "chunks": runs[0]["chunks"],
            "failed": runs[0]["failed"],
            "runs": runs,
        }
        rows.append(row)
        print(f"ingestion: {row}", flush=True)
    base = rows[0]["documents_per_second"]
    for row in rows:
        row["speedup_vs_1_worker"] = round(row["documents_per_second"] / base, 2)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    write_result("ingestion", run(args.documents, args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
