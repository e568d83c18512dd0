"""Embedding speed per worker process: chunks/s at the chunk length ingestion produces, and the
latency of embedding one search query, for each built-in embedder.

Passages come from ``bench.corpus`` (stdlib prose cut like ingestion cuts chunks, 60-100% of
``CHUNK_CHARS``); queries from the same corpus. One process, one caller: what one worker's
embedding costs (workers scale out by processes). Each figure is the median of ``repeats``.

    python -m bench.embedding [--chunks N] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from charterflow.ingest.chunking import CHUNK_CHARS
from charterflow.retrieval.embedders import Embedder, HashingEmbedder, SemanticEmbedder

from bench import corpus
from bench.common import median, percentile, write_result

EMBEDDERS: dict[str, Callable[[], Embedder]] = {
    "semantic": SemanticEmbedder,
    "hashing": HashingEmbedder,
}


def _tokens(texts: list[str]) -> float | None:
    """Mean all-MiniLM-L6-v2 tokens per text (after its 256-token truncation)."""
    from charterflow.retrieval.minilm import MiniLM

    encoded = MiniLM.shared().tokenizer.encode_batch(texts)
    return round(sum(len(e.ids) for e in encoded) / len(encoded), 1)


def measure(embedder: Embedder, chunks: int, repeats: int, queries: int) -> dict[str, Any]:
    passages = corpus.passages(chunks)
    embedder.embed(passages[:4])  # loads the model: start-up is not throughput
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        embedder.embed(passages)
        rates.append(round(chunks / (time.perf_counter() - started), 1))
    latencies = []
    for q in corpus.queries(queries):
        started = time.perf_counter()
        embedder.embed([q])
        latencies.append((time.perf_counter() - started) * 1000)
    return {
        "embedder": embedder.name,
        "chunk_chars": CHUNK_CHARS,
        "mean_chars": round(sum(map(len, passages)) / len(passages)),
        "chunks_per_s": {"median": median(rates), "runs": rates},
        "query_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p95": round(percentile(latencies, 95), 2),
        },
    }


def run(chunks: int = 96, repeats: int = 3, queries: int = 50) -> dict[str, Any]:
    rows = [measure(make(), chunks, repeats, queries) for make in EMBEDDERS.values()]
    return {"rows": rows, "mean_tokens": _tokens(corpus.passages(chunks)), "chunks": chunks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    result = run(args.chunks, args.repeats)
    write_result("embedding", result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
