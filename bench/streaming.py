"""Streamed answers: how soon the first words appear, against the whole answer.

A ``charterflow dev`` server (SQLite, in-process ingestion) gets mixed documents of
``bench.corpus``; each question (the opening words of one of its paragraphs, so that there is
something to cite) is asked twice in a conversation: as JSON (the time to the whole answer)
and as Server-Sent Events (the time to the ``citations`` event, to the first ``delta`` — the
first words on screen — and to ``done``). Extractive answers first; then a server whose
``LLM_URL`` is a local OpenAI-compatible model that generates ``TOKENS`` tokens
``TOKEN_MS`` apart (streamed, or all at once after the same time when not streamed), so the
model's speed is fixed and what is measured is what CharterFlow adds around it.

    python -m bench.streaming [--questions 20] [--documents 20]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench import corpus
from bench.common import JWT_SECRET, median, percentile, write_result
from tests.support.devserver import dev_server
from tests.support.llm import OpenAICompatible, StreamReply

TOKENS = 60
TOKEN_MS = 20
API = "/api/v1"


def _model_reply(_path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | StreamReply:
    pieces = [f"word{i} " for i in range(TOKENS - 1)] + ["end [1]."]
    if body.get("stream"):
        return StreamReply(pieces, delay=TOKEN_MS / 1000)
    time.sleep(TOKENS * TOKEN_MS / 1000)  # the same generation time, delivered at once
    return 200, {"choices": [{"message": {"role": "assistant", "content": "".join(pieces)}}]}


@contextmanager
def _server(home: Path, **env: str) -> Iterator[str]:
    extra = {"JWT_SECRET": JWT_SECRET, "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json", **env}
    with dev_server(home, **extra) as (url, _proc):
        yield url


def _seed(client: httpx.Client, documents: int) -> tuple[dict[str, str], str]:
    """A user, a notebook of ``documents`` ready documents; (headers, notebook id)."""
    r = client.post(
        f"{API}/auth/register",
        json={"email": "bench@example.com", "password": "correct horse battery", "name": "B"},
    )
    r.raise_for_status()
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    notebook = client.post(f"{API}/notebooks", json={"title": "Bench"}, headers=headers).json()
    ids = []
    for name, data in corpus.documents(documents):
        r = client.post(
            f"{API}/notebooks/{notebook['id']}/documents",
            files={"file": (name, data, "application/octet-stream")},
            headers=headers,
        )
        r.raise_for_status()
        ids.append(r.json()["id"])
    deadline = time.monotonic() + 600
    while ids and time.monotonic() < deadline:
        statuses = {
            i: client.get(f"{API}/documents/{i}", headers=headers).json()["status"] for i in ids
        }
        if "failed" in statuses.values():
            raise RuntimeError(f"ingestion failed: {statuses}")
        ids = [i for i, s in statuses.items() if s != "ready"]
        time.sleep(0.2)
    if ids:
        raise RuntimeError(f"documents not ready: {ids}")
    return headers, notebook["id"]


def _questions(count: int, documents: int) -> list[str]:
    """The opening words of a paragraph of each document in turn."""
    return [
        " ".join(corpus.document_text(i % documents, 2_000)[0].split()[:10]) + "?"
        for i in range(count)
    ]


def _streamed(
    client: httpx.Client, url: str, question: str, headers: dict[str, str]
) -> dict[str, float]:
    """Milliseconds from sending to the ``citations`` event, the first ``delta`` and ``done``."""
    marks: dict[str, float] = {}
    started = time.perf_counter()
    with client.stream(
        "POST", url, json={"question": question}, headers={**headers, "Accept": "text/event-stream"}
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("event:"):
                continue
            name = line[6:].strip()
            elapsed = (time.perf_counter() - started) * 1000
            key = {"citations": "citations_ms", "delta": "first_delta_ms", "done": "done_ms"}.get(
                name
            )
            if key:
                marks.setdefault(key, elapsed)
            if name == "error":
                raise RuntimeError(f"stream error for {question!r}")
    return marks


def _measure(
    url: str, headers: dict[str, str], notebook: str, questions: list[str]
) -> dict[str, Any]:
    rows: list[dict[str, float]] = []
    with httpx.Client(base_url=url, timeout=120) as client:
        conversation = client.post(
            f"{API}/notebooks/{notebook}/conversations", json={}, headers=headers
        ).json()
        turns = f"{API}/conversations/{conversation['id']}/messages"
        client.post(turns, json={"question": questions[0]}, headers=headers)  # warm-up
        for question in questions:
            started = time.perf_counter()
            r = client.post(turns, json={"question": question}, headers=headers)
            r.raise_for_status()
            row = {"json_ms": (time.perf_counter() - started) * 1000}
            row.update(_streamed(client, turns, question, headers))
            if "first_delta_ms" in row:
                rows.append(row)
    keys = ["json_ms", "citations_ms", "first_delta_ms", "done_ms"]
    return {
        "answered": len(rows),
        **{k: round(median([r[k] for r in rows]), 1) for k in keys},
        **{f"{k}_p90": round(percentile([r[k] for r in rows], 90), 1) for k in keys},
    }


def run(questions: int = 20, documents: int = 20) -> dict[str, Any]:
    asked = _questions(questions, documents)
    with tempfile.TemporaryDirectory(prefix="bench-streaming-") as tmp:
        home = Path(tmp)
        with _server(home) as url, httpx.Client(base_url=url, timeout=120) as client:
            headers, notebook = _seed(client, documents)
            extractive = _measure(url, headers, notebook, asked)
        with (
            OpenAICompatible(_model_reply) as model,
            _server(home, LLM_URL=model.url, LLM_MODEL="bench-model") as url,
        ):
            llm = _measure(url, headers, notebook, asked)
    return {
        "questions": questions,
        "documents": documents,
        "model": {"tokens": TOKENS, "token_ms": TOKEN_MS},
        "rows": [{"mode": "extractive", **extractive}, {"mode": "llm (local model)", **llm}],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--documents", type=int, default=20)
    args = parser.parse_args(argv)
    result = run(args.questions, args.documents)
    write_result("streaming", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
