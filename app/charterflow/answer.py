"""Answers grounded in a notebook's documents, every statement cited.

Retrieval is ``search.search``; only passages whose cosine similarity to the question reaches
the embedder's ``min_similarity`` count as relevant, so an unrelated question gets "not found"
rather than a citation to a passage that does not support it.

- No ``LLM_URL``: *extractive* — the most relevant sentences of the relevant passages, each
  followed by its citation marker; citations point at the exact sentence span.
- ``LLM_URL`` (OpenAI-compatible chat completions): the model sees only the numbered relevant
  passages and must cite them as ``[n]``; markers are renumbered to the citations returned,
  markers naming no passage are dropped. If the model fails, the extractive answer is given
  with a ``warning``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import numpy as np
from sqlalchemy.orm import Session

from charterflow.ingest.chunking import sentences
from charterflow.ingest.embeddings import Embedder, endpoint, supports, vector_cache
from charterflow.logging import get_logger
from charterflow.models.chunk import EMBEDDING_DIM
from charterflow.search import Hit, search
from charterflow.settings import Settings

log = get_logger("charterflow.answer")
NOT_FOUND = "I could not find anything about that in this notebook's documents."
MAX_SENTENCES = 3
SENTENCE_PASSAGES = 3
CANDIDATE_PASSAGES = 8
_MARKER = re.compile(r"\[(\d{1,3})\]")
SYSTEM_PROMPT = (
    "You answer questions using ONLY the numbered passages provided. Cite every statement "
    "with the number of the passage that supports it, like [1] or [2]. If the passages do "
    "not contain the answer, say that you could not find it, and cite nothing. Be concise."
)


@dataclass
class Citation:
    document_id: str
    document_title: str
    chunk_id: str
    text: str
    start: int
    end: int
    page: int | None
    score: float


@dataclass
class Answer:
    answer: str
    mode: Literal["extractive", "llm"]
    citations: list[Citation] = field(default_factory=list)
    warning: str | None = None


class LLMError(RuntimeError):
    """The language model could not give an answer (unreachable, error status, bad reply)."""


def cite(hit: Hit, start: int | None = None, end: int | None = None, score: float = 0) -> Citation:
    s, e = (0, len(hit.text)) if start is None or end is None else (start, end)
    return Citation(
        document_id=hit.document_id,
        document_title=hit.document_title,
        chunk_id=hit.chunk_id,
        text=hit.text[s:e],
        start=hit.start + s,
        end=hit.start + e,
        page=hit.page,
        score=round(score or hit.similarity, 4),
    )


#: Decides whether a sentence (its text, its similarity to the question) is cited, and how it
#: ranks: a weight, or None to leave it out.
Judge = Callable[[str, float], float | None]


def extractive(
    embedder: Embedder,
    question: str,
    passages: list[Hit],
    max_sentences: int = MAX_SENTENCES,
    judge: Judge | None = None,
) -> Answer:
    """The best sentences of ``passages``, each cited.

    By default ``passages`` are already relevant (best first): their best sentence is always
    kept, the others if they support the question, and only the first ``SENTENCE_PASSAGES``
    are split into sentences (embedding those sentences is most of an answer's time, and the
    sentences cited nearly always come from the best passages). With ``judge``, it alone
    decides and ranks, over every passage. The question's vector comes from the cache
    (retrieval has just embedded it); the sentences' vectors were stored at ingestion, or are
    embedded now for passages stored without them.
    """
    considered = passages if judge is not None else passages[:SENTENCE_PASSAGES]
    spans = [(hit, s, e) for hit in considered for s, e in sentences(hit.text)]
    if not spans:
        return Answer(NOT_FOUND, "extractive")
    q = vector_cache.embed(embedder, [question])[0]
    sims = [float(x) for x in _sentence_matrix(embedder, considered) @ q]
    weights: list[float | None] = (
        list(sims)
        if judge is None
        else [judge(h.text[s:e], sims[i]) for i, (h, s, e) in enumerate(spans)]
    )
    ranked = sorted(
        (i for i, w in enumerate(weights) if w is not None), key=lambda i: -(weights[i] or 0)
    )
    chosen: list[Citation] = []
    seen: set[tuple[str, int, int] | str] = set()
    for i in ranked:
        hit, s, e = spans[i]
        sim = sims[i]
        if judge is None and chosen and not supports(embedder, question, hit.text[s:e], sim):
            continue  # the best sentence of a relevant passage is always kept
        citation = cite(hit, s, e, sim)
        keys = {(citation.document_id, citation.start, citation.end), citation.text.casefold()}
        if keys & seen:
            continue  # the same sentence from an overlapping passage
        seen |= keys
        chosen.append(citation)
        if len(chosen) == max_sentences:
            break
    if not chosen:
        return Answer(NOT_FOUND, "extractive")
    text = " ".join(f"{c.text} [{n}]" for n, c in enumerate(chosen, start=1))
    return Answer(text, "extractive", chosen)


def _sentence_matrix(embedder: Embedder, passages: list[Hit]) -> np.ndarray:
    """The vectors of every sentence of ``passages``, in order: those stored at ingestion
    (``Hit.sentence_vectors``) where they match the sentences, the rest embedded now (through
    the cache). Embedding ~30 sentences per ask was ~90% of an extractive answer's CPU."""
    per_hit = [sentences(hit.text) for hit in passages]
    missing = [
        hit.text[s:e]
        for hit, spans in zip(passages, per_hit, strict=True)
        if hit.sentence_vectors is None or len(hit.sentence_vectors) != len(spans)
        for s, e in spans
    ]
    fresh = iter(vector_cache.embed(embedder, missing))
    rows: list[np.ndarray] = []
    for hit, spans in zip(passages, per_hit, strict=True):
        stored = hit.sentence_vectors
        if stored is not None and len(stored) == len(spans):
            rows.extend(stored)
        else:
            rows.extend(next(fresh) for _ in spans)
    return np.stack(rows) if rows else np.zeros((0, EMBEDDING_DIM), dtype=np.float32)


