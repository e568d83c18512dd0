"""``python -m bench`` (``make bench``): run every benchmark, then rewrite docs/benchmarks.md.

Each benchmark writes ``bench/results/<name>.json``; one that fails is reported and the others
still run (the table then shows the previous results of the failed one, dated by run.json).

    python -m bench [--only api,search] [--quick] [--render]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import traceback
from collections.abc import Callable

from charterflow.retrieval.embedders import SemanticEmbedder

from bench import (
    api,
    ask,
    embedding,
    hostile,
    hostile_http,
    images,
    ingestion,
    kube,
    llm,
    qa,
    realnode,
    report,
    retrieval,
    search,
    segmentation,
    streaming,
)
from bench.common import RESULTS, load_average, machine, read_results, write_result

FULL: dict[str, Callable[[], object]] = {
    "retrieval": lambda: retrieval.main([]),
    "embedding": lambda: write_result("embedding", embedding.run(chunks=96, repeats=3)),
    "api": lambda: write_result("api", api.run(repeats=3, duration=5, connections=16)),
    "ask": lambda: write_result("ask", ask.run(repeats=3, questions=40)),
    "ingestion": lambda: write_result("ingestion", ingestion.run(documents=200, repeats=3)),
    "hostile": lambda: write_result("hostile", hostile.run()),
    "hostile_http": lambda: write_result("hostile_http", hostile_http.run()),
    "segmentation": lambda: write_result("segmentation", segmentation.run(repeats=20)),
    "search": lambda: write_result("search", search.run([10_000, 100_000], queries=40, repeats=3)),
    # The default model's real vectors: the first run embeds the corpus (~35 ms a passage per
    # process, ~1 h for 100k on 2 cores), kept in ~/.cache/charterflow/bench-vectors after.
    # `nice -n 19 python -m bench.dataset --fill 100000` fills it beforehand, resumably.
    "search_semantic": lambda: write_result(
        "search_semantic",
        search.run([10_000, 100_000], queries=40, repeats=3, embedder_name=SEMANTIC),
    ),
    "operator": lambda: write_result("operator", kube.run(repeats=3, many=50, many_repeats=3)),
    "images": lambda: write_result("images", images.run(repeats=3)),
    "realnode": lambda: write_result("realnode", realnode.run()),
    "streaming": lambda: write_result("streaming", streaming.run(questions=20, documents=20)),
    # A real model (llama-cpp-python's server, SmolLM2-135M-Instruct; `make llm-server`).
    "llm": lambda: write_result("llm", llm.run(questions=12, documents=5)),
    # Real documents through the HTTP API: extractive answers and charters, then model mode
    # when a model server is there (bench.qa.model_endpoint), "not run" with the reason if not.
    "qa": lambda: write_result("qa", qa.run()),
}
SEMANTIC = SemanticEmbedder.name
#: Opt-in (``--only search_1m``), never in the default run: a million chunks (hashing vectors,
#: which a process pool makes in minutes; the index is the same) for p95, recall, index build
#: time and size at that scale.
OPT_IN: dict[str, Callable[[], object]] = {
    "search_1m": lambda: write_result("search_1m", search.run([1_000_000], queries=40, repeats=3)),
}
#: Seconds instead of minutes: checks that every benchmark still runs, numbers meaningless.
QUICK: dict[str, Callable[[], object]] = {
    "retrieval": lambda: retrieval.main(["--limit", "40"]),
    "embedding": lambda: write_result("embedding", embedding.run(chunks=8, repeats=1, queries=5)),
    "api": lambda: write_result("api", api.run(repeats=1, duration=1, connections=4, chunks=1000)),
    "ask": lambda: write_result("ask", ask.run(repeats=1, questions=5, chunks=1000)),
    "ingestion": lambda: write_result("ingestion", ingestion.run(documents=10, repeats=1)),
    "hostile": lambda: write_result("hostile", hostile.run(["pdf page tree 300x300"])),
    "hostile_http": lambda: write_result("hostile_http", hostile_http.run()),
    "segmentation": lambda: write_result("segmentation", segmentation.run(repeats=1)),
    "search": lambda: write_result("search", search.run([1_000, 2_000], queries=10, repeats=1)),
    "search_semantic": lambda: write_result(
        "search_semantic",
        search.run([1_000, 2_000], queries=10, repeats=1, embedder_name=SEMANTIC),
    ),
    "operator": lambda: write_result("operator", kube.run(repeats=1, many=10, many_repeats=1)),
    "images": lambda: write_result("images", images.run(repeats=1)),
    "streaming": lambda: write_result("streaming", streaming.run(questions=2, documents=3)),
    "llm": lambda: write_result("llm", llm.run(questions=2, documents=2, max_tokens=16)),
    "qa": lambda: write_result("qa", qa.run(limit=3, charters=1)),
}  # no realnode: it is the real-pod test tier itself (minutes), run by `make test` anyway


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help=f"comma list of: {', '.join([*FULL, *OPT_IN])}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--render", action="store_true", help="only re-render the document")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    suites = {**defaults, **({} if args.quick else OPT_IN)}
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(defaults)
    if unknown := set(chosen) - set(suites):
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    failed: list[str] = []
    if not args.render:
        began = time.monotonic()
        load_before = load_average()
        seconds: dict[str, float] = {}
        for name in chosen:
            print(f"== {name}", flush=True)
            started = time.monotonic()
            try:
                suites[name]()
            except Exception:
                traceback.print_exc()
                failed.append(name)
            seconds[name] = round(time.monotonic() - started, 1)
        command = "python -m bench" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
        run = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "make bench" if command == "python -m bench" else command,
            "wall_seconds": round(time.monotonic() - began, 1),
            "seconds": seconds,
            "failed": failed,
            "machine": machine(),
            "load_before": load_before,
            "load_after": load_average(),
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    path = report.write(read_results())
    print(f"wrote {path}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
