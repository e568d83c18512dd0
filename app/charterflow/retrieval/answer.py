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

from collections.abc import Callable

import numpy as np
from sqlalchemy.orm import Session

from charterflow.logging import get_logger
from charterflow.models.chunk import EMBEDDING_DIM
from charterflow.retrieval import llm
from charterflow.retrieval.citations import Answer, Citation, cite
from charterflow.retrieval.embedders import Embedder, supports, vector_cache
from charterflow.retrieval.search import Hit, search
from charterflow.retrieval.text import sentences
from charterflow.settings import Settings

log = get_logger("charterflow.answer")
NOT_FOUND = "I could not find anything about that in this notebook's documents."
MAX_SENTENCES = 3
SENTENCE_PASSAGES = 3
CANDIDATE_PASSAGES = 8


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


def relevant_passages(
    db: Session, embedder: Embedder, notebook_id: str, query: str, top_k: int = 5
) -> list[Hit]:
    """The notebook's passages that support ``query``, most similar first, at most ``top_k``."""
    hits = search(db, embedder, notebook_id, query, limit=max(top_k, CANDIDATE_PASSAGES))
    relevant = [h for h in hits if supports(embedder, query, h.text, h.similarity)]
    relevant.sort(key=lambda h: -h.similarity)
    return relevant[:top_k]


def unavailable(exc: llm.LLMError, extracted: Answer, what: str = "answer") -> Answer:
    """``extracted`` as the stand-in for a model that failed, saying so in its warning."""
    log.warning("LLM failed; using extracts", error=str(exc), what=what)
    extracted.warning = f"The language model is unavailable ({exc}); extractive {what}."
    return extracted


def model_or_extracts(
    settings: Settings,
    write: Callable[[], Answer],
    extract: Callable[[], Answer],
    what: str = "answer",
) -> Answer:
    """The model's answer (``write``) when one is configured, else the extracts; a model that
    fails is replaced by the extracts with a warning. The one place this rule lives: answers,
    charter sections and (before their first token) streamed turns all go through it."""
    if not llm.configured(settings):
        return extract()
    try:
        return write()
    except llm.LLMError as exc:
        return unavailable(exc, extract(), what)


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
    relevant = relevant_passages(db, embedder, notebook_id, question, top_k)
    if not relevant:
        return Answer(NOT_FOUND, "llm" if llm.configured(settings) else "extractive")
    return model_or_extracts(
        settings,
        lambda: llm.ask_llm(settings, prompt or question, relevant),
        lambda: extractive(embedder, question, relevant),
    )
