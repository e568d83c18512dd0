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
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from charterflow.logging import get_logger
from charterflow.models.chunk import EMBEDDING_DIM
from charterflow.retrieval import llm, quotes
from charterflow.retrieval.citations import Answer, Citation, cite
from charterflow.retrieval.embedders import Embedder, supports, vector_cache
from charterflow.retrieval.search import Documents, Hit, search
from charterflow.retrieval.text import sentences
from charterflow.settings import Settings

log = get_logger("charterflow.answer")
NOT_FOUND = "The sources don't answer this."
#: Pieces an answer quotes at most (a piece: a sentence, with the neighbours it needs).
MAX_SENTENCES = 3
SENTENCE_PASSAGES = 3
CANDIDATE_PASSAGES = 8
#: A sentence ending with a colon brings at most this many of the items after it.
LIST_ITEMS = 6
#: ... and at most this many characters of them.
LIST_CHARS = 700
#: The answer below a matching FAQ question: at most this many sentences.
FAQ_SENTENCES = 3
FAQ_CHARS = 500
#: A piece after the first must be at most this much less similar to the question (``_floor``).
MARGIN = 0.12
#: The best sentence must be this much more similar to the question than a passage must be
#: (``Embedder.min_similarity``): a passage can be near a question on its words alone, its
#: sentences not (all-MiniLM-L6-v2: right answers score 0.55-0.85, unrelated ones 0.35-0.4).
SENTENCE_BAR = 1.5


#: Decides whether a sentence (its text, its similarity to the question) is cited, and how it
#: ranks: a weight, or None to leave it out.
Judge = Callable[[str, float], float | None]


@dataclass
class _Piece:
    """A run of whole units of one passage (``first``..``last``) that an answer may quote."""

    hit: int
    first: int
    last: int
    weight: float
    similarity: float


def extractive(
    embedder: Embedder,
    question: str,
    passages: list[Hit],
    max_sentences: int = MAX_SENTENCES,
    judge: Judge | None = None,
) -> Answer:
    """The best whole sentences of ``passages``, in reading order, each piece cited.

    A sentence is quoted whole (``quotes.units``), never a question (in an FAQ, the answer
    below a matching question is quoted instead), nor one that only repeats the question; a
    sentence that introduces a list (a colon) brings the list, one that leaves the asked value
    to the next sentence brings that sentence, one that leans on the sentence before it ("This
    ...") brings that one. The same sentence from overlapping passages is quoted once.

    By default ``passages`` are already relevant (best first): their best sentence is always
    kept, the others if they support the question, and only the first ``SENTENCE_PASSAGES``
    are split into sentences (embedding those sentences is most of an answer's time, and the
    sentences cited nearly always come from the best passages). With ``judge``, it alone
    decides and ranks, over every passage. The question's vector comes from the cache
    (retrieval has just embedded it); the sentences' vectors were stored at ingestion, or are
    embedded now for passages stored without them.
    """
    considered = passages if judge is not None else passages[:SENTENCE_PASSAGES]
    per_hit = [quotes.units(h.text, starts_document=h.start == 0) for h in considered]
    if not any(per_hit):
        return Answer(NOT_FOUND, "extractive")
    q = vector_cache.embed(embedder, [question])[0]
    matrices = _sentence_matrices(embedder, considered)
    sims = [_unit_vectors(m, us) @ q for m, us in zip(matrices, per_hit, strict=True)]
    pieces: list[_Piece] = []
    for i, (hit, us) in enumerate(zip(considered, per_hit, strict=True)):
        for j, u in enumerate(us):
            said = hit.text[u.start : u.end]
            sim = float(sims[i][j])
            if u.question:
                last = _answer_below(hit.text, us, j)
                if last is None:
                    continue
                first, said = j + 1, hit.text[us[j + 1].start : us[last].end]
                sim = max(sim, float(max(sims[i][j + 1 : last + 1])))
            elif not u.whole or quotes.echoes(said, question):
                continue
            else:
                first = last = j
            weight = sim if judge is None else judge(said, sim)
            if weight is not None:
                pieces.append(_Piece(i, first, last, weight, sim))
    pieces.sort(key=lambda p: -p.weight)
    chosen: list[_Piece] = []
    for piece in pieces:
        hit = considered[piece.hit]
        said = hit.text[per_hit[piece.hit][piece.first].start : per_hit[piece.hit][piece.last].end]
        if judge is None and not chosen and piece.similarity < _bar(embedder):
            break  # not even the best sentence answers it
        if judge is None and chosen:
            if not within_reach(embedder, piece.similarity, chosen[0].similarity):
                continue  # far less relevant than the best: a neighbour in meaning
            if not supports(embedder, question, said, piece.similarity):
                continue
        chosen.append(_with_neighbours(piece, hit.text, per_hit[piece.hit], question))
    citations = _merged(considered, per_hit, chosen, max_sentences)
    if not citations:
        return Answer(NOT_FOUND, "extractive")
    text = " ".join(f"{quotes.collapse(c.text)} [{n}]" for n, c in enumerate(citations, start=1))
    return Answer(text, "extractive", citations)


