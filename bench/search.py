"""Hybrid search latency at 10k and 100k chunks; HNSW against an exact scan, and HNSW's recall.

The code measured is ``charterflow.retrieval.search.search`` itself, on a real PostgreSQL + pgvector
with the migration's indexes. "Exact" is the same query with index scans turned off, so the
vector ranking becomes a full scan and sort (the ground truth); the lexical side keeps its GIN
bitmap scan either way. recall@10 compares the vector rankings (top 10) of the two.
The phases of the slowest configuration are timed separately (embed, lexical SQL, vector SQL)
so the table can say where the time goes, and the plan of the loosest lexical level of the
first question is recorded.

    python -m bench.search [--sizes 10000,100000] [--queries 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from charterflow.db import make_session_factory
from charterflow.retrieval import search as search_module
from charterflow.retrieval.embedders import (
    Embedder,
    HashingEmbedder,
    SemanticEmbedder,
    vector_cache,
)
from charterflow.retrieval.search import (
    CANDIDATES,
    POOLED_MATCH_SQL,
    _lexemes,
    _pg_lexical,
    _pg_vector,
    _tsquery_levels,
    _uncommon,
    search,
)
from charterflow.settings import Settings
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench import corpus
from bench.common import median, percentile, services, write_result
from bench.dataset import HNSW, Owner, load_chunks, seed_owner

K = 10
HNSW_EF_SEARCH = search_module.HNSW_EF_SEARCH
#: ef_search values whose recall is measured (the recall against ef_search plot).
EF_SWEEP = tuple(sorted({40, 100, 200, HNSW_EF_SEARCH, 1000}))
#: pgvector's largest HNSW candidate list, to show what recall the search's own value leaves.
TUNED_EF_SEARCH = 1000


@contextmanager
def session(settings: Settings, exact: bool) -> Iterator[Session]:
    """A session whose every transaction runs with index scans on (HNSW) or off (exact)."""
    options = "-c enable_indexscan=off" if exact else ""
    engine = create_engine(settings.sqlalchemy_url, connect_args={"options": options})
    try:
        with make_session_factory(engine)() as db:
            yield db
    finally:
        engine.dispose()


def timed(fn: Callable[[], object], queries: int) -> list[float]:
    """Milliseconds of each call."""
    out = []
    for _ in range(queries):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def latency(
    settings: Settings, owner: Owner, questions: list[str], exact: bool, embedder: Embedder
) -> list[float]:
    """Milliseconds of each hybrid search (one warm-up pass first), the question's embedding
    included (the process's vector cache is emptied before each)."""
    with session(settings, exact) as db:
        for q in questions[:10]:
            search(db, embedder, owner.notebook_id, q)
        out = []
        for q in questions:
            vector_cache.clear()
            started = time.perf_counter()
            search(db, embedder, owner.notebook_id, q)
            out.append((time.perf_counter() - started) * 1000)
            db.rollback()  # the next query is a new transaction, as in the API
    return out


def recall(
    settings: Settings,
    owner: Owner,
    questions: list[str],
    embedder: Embedder,
    ef_searches: Sequence[int] = (),
    repeats: int = 1,
) -> tuple[dict[int, float], dict[int, float]]:
    """For each ``ef_search`` (default: the search's own): the mean share of the exact top 10
    (by cosine) that the HNSW scan also returns, and the p95 milliseconds of that HNSW query
    alone (median over ``repeats`` passes over the questions)."""
    vectors = embedder.embed(questions)
    found: dict[int, list[float]] = {ef: [] for ef in ef_searches or [HNSW_EF_SEARCH]}
    spent: dict[int, list[list[float]]] = {ef: [[] for _ in range(repeats)] for ef in found}
    with session(settings, exact=False) as approx, session(settings, exact=True) as exact:
        for vector in vectors:
            truth = set(_pg_vector(exact, owner.notebook_id, embedder.name, vector, K))
            for ef, shares in found.items():
                for runs in spent[ef]:
                    started = time.perf_counter()
                    got = set(_pg_vector(approx, owner.notebook_id, embedder.name, vector, K, ef))
                    runs.append((time.perf_counter() - started) * 1000)
                    approx.rollback()  # each query in its own transaction, as in ``latency``
                shares.append(len(got & truth) / max(len(truth), 1))
    return (
        {ef: round(sum(shares) / len(shares), 4) for ef, shares in found.items()},
        {ef: round(median([percentile(r, 95) for r in runs]), 2) for ef, runs in spent.items()},
    )


def phases(
    settings: Settings, owner: Owner, questions: list[str], embedder: Embedder
) -> dict[str, float]:
    """Median milliseconds of each step of one search, HNSW configuration."""
    vectors = embedder.embed(questions)
    spent: dict[str, list[float]] = {"embed": [], "lexical_sql": [], "vector_sql": []}
    with session(settings, exact=False) as db:
        for q, v in zip(questions, vectors, strict=True):
            for name, fn in (
                ("embed", lambda q=q: embedder.embed([q])),
                ("lexical_sql", lambda q=q: _pg_lexical(db, owner.notebook_id, q, CANDIDATES)),
                (
                    "vector_sql",
                    lambda v=v: _pg_vector(db, owner.notebook_id, embedder.name, v, CANDIDATES),
                ),
            ):
                spent[name].extend(timed(fn, 1))
            db.rollback()  # one transaction per question, as in ``latency``
    return {name: round(median(values), 2) for name, values in spent.items()}


def index_mb(settings: Settings) -> float:
    """Size of the HNSW index search uses, in MB."""
    engine = create_engine(settings.sqlalchemy_url)
    try:
        with engine.connect() as conn:
            size = conn.scalar(
                text("SELECT pg_relation_size(to_regclass(:name))"), {"name": HNSW.INDEX}
            )
    finally:
        engine.dispose()
    return round((size or 0) / 1e6, 1)


def explain(settings: Settings, owner: Owner, question: str) -> dict[str, Any]:
    """The plan, with timings, of the loosest lexical level ``search`` runs for ``question``."""
    with session(settings, exact=False) as db:
        lexemes = _lexemes(db, question)
        tsquery = _tsquery_levels(lexemes, _uncommon(db, lexemes))[-1]
        rows = db.execute(
            text("EXPLAIN (ANALYZE, COSTS OFF) " + POOLED_MATCH_SQL),
            {
                "tq": tsquery,
                "nb": owner.notebook_id,
                "k": CANDIDATES,
                "pool": search_module.LOOSE_LEVEL_POOL,
            },
        )
        return {"query": question, "tsquery": tsquery, "plan": [r[0] for r in rows]}


def run(
    sizes: list[int], queries: int, repeats: int, embedder_name: str = HashingEmbedder.name
) -> dict[str, Any]:
    questions = corpus.queries(queries)
    embedder: Embedder = (
        SemanticEmbedder() if embedder_name == SemanticEmbedder.name else HashingEmbedder()
    )
    results: list[dict[str, Any]] = []
    with services(redis=False) as svc:
        settings = svc.database("search")
        owner = seed_owner(settings)
        loaded = 0
        for size in sorted(sizes):
            started = time.perf_counter()
            hnsw_seconds = load_chunks(
                settings, owner, size - loaded, offset=loaded, model=embedder.name
            )
            load_seconds = time.perf_counter() - started
            loaded = size
            entry: dict[str, Any] = {
                "chunks": size,
                "load_and_index_seconds": round(load_seconds),
                "hnsw_build_seconds": round(hnsw_seconds, 1),
            }
            for method, exact in (("hnsw", False), ("exact", True)):
                runs = [
                    latency(settings, owner, questions, exact, embedder) for _ in range(repeats)
                ]
                entry[method] = {
                    "p50_ms": round(median([percentile(r, 50) for r in runs]), 2),
                    "p95_ms": round(median([percentile(r, 95) for r in runs]), 2),
                    "runs_p95_ms": [round(percentile(r, 95), 2) for r in runs],
                }
            entry["speedup_p95"] = round(entry["exact"]["p95_ms"] / entry["hnsw"]["p95_ms"], 2)
            by_ef, vector_p95 = recall(settings, owner, questions, embedder, EF_SWEEP, repeats)
            entry["recall_at_10"] = by_ef[HNSW_EF_SEARCH]
            entry[f"recall_at_10_ef_search_{TUNED_EF_SEARCH}"] = by_ef[TUNED_EF_SEARCH]
            entry["recall_at_10_by_ef_search"] = {str(ef): r for ef, r in by_ef.items()}
            entry["vector_p95_ms_by_ef_search"] = {str(ef): ms for ef, ms in vector_p95.items()}
            entry["index_mb"] = index_mb(settings)
            entry["phases_median_ms"] = phases(settings, owner, questions, embedder)
            results.append(entry)
            print(f"search: {entry}", flush=True)
        plan = explain(settings, owner, questions[0])
    return {
        "benchmark": "hybrid search (charterflow.retrieval.search.search) on PostgreSQL + pgvector",
        "embedder": embedder.name,
        "queries": queries,
        "repeats": repeats,
        "settings": {
            "common_term_share": search_module.COMMON_TERM_SHARE,
            "loose_level_pool": search_module.LOOSE_LEVEL_POOL,
            "hnsw_ef_search": search_module.HNSW_EF_SEARCH,
        },
        "sizes": results,
        "lexical_plan": plan,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--embedder", default=HashingEmbedder.name, choices=[HashingEmbedder.name, "semantic"]
    )
    parser.add_argument("--name", default="search", help="result file (bench/results/NAME.json)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    embedder = SemanticEmbedder.name if args.embedder == "semantic" else HashingEmbedder.name
    write_result(args.name, run(sizes, args.queries, args.repeats, embedder))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
