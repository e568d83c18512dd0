"""Sentence vectors (migration 0009), stored by a follow-up job once a document is ready: equal
to freshly computed ones, used by extractive answers, and optional: a chunk stored without
them still answers the same."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from charterflow.ingest.pipeline import (
    IngestContext,
    Outcome,
    backfill_sentences,
    ingest,
    reindex,
    store_sentences,
)
from charterflow.ingest.worker import reembed_stale
from charterflow.ingest_queue import InProcessJobQueue
from charterflow.models import Chunk, Document, DocumentStatus
from charterflow.retrieval.answer import answer
from charterflow.retrieval.embedders import (
    HashingEmbedder,
    pack_sentences,
    sentence_vectors,
    unpack_sentences,
    vector_cache,
)
from charterflow.retrieval.search import search
from charterflow.retrieval.text import sentences
from charterflow.services import filetypes
from sqlalchemy import select, update

from tests.api.conftest import BACKENDS, backend_settings, migrated
from tests.ingest.samples import all_samples
from tests.ingest.test_pipeline import add_document
from tests.support.processes import wait_until

QUESTION = "What is the Falcon pilot budget capped at?"


def _ctx(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, **overrides: object
) -> IngestContext:
    pg = s3 = None
    if backend == "postgres":
        pg = request.getfixturevalue("pg_server")
        s3 = request.getfixturevalue("s3_server")
    settings = backend_settings(backend, tmp_path, pg, s3).model_copy(update=overrides)
    return IngestContext.from_settings(migrated(settings))


def _falcon(ctx: IngestContext) -> tuple[str, str]:
    """The three-page Falcon PDF, ingested, then its follow-up run: (document id, notebook id)."""
    doc_id = add_document(ctx, all_samples()["falcon-plan.pdf"], filetypes.PDF)
    assert ingest(ctx, doc_id) is Outcome.ready
    assert all(c.sentence_embeddings is None for c in _chunks(ctx, doc_id))  # ready first
    store_sentences(ctx, doc_id)
    with ctx.session_factory() as db:
        doc = db.get(Document, doc_id)
        assert doc is not None
        return doc_id, doc.notebook_id


def _chunks(ctx: IngestContext, doc_id: str) -> list[Chunk]:
    with ctx.session_factory() as db:
        return list(db.scalars(select(Chunk).where(Chunk.document_id == doc_id)))


def _fresh(ctx: IngestContext, c: Chunk) -> np.ndarray:
    """The chunk's sentences embedded now, one by one (what an answer computes without them)."""
    return ctx.embedder.embed([c.text[s:e] for s, e in sentences(c.text)])


def _ask(ctx: IngestContext, notebook_id: str) -> tuple[str, list[tuple[int, int, int | None]]]:
    vector_cache.clear()  # every sentence vector comes from the table or is computed now
    with ctx.session_factory() as db:
        result = answer(db, ctx.settings, ctx.embedder, notebook_id, QUESTION)
    return result.answer, [(c.start, c.end, c.page) for c in result.citations]


def test_sentence_vectors_are_each_sentences_own_vector() -> None:
    embedder = HashingEmbedder()
    texts = ["Alpha beta gamma. Delta epsilon zeta!", "Delta epsilon zeta! Eta theta.", "x"]
    per_text = sentence_vectors(embedder, texts)
    assert [len(v) for v in per_text] == [2, 2, 0]
    for text, vectors in zip(texts, per_text, strict=True):
        fresh = embedder.embed([text[s:e] for s, e in sentences(text)])
        np.testing.assert_array_equal(vectors.reshape(-1, 384), fresh.reshape(-1, 384))
    stored = unpack_sentences(pack_sentences(per_text[0]))
    assert stored.shape == (2, 384)
    assert stored.dtype == np.float32
    cosines = np.sum(stored * per_text[0], axis=1) / np.linalg.norm(stored, axis=1)
    assert cosines.min() > 0.9999  # float16 storage


