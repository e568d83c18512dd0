"""Smoke test of the benchmark suite: its modules import, and the report renders sample results.

Nothing here is timed: speed is what ``make bench`` measures, not what tests assert.
"""

from __future__ import annotations

import importlib
import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from bench import corpus, load, plots, report
from bench.common import percentile

MODULES = [
    "bench.__main__",
    "bench.api",
    "bench.ask",
    "bench.common",
    "bench.corpus",
    "bench.dataset",
    "bench.embedding",
    "bench.hello",
    "bench.hostile",
    "bench.images",
    "bench.ingestion",
    "bench.kube",
    "bench.load",
    "bench.plots",
    "bench.qa",
    "bench.report",
    "bench.retrieval",
    "bench.search",
    "bench.streaming",
]

MACHINE = {"cpu": "Test CPU 9000", "cores": 2, "ram_gib": 8.0, "python": "3.11.7", "kernel": "6"}


def api_row(server: str, workers: int, endpoint: str, rps: float, vs: float) -> dict[str, Any]:
    return {
        "server": server,
        "workers": workers,
        "endpoint": endpoint,
        "rps": rps,
        "p50_ms": 1.5,
        "p99_ms": 4.0,
        "runs_rps": [rps, rps],
        "rps_vs_bare_fastapi": vs,
    }


def sample_results() -> dict[str, dict[str, Any]]:
    """Results shaped like the benchmarks write them; search misses its target by 4x."""
    return {
        "run": {
            "date": "2030-01-02 03:04 UTC",
            "command": "make bench",
            "wall_seconds": 720.0,
            "seconds": {"api": 200.0, "search": 300.0},
            "machine": MACHINE,
            "load_before": [1.0, 1.0, 1.0],
            "load_after": [2.0, 2.0, 2.0],
        },
        "api": {
            "connections": 16,
            "window_seconds": 5,
            "repeats": 3,
            "rows": [
                api_row("bare FastAPI", 1, "/health/live", 10_000, 1.0),
                api_row("charterflow", 1, "/health/live", 4_000, 0.4),
            ],
        },
        "search": {
            "queries": 40,
            "repeats": 3,
            "embedder": "hashing-v1",
            "sizes": [
                {
                    "chunks": 100_000,
                    "hnsw": {"p50_ms": 150.0, "p95_ms": 200.0},
                    "exact": {"p50_ms": 180.0, "p95_ms": 240.0},
                    "speedup_p95": 1.2,
                    "recall_at_10": 0.95,
                    "phases_median_ms": {"embed": 0.3, "lexical_sql": 140.0},
                }
            ],
            "lexical_plan": {"query": "Return a logger", "plan": ["Seq Scan on chunks c"]},
        },
    }


@pytest.mark.parametrize("name", MODULES)
def test_every_bench_module_imports(name: str) -> None:
    assert importlib.import_module(name).__doc__


def test_the_report_names_the_machine_the_numbers_and_the_largest_gap() -> None:
    page = report.render(sample_results(), analysis="Why: the lexical query ranks every row.")

    assert "Test CPU 9000, 2 cores, 8.0 GiB RAM, Python 3.11.7" in page
    assert "2030-01-02 03:04 UTC" in page
    assert "| charterflow | 1 | /health/live | 4,000.0 | 0.400 |" in page
    assert "| API overhead on /health/live | ≤ 1.5x bare FastAPI | 2.50x" in page
    assert (
        "| search p95 (100k chunks, hashing-v1) | ≤ 50 ms | 200.0 ms | **missed** | 4.00 |" in page
    )
    assert "**Largest gap:** search p95 (100k chunks, hashing-v1): 200.0 ms" in page
    assert "Seq Scan on chunks c" in page
    assert page.rstrip().endswith("Why: the lexical query ranks every row.")
    # cold ask, ingestion, hostile input, hostile requests, operator, images, real pods,
    # streaming, a real model, real-document QA, retrieval, embedding
    assert page.count("_not run_") == 12


