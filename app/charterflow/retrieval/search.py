"""Hybrid retrieval over one notebook's chunks: lexical and vector rankings fused by
reciprocal rank fusion (RRF, k=60), so neither score scale has to be calibrated.

PostgreSQL: full-text search on the ``tsv`` GIN index (all query terms first, then looser
levels without the table's most common terms; ranked by ``ts_rank_cd``) and cosine distance
on the HNSW index. SQLite (development): BM25 and cosine computed in Python/numpy over the
notebook's chunks. Callers must already have checked that the user may read the notebook:
every query here is scoped to ``notebook_id``.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from weakref import WeakKeyDictionary

import numpy as np
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session

from charterflow.models import Chunk, Document
from charterflow.retrieval.embedders import Embedder, terms, unpack_sentences, vector_cache
from charterflow.retrieval.text import SEGMENTER_VERSION

RRF_K = 60
CANDIDATES = 50
BM25_K1 = 1.2
BM25_B = 0.75
#: HNSW candidate list (pgvector's default is 40); see ``_pg_vector``.
HNSW_EF_SEARCH = 500
#: Terms in more than this share of all chunks are left out of the looser lexical levels. With
#: the pool below, 0.05-0.3 measured the same p95 at 100k chunks; 0.2 changed the fewest top 10s.
COMMON_TERM_SHARE = 0.2
#: The looser lexical levels rank at most this many of their matches (any ones, not the best).
LOOSE_LEVEL_POOL = 1000
#: Seconds that one engine's term frequencies are reused (ANALYZE changes them rarely).
FREQUENCIES_TTL = 60.0

_frequencies: WeakKeyDictionary[Engine, tuple[float, dict[str, float]]] = WeakKeyDictionary()


@dataclass
class Hit:
    chunk_id: str
    document_id: str
    document_title: str
    text: str
    start: int
    end: int
    page: int | None
    score: float  # the fused RRF score (the ranking)
    similarity: float  # cosine similarity to the query (the relevance threshold uses it)
    lexical_rank: int | None
    vector_rank: int | None
    #: The vectors of ``retrieval.text.sentences(text)`` stored at ingestion by the embedder that
    #: searched (None: not stored, or by another embedder); ``answer.extractive`` uses them.
    sentence_vectors: np.ndarray | None = None
    #: The headings the passage sits under, joined by " \u203a " (None: none, or parsed
    #: before issue 24).
    heading: str | None = None


@dataclass(frozen=True)
class Fusion:
    """How the lexical and the vector ranking are fused (tuned by ``bench/retrieval.py``)."""

    k: int = RRF_K
    vector_weight: float = 1.0
    #: Candidates taken from each ranking.
    depth: int = CANDIDATES


#: Chosen on the stdlib set's grid, checked on the held-out botocore set (docs/benchmarks.md).
#: Word-overlap vectors (hashing) rank worse than BM25: half weight.
LEXICAL_FUSION = Fusion(vector_weight=0.5)
#: all-MiniLM-L6-v2 ranks better than BM25 on both sets: double weight, and a small k so the
#: top few ranks of each list count much more than the tail (k=60, equal weights: 0.651 on
#: stdlib against 0.666).
SEMANTIC_FUSION = Fusion(k=10, vector_weight=2.0)


def fusion(embedder: Embedder) -> Fusion:
    return LEXICAL_FUSION if embedder.lexical else SEMANTIC_FUSION


def rrf(
    *rankings: list[str], k: int = RRF_K, weights: tuple[float, ...] | None = None
) -> dict[str, float]:
    """Reciprocal rank fusion: list ``i`` adds ``weights[i] / (k + rank)`` to its items."""
    fused: dict[str, float] = {}
    for i, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[i]
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return fused


def _vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"


def _pg_lexical(db: Session, notebook_id: str, query: str, limit: int) -> list[str]:
    """Chunks with every query term first, then with all terms but one, then with any term.

    Matching any term at once lets common words match most of a large notebook, and ranking all
    of those rows dominated search time (240 of 250 ms at 100k chunks, docs/benchmarks.md).
    Rows with more of the terms are few and rank first anyway; each looser level only fills
    what the stricter ones left. The looser levels also leave out the terms that are in more
    than ``COMMON_TERM_SHARE`` of all chunks: such a term barely changes a ranking (BM25 gives
    it an idf near zero; ``ts_rank_cd`` has no idf and would let it dominate) but makes its level
    match most of the notebook. Those levels can still match thousands of rows, so each ranks
    only ``LOOSE_LEVEL_POOL`` of its matches: they only fill the tail of the candidate list,
    where RRF gives little weight anyway.
    """
    lexemes = _lexemes(db, query)
    ids: list[str] = []
    for level, tsquery in enumerate(_tsquery_levels(lexemes, _uncommon(db, lexemes))):
        seen = set(ids)
        pool = LOOSE_LEVEL_POOL if level > 0 else None
        found = _pg_lexical_match(db, notebook_id, tsquery, limit, pool)
        ids += [cid for cid in found if cid not in seen][: limit - len(ids)]
        if len(ids) >= limit:
            break
    return ids


def _lexemes(db: Session, query: str) -> list[str]:
    """The query's distinct stemmed terms (stop words removed), quoted as tsquery literals."""
    tsquery = db.execute(text("SELECT plainto_tsquery('english', :q)::text"), {"q": query})
    parts = (part.strip() for part in (tsquery.scalar() or "").split(" & "))
    return list(dict.fromkeys(part for part in parts if part))