@pytest.mark.parametrize("backend", BACKENDS)
def test_ingestion_stores_every_sentence_vector_and_reindex_renews_them(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    ctx = _ctx(request, tmp_path, backend)
    doc_id, _ = _falcon(ctx)
    chunks = _chunks(ctx, doc_id)
    assert len(chunks) == 3
    for c in chunks:
        assert c.sentence_embeddings is not None
        stored = unpack_sentences(c.sentence_embeddings)
        fresh = _fresh(ctx, c)
        assert stored.shape == fresh.shape
        np.testing.assert_allclose(stored, fresh, atol=1e-3)
    with ctx.session_factory() as db:
        db.execute(update(Chunk).values(embedding_model="old-model", sentence_embeddings=None))
        db.commit()
    assert reindex(ctx) == 3
    for c in _chunks(ctx, doc_id):
        assert c.sentence_embeddings == pack_sentences(_fresh(ctx, c))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_document_is_ready_before_its_follow_up_stores_the_sentence_vectors(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Through the in-process queue: the follow-up is queued behind the work already in the
    lane (held here by a blocker), so the document is ready, searchable and answerable while
    its chunks have no sentence vectors; once the blocker lets go the follow-up fills them."""
    ctx = _ctx(request, tmp_path, backend)
    doc_id = add_document(ctx, all_samples()["falcon-plan.pdf"], filetypes.PDF)
    queue = InProcessJobQueue(ctx.settings)
    started, release = threading.Event(), threading.Event()

    def blocker() -> None:
        started.set()
        release.wait(120)

    try:
        queue.enqueue_ingest(doc_id)
        queue._executor.submit(blocker)  # after the ingest, before its follow-up
        assert started.wait(120), "the ingest did not finish"
        with ctx.session_factory() as db:
            doc = db.get(Document, doc_id)
            assert doc is not None
            assert doc.status == DocumentStatus.ready.value
            notebook_id = doc.notebook_id
        chunks = _chunks(ctx, doc_id)
        assert len(chunks) == 3
        assert all(c.sentence_embeddings is None for c in chunks)
        before = _ask(ctx, notebook_id)  # answers embed the sentences when asked
        assert before[0].startswith("The Falcon pilot budget is capped at")
        release.set()
        wait_until(
            lambda: all(c.sentence_embeddings is not None for c in _chunks(ctx, doc_id)),
            120,
            "the follow-up's sentence vectors",
        )
    finally:
        release.set()
        queue.close()
    for c in _chunks(ctx, doc_id):
        assert c.sentence_embeddings == pack_sentences(_fresh(ctx, c))
    assert _ask(ctx, notebook_id) == before
    assert store_sentences(ctx, doc_id) == 0  # idempotent: a retried follow-up does nothing


def test_the_follow_up_of_a_deleted_or_reingested_document_does_nothing(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    ctx = _ctx(request, tmp_path, "sqlite")
    doc_id = add_document(ctx, all_samples()["falcon-plan.pdf"], filetypes.PDF)
    assert ingest(ctx, doc_id) is Outcome.ready
    with ctx.session_factory() as db:
        db.execute(update(Chunk).where(Chunk.document_id == doc_id).values(embedding_model="x"))
        db.commit()
    assert store_sentences(ctx, doc_id) == 0  # another embedder's chunks: reindex's job
    with ctx.session_factory() as db:
        db.delete(db.get(Document, doc_id))
        db.commit()
    assert store_sentences(ctx, doc_id) == 0
    assert store_sentences(ctx, "no-such-document") == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_answers_are_the_same_with_stored_or_computed_sentence_vectors(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    ctx = _ctx(request, tmp_path, backend)
    doc_id, notebook_id = _falcon(ctx)
    with ctx.session_factory() as db:
        hits = search(db, ctx.embedder, notebook_id, QUESTION)
    assert hits
    assert all(h.sentence_vectors is not None for h in hits)
    stored = _ask(ctx, notebook_id)
    assert stored[0].startswith("The Falcon pilot budget is capped at forty-eight thousand euros")
    assert stored[1][0][2] == 2  # the cited sentence is on page 2
    # An old document (stored before migration 0009, or with INGEST_SENTENCE_VECTORS off):
    # its sentences are embedded when asked, and the answer is the same, offsets and all.
    with ctx.session_factory() as db:
        db.execute(
            update(Chunk).where(Chunk.document_id == doc_id).values(sentence_embeddings=None)
        )
        db.commit()
    with ctx.session_factory() as db:
        assert all(
            h.sentence_vectors is None for h in search(db, ctx.embedder, notebook_id, QUESTION)
        )
    assert _ask(ctx, notebook_id) == stored


def test_workers_backfill_chunks_stored_without_sentence_vectors(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    off = _ctx(request, tmp_path, "sqlite", ingest_sentence_vectors=False)
    doc_id, _ = _falcon(off)
    assert backfill_sentences(off) == 0  # the setting is off: nothing to store
    on = IngestContext.from_settings(
        off.settings.model_copy(update={"ingest_sentence_vectors": True})
    )
    assert reembed_stale(on) == 3
    assert reembed_stale(on) == 0
    for c in _chunks(on, doc_id):
        assert c.sentence_embeddings == pack_sentences(_fresh(on, c))


def test_the_setting_off_stores_none_and_answers_still_cite(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    ctx = _ctx(request, tmp_path, "sqlite", ingest_sentence_vectors=False)
    doc_id, notebook_id = _falcon(ctx)
    assert all(c.sentence_embeddings is None for c in _chunks(ctx, doc_id))
    text, citations = _ask(ctx, notebook_id)
    assert text.startswith("The Falcon pilot budget")
    assert citations[0][2] == 2


def test_stored_rows_that_do_not_match_the_sentences_are_not_used(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Stored rows that do not match the chunk's sentences (a foreign writer, a changed
    splitter) are ignored rather than misattributed."""
    ctx = _ctx(request, tmp_path, "sqlite")
    doc_id, notebook_id = _falcon(ctx)
    expected = _ask(ctx, notebook_id)
    wrong = pack_sentences(np.ones((1, 384), dtype=np.float32) / np.sqrt(384))
    with ctx.session_factory() as db:
        db.execute(
            update(Chunk).where(Chunk.document_id == doc_id).values(sentence_embeddings=wrong)
        )
        db.commit()
    assert _ask(ctx, notebook_id) == expected
