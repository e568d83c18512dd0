"""Retrieval quality of CharterFlow's lexical, vector and hybrid rankings, on two collections.

No public IR test collection (BEIR SciFact, NFCorpus...) ships inside a PyPI package: the
loaders (ir_datasets, beir) download at run time, which this offline setup cannot do. So the
collections are *built*, honestly, from public text that is already installed, as known-item
tasks: the **query is a summary sentence** written by the text's authors and the **one relevant
document is the rest of the text**. Queries share some, not all, words with their document;
results compare our rankers with each other, not with BEIR.

- ``stdlib`` (the tuning set): docstrings of the Python standard library; query = the summary
  line, document = the body.
- ``botocore`` (held out: the fusion was tuned without it): the AWS API reference that ships
  inside botocore (a dependency via boto3); query = an operation's first documentation
  sentence, document = the rest of its documentation.

The rankers are the ones search uses: BM25 (the SQLite lexical path; PostgreSQL uses
``ts_rank_cd``), cosine over an embedder, and ``charterflow.retrieval.search.fuse``. The tuning grid
(RRF k, the vector ranking's weight, candidate depth) is computed on ``stdlib`` only and
written beside the results, so the chosen values in ``charterflow.retrieval.search`` can be checked.
Writes ``bench/results/retrieval.json``.

    python -m bench.retrieval [--embedder semantic|hashing ...] [--limit N]
"""

from __future__ import annotations

import argparse
import html
import importlib
import inspect
import itertools
import json
import math
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from charterflow.retrieval.embedders import Embedder, HashingEmbedder, SemanticEmbedder
from charterflow.retrieval.search import bm25_rank, fusion, rrf

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


Collection = tuple[list[tuple[str, str]], dict[str, str]]
#: Documents per collection at most (each is embedded once per run).
LIMIT = 400
#: Deepest candidate list the tuning grid tries.
MAX_DEPTH = 100
GRID = {
    "k": [5, 10, 20, 30, 60, 100],
    "vector_weight": [0.5, 1.0, 1.5, 2.0, 3.0, 4.0],
    "depth": [20, 50, 100],
}
BOTOCORE_SERVICES = [
    "s3", "ec2", "iam", "lambda", "dynamodb", "sqs", "sns", "rds", "ecs", "eks", "kms",
    "cloudwatch", "logs", "route53", "cloudformation", "secretsmanager", "ssm", "sts",
    "elbv2", "autoscaling", "kinesis", "glue", "athena", "stepfunctions", "ecr",
]  # fmt: skip
_TAG = re.compile(r"<[^>]+>")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def build_stdlib(limit: int = LIMIT) -> Collection:
    """``(doc_id, body)`` documents and ``{doc_id: query}``, one query per document."""
    docs: list[tuple[str, str]] = []
    queries: dict[str, str] = {}
    seen: set[str] = set()
    for name in MODULES:
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
    return docs[:limit], {d: queries[d] for d, _ in docs[:limit]}