def _uncommon(db: Session, lexemes: list[str]) -> list[str]:
    """The terms the looser levels keep: those in at most ``COMMON_TERM_SHARE`` of all chunks."""
    frequencies = _lexeme_frequencies(db)
    return [lex for lex in lexemes if frequencies.get(_unquote(lex), 0.0) <= COMMON_TERM_SHARE]


def _unquote(lexeme: str) -> str:
    """A tsquery literal (``'it''s'``) back to its lexeme (``it's``)."""
    return lexeme[1:-1].replace("''", "'").replace("\\\\", "\\")


def _lexeme_frequencies(db: Session) -> dict[str, float]:
    """Share of chunks that contain each common lexeme, from ``ANALYZE``'s statistics of ``tsv``.

    PostgreSQL keeps them in ``pg_stats.most_common_elems`` (table-wide; autovacuum refreshes
    them as chunks come and go), so no query has to count. Empty until the table has been
    analysed: then every term stays in every level.
    """
    bind = db.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    now = time.monotonic()
    cached = _frequencies.get(engine)
    if cached and cached[0] > now:
        return cached[1]
    row = db.execute(
        text(
            """
            SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats
            WHERE schemaname = current_schema() AND tablename = 'chunks' AND attname = 'tsv'
            """
        )
    ).first()
    # The frequencies list ends with a few summary values; zip() drops them.
    frequencies = dict(zip(row[0] or [], row[1] or [], strict=False)) if row else {}
    _frequencies[engine] = (now + FREQUENCIES_TTL, frequencies)
    return frequencies


def _tsquery_levels(
    lexemes: list[str], loose: list[str] | None = None, max_terms: int = 8
) -> list[str]:
    """``a & b & c``, then ``(b & c) | (a & c) | (a & b)``, then ``a | b | c``.

    The first level has every term; the looser ones are built from ``loose`` (by default every
    term), and a level that would repeat the one before it is left out.
    """
    if not lexemes:
        return []
    loose = lexemes if loose is None else loose
    levels = [" & ".join(lexemes)]
    if 3 <= len(loose) <= max_terms:
        levels.append(
            " | ".join(
                "(" + " & ".join(loose[:i] + loose[i + 1 :]) + ")" for i in range(len(loose))
            )
        )
    if loose:
        levels.append(" | ".join(loose))
    return [level for i, level in enumerate(levels) if i == 0 or level != levels[i - 1]]


