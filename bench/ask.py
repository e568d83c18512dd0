"""Cold ``ask`` (extractive) over 10k chunks: with the sentence vectors stored at ingestion,
and without them (the path every ask took before migration 0009), in the same run.

Two notebooks hold the same 10k chunks of ``bench.corpus`` with the default (semantic)
model's vectors; only one also has the sentence vectors. Two ``charterflow serve`` processes
(one uvicorn worker each, production settings) run side by side on the same database, one
asked about each notebook; each question goes to one server then the other, one request at a
time, so a noisy neighbour hurts both alike. Every question is asked once per server, so
neither the question's nor its sentences' vectors are in the process's cache (cold): each
repeat asks ``QUESTIONS`` questions that the run has not asked before. Client latency per
ask, and the server process group's CPU time (utime + stime from /proc) around each ask.

    python -m bench.ask [--repeats 3] [--questions 40]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from charterflow.models import Notebook
from charterflow.retrieval.embedders import SemanticEmbedder
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from bench import corpus
from bench.api import start_server
from bench.common import app_env, median, percentile, services, write_result
from bench.dataset import Owner, load_chunks, seed_owner

CHUNKS = 10_000
QUESTIONS = 40
WARMUP = 3
VARIANTS = ("stored sentence vectors", "sentences embedded when asked")
_TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of every live process in the process group ``pgid``."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def _notebooks(settings: Any, owner: Owner) -> list[Owner]:
    """The owner as seen from each of their notebooks, in creation order."""
    engine = create_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as db:
            ids = db.scalars(
                select(Notebook.id)
                .where(Notebook.workspace_id == owner.workspace_id)
                .order_by(Notebook.title)
            ).all()
    finally:
        engine.dispose()
    return [Owner(owner.user_id, owner.workspace_id, nb, owner.token) for nb in ids]


def run(repeats: int, questions: int, chunks: int = CHUNKS) -> dict[str, Any]:
    asked = corpus.queries(WARMUP + repeats * questions)
    warmup, measured = asked[:WARMUP], asked[WARMUP:]
    samples: dict[str, list[list[tuple[float, float]]]] = {v: [] for v in VARIANTS}
    answered = dict.fromkeys(VARIANTS, 0)  # asks answered with citations (not "not found")
    with services() as svc:
        settings = svc.database("ask")
        owner = seed_owner(settings, notebooks=2)
        stored, plain = _notebooks(settings, owner)
        load_chunks(settings, plain, chunks, model=SemanticEmbedder.name)
        load_chunks(settings, stored, chunks, model=SemanticEmbedder.name, with_sentences=True)
        logs = Path(settings.upload_path).parent
        env = app_env(settings, CHARTERFLOW_ENV="production", LOG_LEVEL="INFO")
        servers = []
        try:
            for n, (variant, who) in enumerate(zip(VARIANTS, (stored, plain), strict=True)):
                argv = [sys.executable, "-m", "charterflow", "serve", "--host", "127.0.0.1"]
                proc, url = start_server(variant, argv, env, logs / f"ask-{n}.log")
                client = httpx.Client(
                    base_url=url, timeout=120, headers={"Authorization": f"Bearer {who.token}"}
                )
                servers.append((variant, proc, client, f"/api/v1/notebooks/{who.notebook_id}/ask"))
            for _, _, client, path in servers:
                for question in warmup:  # the model, the pool, SQLAlchemy's statement cache
                    client.post(path, json={"question": question}).raise_for_status()
            for r in range(repeats):
                for variant in VARIANTS:
                    samples[variant].append([])
                for question in measured[r * questions : (r + 1) * questions]:
                    for variant, proc, client, path in servers:
                        assert proc.proc is not None
                        cpu = group_cpu(proc.proc.pid)
                        started = time.perf_counter()
                        reply = client.post(path, json={"question": question})
                        wall = time.perf_counter() - started
                        samples[variant][-1].append((wall, group_cpu(proc.proc.pid) - cpu))
                        answered[variant] += bool(reply.raise_for_status().json()["citations"])
        finally:
            for _, proc, client, _ in servers:
                client.close()
                proc.stop()
    rows = []
    for variant in VARIANTS:
        runs = samples[variant]
        p50s = [percentile([w for w, _ in run], 50) * 1000 for run in runs]
        p95s = [percentile([w for w, _ in run], 95) * 1000 for run in runs]
        cpus = [sum(c for _, c in run) / len(run) * 1000 for run in runs]
        rows.append(
            {
                "variant": variant,
                "stored": variant == VARIANTS[0],
                "p50_ms": round(median(p50s), 1),
                "p95_ms": round(median(p95s), 1),
                "cpu_ms_per_ask": round(median(cpus), 1),
                "runs_p50_ms": [round(x, 1) for x in p50s],
                "runs_cpu_ms": [round(x, 1) for x in cpus],
                "answered": answered[variant],
                "asked": sum(len(run) for run in runs),
            }
        )
        print(f"ask: {rows[-1]}", flush=True)
    return {
        "benchmark": "cold ask (extractive), one at a time, stored vs computed sentence vectors",
        "chunks": chunks,
        "questions_per_repeat": questions,
        "repeats": repeats,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--questions", type=int, default=QUESTIONS)
    parser.add_argument("--chunks", type=int, default=CHUNKS)
    args = parser.parse_args(argv)
    write_result("ask", run(args.repeats, args.questions, args.chunks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