def test_the_cold_ask_target_comes_from_bench_ask_with_the_other_path_beside_it() -> None:
    def row(stored: bool, p50: float) -> dict[str, Any]:
        variant = "stored sentence vectors" if stored else "sentences embedded when asked"
        return {
            "variant": variant,
            "stored": stored,
            "p50_ms": p50,
            "p95_ms": p50 * 2,
            "cpu_ms_per_ask": p50 / 2,
            "runs_p50_ms": [p50, p50 + 1],
            "runs_cpu_ms": [p50 / 2],
            "answered": 110,
            "asked": 120,
        }

    ask = {"chunks": 10_000, "questions_per_repeat": 40, "repeats": 3}
    results = {**sample_results(), "ask": {**ask, "rows": [row(True, 60.0), row(False, 300.0)]}}
    page = report.render(results)
    assert (
        "| ask (extractive), one at a time, cold | ≤ 150 ms | p50 60 ms (sentences embedded "
        "when asked: 300 ms) | met | 0.40 |" in page
    )
    assert (
        "| sentences embedded when asked | 300.0 | 600.0 | 150.0 | 300, 301 | 150 | 110 / 120 |"
        in page
    )


def test_image_sizes_are_targets_and_the_cold_build_is_dated() -> None:
    image = {"ref": "charterflow:0.1.0", "mb": 400.0, "build_seconds": 120.0, "built_at": "x"}
    operator = {**image, "ref": "charterflow-operator:0.1.0", "mb": 150.0}
    results = {
        "images": {
            "images": {"charterflow": image, "charterflow-operator": operator},
            "base": {"seconds": 130.0},
            "cold": {"seconds": 360.0, "at": "2030-01-02 03:04 UTC"},
            "warm_seconds": {"median": 0.5, "runs": [0.5]},
        }
    }
    page = report.render(results)
    assert (
        "| charterflow image size (uncompressed) | ≤ 350 MB | 400 MB | **missed** | 1.14 |" in page
    )
    assert "| charterflow-operator image size (uncompressed) | ≤ 200 MB | 150 MB | met |" in page
    assert "6.0 min, recorded 2030-01-02 03:04 UTC" in page
    assert "Warm `make images` (nothing changed): 0.50 s" in page


def test_hybrid_below_its_better_half_misses_and_speed_targets_read_the_embedding_rows() -> None:
    def scores(ndcg: float) -> dict[str, float]:
        return {"ndcg@10": ndcg, "recall@10": ndcg}

    report_ = {
        "queries": 10,
        "fusion": {"k": 10, "vector_weight": 2.0, "depth": 50},
        "results": {"lexical": scores(0.6), "vector": scores(0.8), "hybrid": scores(0.7)},
    }
    embedding = {
        "chunks": 8,
        "mean_tokens": 200.0,
        "rows": [
            {
                "embedder": "all-MiniLM-L6-v2",
                "mean_chars": 800,
                "chunks_per_s": {"median": 20.0, "runs": [20.0]},
                "query_ms": {"p50": 6.0, "p95": 9.0},
            }
        ],
    }
    results = {"retrieval": {"heldout": {"all-MiniLM-L6-v2": report_}}, "embedding": embedding}
    found = {t.name: t for t in report.targets(results)}
    hybrid = found["hybrid nDCG@10 ≥ max(lexical, vector), heldout"]
    assert hybrid.met is False
    assert hybrid.gap == pytest.approx(0.8 / 0.7)
    assert found["semantic embedding, chunks/s per worker process"].gap == pytest.approx(1.25)
    assert found["semantic query embedding p50"].met is True
    page = report.render(results)
    assert "| heldout | all-MiniLM-L6-v2 | hybrid (k=10, vector x2, 50) | 0.700 |" in page


def test_targets_not_run_are_neither_met_nor_missed() -> None:
    found = {t.name: t for t in report.targets({})}
    assert all(t.met is None and t.measured == "not run" for t in found.values())
    assert report.largest_gap(list(found.values())) is None


def test_a_steady_state_write_misses_its_zero_target_without_a_finite_gap() -> None:
    results = {
        "operator": {
            "steady": {"effective_writes_per_pass": 0.5, "write_requests_per_pass": 11.0},
        }
    }
    (writes,) = [t for t in report.targets(results) if t.name.startswith("writes")]
    assert writes.met is False
    assert writes.gap is not None
    assert math.isinf(writes.gap)


