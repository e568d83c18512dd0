"""Retrieval quality of CharterFlow's lexical, vector and hybrid rankings.

No public IR test collection (BEIR SciFact, NFCorpus...) ships inside a PyPI package: the
loaders (ir_datasets, beir) download at run time, which this offline setup cannot do. So the
collection is *built*, honestly, from a public corpus every Python installation ships: the
docstrings of the standard library. It is a known-item task: for each public function or
class with a docstring of a summary line and a body, the **query is the summary line** and the
**one relevant document is the body without that line**. Queries therefore share some, not
all, words with their document; results are comparable between our rankers, not with BEIR.

The rankers are the ones search uses: BM25 (the SQLite lexical path; PostgreSQL uses
``ts_rank_cd``), cosine over the configured embedder (default: the offline hashing
embedder), and reciprocal rank fusion of the two. Writes ``bench/results/retrieval.json``.

    python -m bench.retrieval [--embedder hashing|semantic] [--modules N]
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from charterflow.ingest.embeddings import HashingEmbedder, SemanticEmbedder
from charterflow.search import CANDIDATES, bm25_rank, rrf

RESULTS = Path(__file__).parent / "results" / "retrieval.json"
K = 10
MODULES = [
    "argparse", "asyncio", "base64", "bisect", "calendar", "collections", "concurrent.futures",
    "configparser", "contextlib", "copy", "csv", "datetime", "decimal", "difflib", "email",
    "enum", "fractions", "ftplib", "functools", "gettext", "glob", "gzip", "hashlib", "heapq",
    "hmac", "html", "http.client", "http.cookies", "imaplib", "inspect", "ipaddress",
    "itertools", "json", "logging", "mailbox", "mimetypes", "multiprocessing", "operator",
    "optparse", "os", "pathlib", "pickle", "pkgutil", "platform", "plistlib", "poplib",
    "pprint", "queue", "random", "re", "sched", "secrets", "selectors", "shlex", "shutil",
    "smtplib", "socket", "sqlite3", "ssl", "statistics", "string", "subprocess", "tarfile",
    "tempfile", "textwrap", "threading", "timeit", "tokenize", "trace", "traceback",
    "typing", "unittest", "urllib.parse", "urllib.request", "uuid", "warnings", "wave",
    "weakref", "xml.dom.minidom", "xml.etree.ElementTree", "zipfile", "zoneinfo",
]  # fmt: skip


def build_collection(modules: list[str]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """``(doc_id, body)`` documents and ``{doc_id: query}``, one query per document."""
    docs: list[tuple[str, str]] = []
    queries: dict[str, str] = {}
    seen: set[str] = set()
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attr, obj in sorted(vars(module).items()):
            if attr.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            doc = inspect.getdoc(obj) or ""
            summary, _, body = doc.partition("\n")
            summary, body = summary.strip(), body.strip()
            if len(summary.split()) < 5 or len(body.split()) < 20 or summary in seen:
                continue
            seen.add(summary)
            doc_id = f"{name}.{attr}"
            docs.append((doc_id, body))
            queries[doc_id] = summary
    return docs, queries


def ndcg_at_k(ranking: list[str], relevant: str, k: int = K) -> float:
    """One relevant document: 1 / log2(rank + 1) if it is in the top k (ideal DCG is 1)."""
    for rank, doc_id in enumerate(ranking[:k], start=1):
        if doc_id == relevant:
            return 1.0 / math.log2(rank + 1)
    return 0.0


def evaluate(embedder_name: str, modules: list[str]) -> dict[str, Any]:
    docs, queries = build_collection(modules)
    embedder = SemanticEmbedder() if embedder_name == "semantic" else HashingEmbedder()
    started = time.perf_counter()
    matrix = embedder.embed([body for _, body in docs])
    index_seconds = time.perf_counter() - started
    ids = [doc_id for doc_id, _ in docs]
    q_ids = list(queries)
    q_vectors = embedder.embed([queries[q] for q in q_ids])
    scores: dict[str, dict[str, list[float]]] = {
        m: {"ndcg@10": [], "recall@10": []} for m in ("lexical", "vector", "hybrid")
    }
    started = time.perf_counter()
    for q_id, q_vec in zip(q_ids, q_vectors, strict=True):
        lexical = bm25_rank(docs, queries[q_id], CANDIDATES)
        order = np.argsort(-(matrix @ q_vec), kind="stable")[:CANDIDATES]
        vector = [ids[i] for i in order]
        fused = rrf(lexical, vector)
        hybrid = sorted(fused, key=lambda d: (-fused[d], d))
        for method, ranking in (("lexical", lexical), ("vector", vector), ("hybrid", hybrid)):
            scores[method]["ndcg@10"].append(ndcg_at_k(ranking, q_id))
            scores[method]["recall@10"].append(float(q_id in ranking[:K]))
    query_seconds = time.perf_counter() - started
    return {
        "collection": "python-stdlib-docstrings (known-item: summary line -> docstring body)",
        "python": platform.python_version(),
        "documents": len(docs),
        "queries": len(q_ids),
        "embedder": embedder.name,
        "results": {
            m: {metric: round(float(np.mean(v)), 4) for metric, v in per.items()}
            for m, per in scores.items()
        },
        "seconds": {
            "embed_corpus": round(index_seconds, 2),
            "all_queries": round(query_seconds, 2),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", choices=["hashing", "semantic"], default="hashing")
    parser.add_argument("--modules", type=int, default=len(MODULES))
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    report = evaluate(args.embedder, MODULES[: args.modules])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    existing: dict[str, Any] = {}
    if args.output.exists():
        existing = json.loads(args.output.read_text())
    existing[report["embedder"]] = report
    args.output.write_text(json.dumps(existing, indent=2) + "\n")
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