def within_reach(embedder: Embedder, similarity: float, best: float) -> bool:
    """Whether ``similarity`` is near enough the ``best`` one to count beside it: within
    ``MARGIN`` (semantic similarities), or half of it (word overlap, which spreads wider)."""
    return similarity >= (best / 2 if embedder.lexical else best - MARGIN)


def _bar(embedder: Embedder) -> float:
    """The similarity an answer's best sentence must reach."""
    return embedder.min_similarity * SENTENCE_BAR


def _answer_below(text: str, us: list[quotes.Unit], j: int) -> int | None:
    """The last unit of the answer that follows the question ``us[j]`` (an FAQ entry): whole
    sentences up to the next question, at most ``FAQ_SENTENCES`` or ``FAQ_CHARS`` (the first
    always), with the list a sentence introduces; None if no whole sentence follows."""
    last = None
    k = j + 1
    while k < len(us) and k - j <= FAQ_SENTENCES:
        said = text[us[k].start : us[k].end]
        if us[k].question or not us[k].whole:
            break
        if last is not None and us[k].end - us[j + 1].start > FAQ_CHARS:
            break
        last, k = k, k + 1
        if quotes.leads_in(said):
            break  # ``_with_neighbours`` brings the list
    return last


def _with_neighbours(piece: _Piece, text: str, us: list[quotes.Unit], question: str) -> _Piece:
    """``piece`` with the sentences it cannot be understood without (see ``extractive``)."""
    first, last = piece.first, piece.last

    def said(k: int) -> str:
        return text[us[k].start : us[k].end]

    if (
        first > 0
        and not us[first].opens_paragraph
        and quotes.leans_back(said(first))
        and us[first - 1].whole
        and not us[first - 1].question
    ):
        first -= 1
    if quotes.leads_in(said(last)):
        budget, k = LIST_CHARS, last + 1
        while k < len(us) and k - piece.last <= LIST_ITEMS and not us[k].question:
            budget -= us[k].end - us[k].start
            if budget < 0:
                break
            last, k = k, k + 1
            if quotes.leads_in(said(last)):
                break
        # End the list where an item ends a sentence, if one does (not on a cut-off item);
        # a list of bare items (values, names) is kept whole.
        ended = [j for j in range(piece.last + 1, last + 1) if quotes.terminal(said(j))]
        if ended:
            last = ended[-1]
    elif (
        quotes.wants_value(question)
        and not quotes.has_value(text[us[first].start : us[last].end])
        and last + 1 < len(us)
        and quotes.has_value(said(last + 1))
        and us[last + 1].whole  # a sentence, not the next section's number
        and not us[last + 1].question
    ):
        last += 1
    return _Piece(piece.hit, first, last, piece.weight, piece.similarity)