#: One lexical level: its matches ranked by ``ts_rank_cd``.
MATCH_SQL = """
    WITH q AS (SELECT CAST(:tq AS tsquery) AS tq)
    SELECT c.id FROM chunks c, q
    WHERE c.notebook_id = :nb AND c.tsv @@ q.tq
    ORDER BY ts_rank_cd(c.tsv, q.tq) DESC, c.id
    LIMIT :k
"""
#: A looser level: only ``:pool`` of its matches (the first the index yields) are ranked.
POOLED_MATCH_SQL = """
    WITH q AS (SELECT CAST(:tq AS tsquery) AS tq)
    SELECT m.id FROM (
        SELECT c.id, c.tsv FROM chunks c, q
        WHERE c.notebook_id = :nb AND c.tsv @@ q.tq
        LIMIT :pool
    ) m, q
    ORDER BY ts_rank_cd(m.tsv, q.tq) DESC, m.id
    LIMIT :k
"""


def _pg_lexical_match(
    db: Session, notebook_id: str, tsquery: str, limit: int, pool: int | None = None
) -> list[str]:
    """The ``limit`` best matches of ``tsquery``; with ``pool``, of only that many matches."""
    sql = MATCH_SQL if pool is None else POOLED_MATCH_SQL
    rows = db.execute(text(sql), {"tq": tsquery, "nb": notebook_id, "k": limit, "pool": pool})
    return [r[0] for r in rows]


VECTOR_SQL = """
SELECT id FROM chunks
WHERE notebook_id = :nb AND embedding_model = :model
ORDER BY embedding::halfvec(384) <=> CAST(:v AS halfvec(384)), id
LIMIT :k
"""


def _pg_vector(
    db: Session,
    notebook_id: str,
    model: str,
    vector: np.ndarray,
    limit: int,
    ef_search: int = HNSW_EF_SEARCH,
) -> list[str]:
    """Nearest chunks by cosine distance on the halfvec HNSW index (migration 0005)."""
    # pgvector >= 0.8: keep scanning the HNSW index until enough rows pass the filter.
    db.execute(text("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)"))
    # m 32 / ef_construction 200 and ef_search 500: recall@10 0.97 against an exact scan at
    # 100k chunks, hybrid p95 37 ms (bench/analysis.md); pgvector's default of 40 gave 0.43.
    db.execute(text("SELECT set_config('hnsw.ef_search', :ef, true)"), {"ef": str(ef_search)})
    # With ef_search 500 the planner otherwise prices the index above an exact scan at 10-15k
    # chunks and picks the scan (36 ms instead of 7); random pages are cheap on SSDs anyway.
    db.execute(text("SELECT set_config('random_page_cost', '1.1', true)"))
    rows = db.execute(
        text(VECTOR_SQL),
        {"nb": notebook_id, "model": model, "v": _vector_literal(vector), "k": limit},
    )
    return [r[0] for r in rows]


def bm25_rank(docs: list[tuple[str, str]], query: str, limit: int) -> list[str]:
    """Ids of ``(id, text)`` pairs ranked by Okapi BM25 for ``query`` (matches only)."""
    q_terms = set(terms(query))
    if not q_terms or not docs:
        return []
    tokenised = [(doc_id, Counter(terms(body))) for doc_id, body in docs]
    avg_len = sum(sum(tf.values()) for _, tf in tokenised) / len(tokenised) or 1.0
    df = Counter(t for _, tf in tokenised for t in q_terms if t in tf)
    n = len(tokenised)
    scored: list[tuple[float, str]] = []
    for doc_id, tf in tokenised:
        length = sum(tf.values())
        score = 0.0
        for t in q_terms & tf.keys():
            idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
            f = tf[t]
            score += (
                idf * f * (BM25_K1 + 1) / (f + BM25_K1 * (1 - BM25_B + BM25_B * length / avg_len))
            )
        if score > 0:
            scored.append((score, doc_id))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [doc_id for _, doc_id in scored[:limit]]


