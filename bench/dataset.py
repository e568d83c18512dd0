"""Notebooks full of chunks, loaded straight into PostgreSQL with COPY.

Ingesting 100k chunks through the workers would benchmark ingestion (which has its own
benchmark) for most of an hour; here the chunks of ``bench.corpus`` are embedded with the
default embedder in a process pool and COPY'd in, then the indexes are built once, the way
a bulk load should be done. The rows are the same ones ingestion writes.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import psycopg
from charterflow.ingest.parsers import PARSER_VERSION
from charterflow.models import Membership, Notebook, Role, User, Workspace, new_id
from charterflow.retrieval.embedders import HashingEmbedder, SemanticEmbedder, pack_sentences
from charterflow.retrieval.text import SEGMENTER_VERSION, sentences
from charterflow.security import create_access_token
from charterflow.settings import Settings
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench import corpus

#: Migration 0005: the HNSW index over ``embedding::halfvec`` that search uses.
HNSW = importlib.import_module("charterflow.migrations.versions.0005_chunks_hnsw_halfvec")

CHUNKS_PER_DOCUMENT = 50
BATCH = 2_000
MODEL = HashingEmbedder.name
#: Semantic vectors of the corpus cost ~35 ms a passage: computed once per machine, kept in
#: blocks of ``BLOCK`` passages (a partial run keeps what it finished).
VECTOR_CACHE = Path(
    os.environ.get("CHARTERFLOW_BENCH_VECTORS", Path.home() / ".cache/charterflow/bench-vectors")
)
BLOCK = 1_000


@dataclass(frozen=True)
class Owner:
    """A user who owns a workspace with one notebook, and a token to act as them."""

    user_id: str
    workspace_id: str
    notebook_id: str
    token: str


def seed_owner(settings: Settings, notebooks: int = 1) -> Owner:
    """A user, their workspace and ``notebooks`` notebooks (the first one gets the chunks)."""
    engine = create_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as db:
            user = User(email=f"bench-{new_id()[:8]}@example.com", name="Bench", password_hash="x")
            db.add(user)
            db.flush()
            workspace = Workspace(name="Bench", personal=True, created_by=user.id)
            db.add(workspace)
            db.flush()
            db.add(Membership(workspace_id=workspace.id, user_id=user.id, role=Role.owner.value))
            books = [
                Notebook(workspace_id=workspace.id, title=f"Notebook {i}", created_by=user.id)
                for i in range(notebooks)
            ]
            db.add_all(books)
            db.commit()
            owner = Owner(user.id, workspace.id, books[0].id, "")
    finally:
        engine.dispose()
    return Owner(
        owner.user_id,
        owner.workspace_id,
        owner.notebook_id,
        create_access_token(settings, owner.user_id),
    )


def _embed_batch(texts: list[str]) -> list[str]:
    """Vectors of ``texts`` as pgvector text literals (runs in a pool process)."""
    return _literals(HashingEmbedder().embed(texts))


def _literals(vectors: np.ndarray) -> list[str]:
    return ["[" + ",".join(f"{x:.6g}" for x in row) + "]" for row in vectors.tolist()]


def _block_path(block: int) -> Path:
    """Where the semantic vectors of passages ``block*BLOCK..`` are kept: keyed by the model
    and the corpus's fingerprint, so vectors of other passages are never read as these."""
    return VECTOR_CACHE / SemanticEmbedder.name / corpus.fingerprint() / f"{block:05d}.npy"


def _semantic_block(block: int) -> Path:
    """The cached semantic vectors of passages ``block*BLOCK..`` (computed if missing)."""
    path = _block_path(block)
    if not path.exists():
        vectors = SemanticEmbedder().embed(corpus.passages(BLOCK, block * BLOCK))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        with partial.open("wb") as f:
            np.save(f, vectors.astype(np.float32))
        partial.replace(path)
    return path