def test_percentile_interpolates() -> None:
    values = [float(x) for x in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([], 99) == 0.0


def test_the_load_tool_writes_plain_http_requests() -> None:
    raw = load._request("POST", "http://127.0.0.1:8000/a?b=1", ["X-A: 1"], b'{"q": 1}')
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"POST /a?b=1 HTTP/1.1"
    assert b"Content-Length: 8" in head
    assert b"X-A: 1" in head
    assert body == b'{"q": 1}'


def test_corpus_passages_are_distinct_and_stable() -> None:
    first = corpus.passages(50)
    assert len(set(first)) == 50
    assert corpus.passages(10, offset=40) == first[40:]


def test_corpus_does_not_depend_on_what_the_process_imported_before() -> None:
    """Semantic vectors of the passages are cached across processes (bench.dataset): a
    benchmark that imported more modules first must get the same passages."""
    script = "from bench import corpus; print(corpus.fingerprint(), corpus.passages(1, 7))"
    fresh = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    heavy = subprocess.run(
        [sys.executable, "-c", "import email.mime.text, xml.dom.minidom, bench.search; " + script],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert fresh == heavy
    assert re.fullmatch(r"[0-9a-f]{12}", fresh.split()[0])  # the cache key, then the passage


def test_the_search_table_shows_recall_and_latency_per_ef_search() -> None:
    results = sample_results()
    results["search"]["settings"] = {"hnsw_ef_search": 500}
    results["search"]["sizes"][0].update(
        hnsw_build_seconds=95.2,
        index_mb=130.4,
        recall_at_10_by_ef_search={"40": 0.7, "500": 0.97},
        vector_p95_ms_by_ef_search={"40": 3.25, "500": 19.0},
    )
    page = report.render(results)
    assert "| chunks | HNSW build s | index MB | ef_search 40 | ef_search 500 |" in page
    assert "| 100,000 | 95 | 130 | 0.700 · 3.2 | 0.970 · 19.0 |" in page


def test_plots_are_drawn_from_the_results_as_svg(tmp_path: Path) -> None:
    results = sample_results()
    results["search"]["sizes"][0]["recall_at_10_by_ef_search"] = {"40": 0.7, "500": 0.97}
    small = {**results["search"]["sizes"][0], "chunks": 10_000, "recall_at_10": 0.99}
    results["search"]["sizes"].insert(0, small)
    names = plots.write(results, tmp_path)
    assert names == [
        "bench-search-p95.svg",
        "bench-search-recall.svg",
        "bench-recall-ef-search.svg",
        "bench-api.svg",
    ]  # no ingestion results: no ingestion plot
    for name in names:
        root = ET.fromstring((tmp_path / name).read_text())  # noqa: S314 - we wrote it
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
    api = (tmp_path / "bench-api.svg").read_text()
    assert "bare live" in api
    assert "1 worker, live: 4000" in api
    recall = (tmp_path / "bench-recall-ef-search.svg").read_text()
    assert "100k chunks, hashing-v1: 40 → 0.7" in recall
    page = report.render(results, plots=names)
    assert "![bench-api](bench-api.svg)" in page


def test_streamed_answers_show_first_words_against_the_whole_answer() -> None:
    row = {"mode": "llm (local model)", "answered": 20}
    for key, ms in {
        "json_ms": 1460,
        "citations_ms": 190,
        "first_delta_ms": 280,
        "done_ms": 1640,
    }.items():
        row[key], row[f"{key}_p90"] = ms, ms + 100
    results = {
        "streaming": {
            "questions": 20,
            "documents": 20,
            "rows": [row],
            "model": {"tokens": 60, "token_ms": 20},
        }
    }
    page = report.render(results)
    assert (
        "| llm (local model) | 20 | 1,460 ms (p90 1,560) | 190 ms (p90 290) | 280 ms (p90 380) "
        "| 1,640 ms (p90 1,740) |" in page
    )
    assert "60 tokens 20 ms apart" in page