def _merged(
    passages: list[Hit], per_hit: list[list[quotes.Unit]], chosen: list[_Piece], limit: int
) -> list[Citation]:
    """Up to ``limit`` pieces cited, in reading order (documents in the order of their best
    piece). Pieces that overlap or touch in one passage become one; a piece that repeats one
    already kept (an overlapping passage, the same sentence in another document) is left out."""

    def span(p: _Piece) -> tuple[str, int, int, str]:
        hit, us = passages[p.hit], per_hit[p.hit]
        s, e = us[p.first].start, us[p.last].end
        return hit.document_id, hit.start + s, hit.start + e, quotes.collapse(hit.text[s:e])

    def repeats(a: _Piece, b: _Piece) -> bool:
        (da, sa, ea, ta), (db, sb, eb, tb) = span(a), span(b)
        ta, tb = ta.casefold(), tb.casefold()
        return (da == db and sa < eb and sb < ea) or ta in tb or tb in ta

    kept: list[_Piece] = []
    for piece in chosen:
        for k, other in enumerate(kept):
            if other.hit == piece.hit and _touch(other, piece, per_hit[piece.hit]):
                kept[k] = _Piece(
                    other.hit,
                    min(other.first, piece.first),
                    max(other.last, piece.last),
                    other.weight,
                    max(other.similarity, piece.similarity),
                )
                break
        else:
            if len(kept) < limit and not any(repeats(piece, other) for other in kept):
                kept.append(piece)
    # A merge can make a kept piece cover one kept before it from an overlapping passage: the
    # larger stays (citations are sorted into reading order below anyway).
    unique: list[_Piece] = []
    for piece in sorted(kept, key=lambda p: -len(span(p)[3])):
        if not any(repeats(piece, other) for other in unique):
            unique.append(piece)
    kept = [p for p in kept if p in unique]
    first_seen: dict[str, int] = {}
    for n, piece in enumerate(kept):
        first_seen.setdefault(passages[piece.hit].document_id, n)
    citations = [
        cite(
            passages[p.hit],
            per_hit[p.hit][p.first].start,
            per_hit[p.hit][p.last].end,
            p.similarity,
        )
        for p in kept
    ]
    citations.sort(key=lambda c: (first_seen[c.document_id], c.start))
    return citations


def _touch(a: _Piece, b: _Piece, us: list[quotes.Unit]) -> bool:
    """Whether two pieces of one passage overlap, or follow each other in one paragraph."""
    if a.first <= b.last and b.first <= a.last:
        return True
    later = max(a.first, b.first)
    return abs(later - min(a.last, b.last)) == 1 and not us[later].opens_paragraph


def _unit_vectors(matrix: np.ndarray, us: list[quotes.Unit]) -> np.ndarray:
    """One unit vector per unit: the normalised sum of its sentences' vectors."""
    if not us:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    rows = np.stack([matrix[u.first : u.last + 1].sum(axis=0) for u in us])
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms == 0, 1, norms)).astype(np.float32)


def _sentence_matrices(embedder: Embedder, passages: list[Hit]) -> list[np.ndarray]:
    """The vectors of every sentence of each passage, in order: those stored at ingestion
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
    out: list[np.ndarray] = []
    for hit, spans in zip(passages, per_hit, strict=True):
        stored = hit.sentence_vectors
        if stored is not None and len(stored) == len(spans):
            out.append(np.asarray(stored, dtype=np.float32).reshape(len(spans), EMBEDDING_DIM))
        elif spans:
            out.append(np.stack([next(fresh) for _ in spans]))
        else:
            out.append(np.zeros((0, EMBEDDING_DIM), dtype=np.float32))
    return out


def relevant_passages(
    db: Session,
    embedder: Embedder,
    notebook_id: str,
    query: str,
    top_k: int = 5,
    documents: Documents = None,
) -> list[Hit]:
    """The notebook's passages that support ``query``, most similar first, at most ``top_k``
    (of ``documents`` only, if given)."""
    limit = max(top_k, CANDIDATE_PASSAGES)
    hits = search(db, embedder, notebook_id, query, limit=limit, documents=documents)
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
        written = write()
    except llm.LLMError as exc:
        return unavailable(exc, extract(), what)
    written.model = settings.llm_model
    return written


def answer(
    db: Session,
    settings: Settings,
    embedder: Embedder,
    notebook_id: str,
    question: str,
    top_k: int = 5,
    *,
    prompt: str | None = None,
    documents: Documents = None,
) -> Answer:
    """Answer ``question`` from the notebook's documents (or ``documents`` of it only), with
    citations.

    ``question`` is what retrieval uses; ``prompt`` (default: the question) is what the model
    is asked, so a conversation can retrieve with a rewritten follow-up yet ask it as said.
    """
    relevant = relevant_passages(db, embedder, notebook_id, question, top_k, documents)
    if not relevant:
        return Answer(NOT_FOUND, "llm" if llm.configured(settings) else "extractive")
    return model_or_extracts(
        settings,
        lambda: llm.ask_llm(settings, prompt or question, relevant),
        lambda: extractive(embedder, question, relevant),
    )
