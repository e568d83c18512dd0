"""Model mode with a real model on this machine: llama-cpp-python's server running
SmolLM2-135M-Instruct (Q4_1, ``tests/support/llamacpp.py``) as the ``LLM_URL`` of a
``charterflow dev`` server (SQLite, in-process ingestion) holding mixed ``bench.corpus``
documents.

Each question (the opening words of a paragraph, so that there is something to cite) is
asked as an ask (``POST /notebooks/{id}/ask``: the time to the whole answer, and whether the
model's answer was kept or replaced by the extracts) and as a streamed conversation turn (the
time to the first ``delta``: the first words on screen, and to ``done``). Answer quality on the
question-answering set is ``bench/qa.py``'s (it starts the server with the same function).

    python -m bench.llm [--questions 12] [--documents 5] [--max-tokens 96]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import median, percentile, write_result
from bench.streaming import API, _questions, _seed, _server, _streamed
from tests.support.llamacpp import LlamaServer


def _ask(client: httpx.Client, nb: str, question: str, headers: dict[str, str]) -> dict:
    started = time.perf_counter()
    r = client.post(f"{API}/notebooks/{nb}/ask", json={"question": question}, headers=headers)
    r.raise_for_status()
    body = r.json()
    return {
        "ask_ms": (time.perf_counter() - started) * 1000,
        "llm": body["mode"] == "llm",
        "cited": bool(body["citations"]),
    }


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(median(values), 1),
        "p95": round(percentile(values, 95), 1),
    }


def run(questions: int = 12, documents: int = 5, max_tokens: int = 96) -> dict[str, Any]:
    asked = _questions(questions, documents)
    with tempfile.TemporaryDirectory(prefix="bench-llm-") as tmp:
        home = Path(tmp)
        model = LlamaServer(home / "llama")
        started = time.perf_counter()
        model.start()
        server_start_s = time.perf_counter() - started
        try:
            env = {"LLM_URL": model.url, "LLM_MODEL": model.model}
            env["LLM_MAX_TOKENS"] = str(max_tokens)
            with _server(home, **env) as url, httpx.Client(base_url=url, timeout=300) as client:
                headers, nb = _seed(client, documents)
                _ask(client, nb, asked[0], headers)  # warm-up: the model's first prompt
                asks = [_ask(client, nb, q, headers) for q in asked]
                conversation = client.post(
                    f"{API}/notebooks/{nb}/conversations", json={}, headers=headers
                ).json()
                turns = f"{API}/conversations/{conversation['id']}/messages"
                streams = [_streamed(client, turns, q, headers) for q in asked]
        finally:
            model.stop()
    first = [s["first_delta_ms"] for s in streams if "first_delta_ms" in s]
    done = [s["done_ms"] for s in streams if "done_ms" in s]
    return {
        "model": model.model,
        "server": "llama-cpp-python 0.3.36 (CPU, 2 threads)",
        "questions": questions,
        "documents": documents,
        "max_tokens": max_tokens,
        "server_start_s": round(server_start_s, 1),
        "ask_ms": _stats([a["ask_ms"] for a in asks]),
        "first_delta_ms": _stats(first) if first else None,
        "done_ms": _stats(done) if done else None,
        "answered_by_model": sum(a["llm"] for a in asks),
        "answered_with_citations": sum(a["cited"] for a in asks),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=12)
    parser.add_argument("--documents", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args(argv)
    result = run(args.questions, args.documents, args.max_tokens)
    write_result("llm", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