def build_botocore(limit: int = LIMIT) -> Collection:
    """AWS operations: first sentence of the documentation -> the rest of it (HTML stripped)."""
    from botocore.loaders import Loader

    loader = Loader()
    per_service = max(1, limit // len(BOTOCORE_SERVICES))
    docs: list[tuple[str, str]] = []
    queries: dict[str, str] = {}
    seen: set[str] = set()
    for service in BOTOCORE_SERVICES:
        operations = loader.load_service_model(service, "service-2")["operations"]
        taken = 0
        for name in sorted(operations):
            text = " ".join(
                html.unescape(_TAG.sub(" ", operations[name].get("documentation", ""))).split()
            )
            first, _, rest = text.partition(". ")
            if len(first.split()) < 5 or len(rest.split()) < 20 or first in seen:
                continue
            seen.add(first)
            doc_id = f"{service}.{name}"
            docs.append((doc_id, rest))
            queries[doc_id] = first + "."
            taken += 1
            if taken == per_service:
                break
    return docs[:limit], {d: queries[d] for d, _ in docs[:limit]}


COLLECTIONS: dict[str, tuple[str, Callable[[int], Collection]]] = {
    "stdlib": ("Python stdlib docstrings: summary line -> body (tuning set)", build_stdlib),
    "botocore": (
        "AWS API reference in botocore: first sentence -> rest (held out)",
        build_botocore,
    ),
}
EMBEDDERS: dict[str, Callable[[], Embedder]] = {
    "semantic": SemanticEmbedder,
    "hashing": HashingEmbedder,
}


def ndcg_at_k(ranking: list[str], relevant: str, k: int = K) -> float:
    """One relevant document: 1 / log2(rank + 1) if it is in the top k (ideal DCG is 1)."""
    for rank, doc_id in enumerate(ranking[:k], start=1):
        if doc_id == relevant:
            return 1.0 / math.log2(rank + 1)
    return 0.0


def _scores(rankings: list[list[str]], relevant: list[str]) -> dict[str, float]:
    return {
        "ndcg@10": round(
            float(np.mean([ndcg_at_k(r, q) for r, q in zip(rankings, relevant, strict=True)])), 4
        ),
        "recall@10": round(
            float(np.mean([q in r[:K] for r, q in zip(rankings, relevant, strict=True)])), 4
        ),
    }


def _hybrid(lexical: list[str], vector: list[str], k: int, weight: float, depth: int) -> list[str]:
    fused = rrf(lexical[:depth], vector[:depth], k=k, weights=(1.0, weight))
    return sorted(fused, key=lambda d: (-fused[d], d))


def evaluate(collection: str, embedder: Embedder, limit: int, grid: bool) -> dict[str, Any]:
    description, build = COLLECTIONS[collection]
    docs, queries = build(limit)
    started = time.perf_counter()
    matrix = embedder.embed([body for _, body in docs])
    embed_seconds = time.perf_counter() - started
    ids = [doc_id for doc_id, _ in docs]
    q_ids = list(queries)
    q_vectors = embedder.embed([queries[q] for q in q_ids])
    lexical = [bm25_rank(docs, queries[q], MAX_DEPTH) for q in q_ids]
    vector = [
        [ids[i] for i in np.argsort(-(matrix @ v), kind="stable")[:MAX_DEPTH]] for v in q_vectors
    ]
    chosen = fusion(embedder)
    hybrid = [
        _hybrid(lx, vc, chosen.k, chosen.vector_weight, chosen.depth)
        for lx, vc in zip(lexical, vector, strict=True)
    ]
    report: dict[str, Any] = {
        "collection": description,
        "python": platform.python_version(),
        "documents": len(docs),
        "queries": len(q_ids),
        "embedder": embedder.name,
        "fusion": {"k": chosen.k, "vector_weight": chosen.vector_weight, "depth": chosen.depth},
        "results": {
            "lexical": _scores(lexical, q_ids),
            "vector": _scores(vector, q_ids),
            "hybrid": _scores(hybrid, q_ids),
            "hybrid (k=60, equal weights, 50)": _scores(
                [_hybrid(lx, vc, 60, 1.0, 50) for lx, vc in zip(lexical, vector, strict=True)],
                q_ids,
            ),
        },
        "seconds": {"embed_corpus": round(embed_seconds, 2)},
    }
    if grid:
        report["grid"] = [
            {
                "k": k,
                "vector_weight": w,
                "depth": d,
                **_scores(
                    [_hybrid(lx, vc, k, w, d) for lx, vc in zip(lexical, vector, strict=True)],
                    q_ids,
                ),
            }
            for k, w, d in itertools.product(GRID["k"], GRID["vector_weight"], GRID["depth"])
        ]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--embedder", choices=list(EMBEDDERS), action="append", help="default: all of them"
    )
    parser.add_argument("--limit", type=int, default=LIMIT, help="documents per collection")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}
    for name in args.embedder or list(EMBEDDERS):
        embedder = EMBEDDERS[name]()
        for collection in COLLECTIONS:
            report = evaluate(collection, embedder, args.limit, grid=collection == "stdlib")
            out.setdefault(collection, {})[embedder.name] = report
            summary = {m: v["ndcg@10"] for m, v in report["results"].items()}
            print(f"{collection} {embedder.name}: nDCG@10 {summary}", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    json.dump(
        {c: {e: r["results"] for e, r in v.items()} for c, v in out.items()}, sys.stdout, indent=2
    )
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