def fill_semantic_cache(count: int, threads: int = 1, log: Callable[[str], None] = print) -> int:
    """Embed the passages ``0..count`` missing from the cache, block after block, in this
    process with ``threads`` ONNX Runtime threads (for a long run at low priority beside other
    work; each finished block is on disk, so a stopped run resumes where it was). Returns the
    number of passages cached from the start without a gap."""
    from charterflow.retrieval.minilm import MiniLM

    model = MiniLM(threads=threads)
    blocks = range((count + BLOCK - 1) // BLOCK)
    done = [b for b in blocks if _block_path(b).exists()]
    if done:  # the cache must hold this code's vectors, not those of another corpus or model
        sample = corpus.passages(16, done[-1] * BLOCK)
        cached = np.load(_block_path(done[-1]))[:16]
        worst = float(np.min(np.sum(model.embed(sample) * cached, axis=1)))
        log(f"cache check: block {done[-1]} re-embedded, lowest cosine {worst:.6f}")
        if worst < 0.999:
            raise RuntimeError(f"{_block_path(done[-1])} does not match this corpus and model")
    started, embedded_now = time.monotonic(), 0
    for b in blocks:
        path = _block_path(b)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        vectors = model.embed(corpus.passages(BLOCK, b * BLOCK))
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        with partial.open("wb") as f:
            np.save(f, vectors.astype(np.float32))
        partial.replace(path)
        embedded_now += BLOCK
        rate = embedded_now / (time.monotonic() - started)
        log(f"block {b} cached ({embedded_now} passages this run, {rate:.1f}/s)")
    return next((b * BLOCK for b in blocks if not _block_path(b).exists()), count)


def semantic_vectors(count: int, offset: int = 0, processes: int | None = None) -> np.ndarray:
    """Semantic vectors of passages ``offset..offset+count``, from the cache (filled first)."""
    blocks = range(offset // BLOCK, (offset + count + BLOCK - 1) // BLOCK)
    missing = [b for b in blocks if not _block_path(b).exists()]
    if missing:
        with ProcessPoolExecutor(max_workers=processes or os.cpu_count() or 1) as pool:
            list(pool.map(_semantic_block, missing))
    whole = np.concatenate([np.load(_semantic_block(b)) for b in blocks])
    start = offset - blocks[0] * BLOCK
    return whole[start : start + count]


def _semantic_sentences(texts: list[str]) -> np.ndarray:
    """Semantic vectors of sentences (runs in a pool process)."""
    return SemanticEmbedder().embed(texts).astype(np.float16)


def sentence_vectors(texts: tuple[str, ...], processes: int | None = None) -> list[bytes]:
    """``Chunk.sentence_embeddings`` of each passage, as ingestion stores them (semantic).

    The corpus recombines docstring paragraphs, so 10k passages hold ~97k sentences but only
    ~23k distinct ones: each distinct sentence is embedded once per machine and kept (float16,
    as stored) in one file keyed by the sentence's SHA-1.
    """
    spans = [[text[s:e] for s, e in sentences(text)] for text in texts]
    path = VECTOR_CACHE / f"{SemanticEmbedder.name}-sentences.npz"
    known: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as cached:
            known = dict(zip(cached["keys"].tolist(), cached["vectors"], strict=True))
    key = {x: hashlib.sha1(x.encode()).hexdigest() for sents in spans for x in sents}  # noqa: S324
    missing = [x for x, k in key.items() if k not in known]
    if missing:
        batches = [missing[i : i + 500] for i in range(0, len(missing), 500)]
        with ProcessPoolExecutor(max_workers=processes or os.cpu_count() or 1) as pool:
            for batch, vectors in zip(batches, pool.map(_semantic_sentences, batches), strict=True):
                known.update(zip((key[x] for x in batch), vectors, strict=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(partial, keys=np.array(list(known)), vectors=np.stack(list(known.values())))
        partial.replace(path)
    return [pack_sentences(np.stack([known[key[x]] for x in sents])) for sents in spans]


@lru_cache(maxsize=4)
def embedded(
    count: int, offset: int = 0, model: str = MODEL
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Passages ``offset..offset+count`` and their vectors by ``model`` (hashing: computed
    once per process; semantic: from the machine's cache)."""
    texts = corpus.passages(count, offset)
    if model == SemanticEmbedder.name:
        return tuple(texts), tuple(_literals(semantic_vectors(count, offset)))
    batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        vectors = [v for batch in pool.map(_embed_batch, batches) for v in batch]
    return tuple(texts), tuple(vectors)


def _pg_url(settings: Settings) -> str:
    return settings.sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://")


def load_chunks(
    settings: Settings,
    owner: Owner,
    count: int,
    offset: int = 0,
    model: str = MODEL,
    *,
    with_sentences: bool = False,
) -> float:
    """Add chunks ``offset..offset+count`` (vectors by ``model``) to the owner's notebook,
    then rebuild the indexes. ``with_sentences`` (semantic only): also the sentence vectors
    that ingestion stores for answers (``sentence_vectors``). Returns the seconds the HNSW
    index took to build."""
    texts, vectors = embedded(count, offset, model)
    per_sentence: list[bytes | None] = [None] * len(texts)
    if with_sentences:
        if model != SemanticEmbedder.name:
            raise ValueError("sentence vectors are cached for the semantic model only")
        per_sentence = list(sentence_vectors(texts))
    with psycopg.connect(_pg_url(settings), autocommit=True) as conn:
        conn.execute("DROP INDEX IF EXISTS ix_chunks_embedding_hnsw")  # before migration 0006
        conn.execute(f"DROP INDEX IF EXISTS {HNSW.INDEX}")
        conn.execute("DROP INDEX IF EXISTS ix_chunks_tsv")
        doc_ids = [new_id() for _ in range(0, count, CHUNKS_PER_DOCUMENT)]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO documents (id, workspace_id, notebook_id, title, filename, "
                "media_type, size_bytes, sha256, storage_key, status, attempts, chunk_count, "
                "parser_version, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, "
                "'text/plain', 0, '', %s, 'ready', 1, %s, %s, now(), now())",
                [
                    (d, owner.workspace_id, owner.notebook_id, f"Source {offset + n}",
                     f"source-{offset + n}.txt", f"bench/{d}", CHUNKS_PER_DOCUMENT,
                     PARSER_VERSION)
                    for n, d in enumerate(doc_ids)
                ],
            )  # fmt: skip
            columns = (
                'id, document_id, notebook_id, workspace_id, ordinal, text, start, "end", '
                "embedding, embedding_model, sentence_embeddings, sentence_version, created_at"
            )
            rows = zip(texts, vectors, per_sentence, strict=True)
            with cur.copy(f"COPY chunks ({columns}) FROM STDIN") as copy:
                for i, (text, vector, sentence_embeddings) in enumerate(rows):
                    ordinal = i % CHUNKS_PER_DOCUMENT
                    copy.write_row(
                        (new_id(), doc_ids[i // CHUNKS_PER_DOCUMENT], owner.notebook_id,
                         owner.workspace_id, ordinal, text, ordinal * 800,
                         ordinal * 800 + len(text), vector, model, sentence_embeddings,
                         SEGMENTER_VERSION if sentence_embeddings else None, "now")
                    )  # fmt: skip
        # pgvector builds the graph in memory while it fits (~1.3 kB a row for this halfvec
        # index: 130 MB at 100k) and much more slowly on disk after: 1 GB is room for ~750k
        # rows, so the opt-in million gets 2 GB.
        total = offset + count
        conn.execute(f"SET maintenance_work_mem = '{1 if total <= 500_000 else 2}GB'")
        conn.execute("SET max_parallel_maintenance_workers = 1")
        # The index search uses (migration 0005's halfvec HNSW), built once over all the rows;
        # COPY into a table that has it would insert row by row into the graph.
        started = time.perf_counter()
        conn.execute(HNSW.CREATE.replace("CONCURRENTLY ", ""))
        hnsw_seconds = time.perf_counter() - started
        conn.execute("CREATE INDEX ix_chunks_tsv ON chunks USING gin (tsv)")
        # ANALYZE also fills pg_stats.most_common_elems for chunks.tsv, the term frequencies that
        # search uses to leave common terms out of its looser lexical levels. A deployment gets
        # them from autovacuum; a bulk load like this one should not wait for it.
        conn.execute("VACUUM ANALYZE chunks")
        conn.execute("VACUUM ANALYZE documents")
    return hnsw_seconds


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.dataset --fill N``: cache the semantic vectors of passages ``0..N``."""
    import argparse

    parser = argparse.ArgumentParser(description="Fill the semantic bench-vector cache.")
    parser.add_argument("--fill", type=int, required=True, help="passages to cache")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(time.strftime("%H:%M:%S"), message, flush=True)

    log(f"{fill_semantic_cache(args.fill, args.threads, log)} passages cached without a gap")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