def chat_request(settings: Settings, question: str, passages: list[Hit]) -> dict[str, Any]:
    """The chat-completions body asking the model to answer ``question`` from ``passages``."""
    numbered = "\n\n".join(
        f"[{n}] ({hit.document_title}{f', page {hit.page}' if hit.page else ''})\n{hit.text}"
        for n, hit in enumerate(passages, start=1)
    )
    return {
        "model": settings.llm_model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Passages:\n\n{numbered}\n\nQuestion: {question}"},
        ],
    }


def llm_headers(settings: Settings) -> dict[str, str]:
    if settings.llm_api_key:
        return {"Authorization": f"Bearer {settings.llm_api_key.get_secret_value()}"}
    return {}


def cited_reply(content: str, passages: list[Hit]) -> Answer:
    """The model's reply with its ``[n]`` renumbered to the citations returned; markers naming
    no passage are dropped."""
    order: dict[int, int] = {}

    def renumber(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if not 1 <= n <= len(passages):
            return ""
        order.setdefault(n, len(order) + 1)
        return f"[{order[n]}]"

    text = re.sub(r" +([.,;:!?])", r"\1", _MARKER.sub(renumber, content.strip())).strip()
    citations = [cite(passages[n - 1]) for n in order]
    return Answer(text, "llm", citations)


def ask_llm(settings: Settings, question: str, passages: list[Hit]) -> Answer:
    """Ask the chat model to answer from ``passages`` only; map its ``[n]`` to citations."""
    if not settings.llm_url or not settings.llm_model:
        raise LLMError("LLM_URL and LLM_MODEL are not set")
    try:
        r = httpx.post(
            endpoint(settings.llm_url, "/chat/completions"),
            json=chat_request(settings, question, passages),
            headers=llm_headers(settings),
            timeout=60,
        )
        r.raise_for_status()
        content = str(r.json()["choices"][0]["message"]["content"]).strip()
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise LLMError(type(exc).__name__) from exc
    if not content:
        raise LLMError("empty reply")
    return cited_reply(content, passages)


def relevant_passages(
    db: Session, embedder: Embedder, notebook_id: str, query: str, top_k: int = 5
) -> list[Hit]:
    """The notebook's passages that support ``query``, most similar first, at most ``top_k``."""
    hits = search(db, embedder, notebook_id, query, limit=max(top_k, CANDIDATE_PASSAGES))
    relevant = [h for h in hits if supports(embedder, query, h.text, h.similarity)]
    relevant.sort(key=lambda h: -h.similarity)
    return relevant[:top_k]


def answer(
    db: Session,
    settings: Settings,
    embedder: Embedder,
    notebook_id: str,
    question: str,
    top_k: int = 5,
    *,
    prompt: str | None = None,
) -> Answer:
    """Answer ``question`` from the notebook's documents, with citations.

    ``question`` is what retrieval uses; ``prompt`` (default: the question) is what the model
    is asked, so a conversation can retrieve with a rewritten follow-up yet ask it as said.
    """
    mode: Literal["extractive", "llm"] = "llm" if settings.llm_url else "extractive"
    relevant = relevant_passages(db, embedder, notebook_id, question, top_k)
    if not relevant:
        return Answer(NOT_FOUND, mode)
    if settings.llm_url:
        try:
            return ask_llm(settings, prompt or question, relevant)
        except LLMError as exc:
            log.warning("LLM failed; answering extractively", error=str(exc))
            fallback = extractive(embedder, question, relevant)
            fallback.warning = f"The language model is unavailable ({exc}); extractive answer."
            return fallback
    return extractive(embedder, question, relevant)


async def stream_llm(settings: Settings, question: str, passages: list[Hit]) -> AsyncIterator[str]:
    """The model's answer as it is generated (OpenAI ``stream: true``), piece by piece.

    Leaving the iteration early (a client that disconnected) closes the upstream request.
    Raises ``LLMError`` for an error status, a broken stream or a reply that stops short.
    """
    if not settings.llm_url or not settings.llm_model:
        raise LLMError("LLM_URL and LLM_MODEL are not set")
    body = {**chat_request(settings, question, passages), "stream": True}
    url = endpoint(settings.llm_url, "/chat/completions")
    finished = False
    try:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(60, connect=10)) as client,
            client.stream("POST", url, json=body, headers=llm_headers(settings)) as response,
        ):
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    finished = True
                    break
                choice = json.loads(data)["choices"][0]
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield str(piece)
                if choice.get("finish_reason"):
                    finished = True
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise LLMError(type(exc).__name__) from exc
    if not finished:
        raise LLMError("the stream ended before the answer was complete")