def _sqlite_rankings(
    db: Session, notebook_id: str, model: str, query: str, vector: np.ndarray, limit: int
) -> tuple[list[str], list[str]]:
    rows = db.execute(
        select(Chunk.id, Chunk.text, Chunk.embedding, Chunk.embedding_model).where(
            Chunk.notebook_id == notebook_id
        )
    ).all()
    lexical = bm25_rank([(r.id, r.text) for r in rows], query, limit)
    same_model = [r for r in rows if r.embedding_model == model]
    if not same_model:
        return lexical, []
    sims = np.stack([r.embedding for r in same_model]) @ vector
    order = np.argsort(-sims, kind="stable")[:limit]
    return lexical, [same_model[i].id for i in order]


def rankings(
    db: Session, embedder: Embedder, notebook_id: str, query: str, limit: int = CANDIDATES
) -> tuple[list[str], list[str], np.ndarray]:
    """The lexical and the vector ranking (chunk ids), and the query's vector."""
    vector = vector_cache.embed(embedder, [query])[0]
    if db.get_bind().dialect.name == "postgresql":
        lexical = _pg_lexical(db, notebook_id, query, limit)
        semantic = _pg_vector(db, notebook_id, embedder.name, vector, limit)
    else:
        lexical, semantic = _sqlite_rankings(db, notebook_id, embedder.name, query, vector, limit)
    return lexical, semantic, vector


def search(
    db: Session, embedder: Embedder, notebook_id: str, query: str, limit: int = 10
) -> list[Hit]:
    """The ``limit`` best chunks of the notebook for ``query``, best first."""
    if not query.strip():
        return []
    how = fusion(embedder)
    lexical, semantic, vector = rankings(db, embedder, notebook_id, query, max(limit, how.depth))
    fused = rrf(lexical, semantic, k=how.k, weights=(1.0, how.vector_weight))
    best = sorted(fused, key=lambda cid: (-fused[cid], cid))[:limit]
    if not best:
        return []
    rows = {
        c.id: (c, title)
        for c, title in db.execute(
            select(Chunk, Document.title)
            .join(Document, Document.id == Chunk.document_id)
            .where(Chunk.id.in_(best), Chunk.notebook_id == notebook_id)
        ).all()
    }
    lex_rank = {cid: i for i, cid in enumerate(lexical, start=1)}
    vec_rank = {cid: i for i, cid in enumerate(semantic, start=1)}
    # Chunks stored by another embedder (the provider changed; the worker re-embeds them in
    # the background): their stored vectors are not comparable, so the few hits among them get
    # a similarity computed now, and answers can still cite them.
    stale = [cid for cid in best if cid in rows and rows[cid][0].embedding_model != embedder.name]
    fresh = dict(zip(stale, embedder.embed([rows[c][0].text for c in stale]), strict=True))
    hits: list[Hit] = []
    for cid in best:
        if cid not in rows:
            continue  # deleted since ranking
        c, title = rows[cid]
        similarity = float(np.dot(fresh.get(cid, c.embedding), vector))
        # Vectors split by another segmenter would be paired with the wrong sentences.
        current = cid not in fresh and c.sentence_version == SEGMENTER_VERSION
        stored = c.sentence_embeddings if current else None
        hits.append(
            Hit(
                chunk_id=c.id,
                document_id=c.document_id,
                document_title=title,
                text=c.text,
                start=c.start,
                end=c.end,
                page=c.page,
                score=round(fused[cid], 6),
                similarity=round(similarity, 4),
                lexical_rank=lex_rank.get(cid),
                vector_rank=vec_rank.get(cid),
                sentence_vectors=None if stored is None else unpack_sentences(stored),
                heading=c.heading,
            )
        )
    return hits
