"""The ingestion pipeline, sweep and building blocks, on a real (SQLite) database and store."""

from __future__ import annotations

import io
import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from charterflow.ingest.chunking import chunk
from charterflow.ingest.errors import BadDocument, Busy, TransientError
from charterflow.ingest.parsers import parse
from charterflow.ingest.pipeline import IngestContext, Outcome, claim, ingest, request_reingest
from charterflow.ingest.sweep import sweep
from charterflow.models import Chunk, Document, Notebook, User, Workspace, new_id, utcnow
from charterflow.retrieval.embedders import HashingEmbedder, OpenAIEmbedder, supports
from charterflow.retrieval.search import bm25_rank, rrf
from charterflow.retrieval.text import sentences
from charterflow.services import filetypes
from charterflow.settings import Settings
from sqlalchemy import func, select

from tests.api.conftest import BASE, migrated
from tests.ingest.samples import CORRUPT_PDF, HTML, PDF_PAGE_2, all_samples, pdf
from tests.support.llm import OpenAICompatible
from tests.support.processes import free_port


class RecordingQueue:
    """A JobQueue that remembers what it was asked to enqueue."""

    def __init__(self) -> None:
        self.enqueued: list[str] = []

    def enqueue_ingest(self, document_id: str) -> None:
        self.enqueued.append(document_id)


def make_ctx(tmp_path: Path, **overrides: Any) -> IngestContext:
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite:{tmp_path}/app.db",
        upload_path=tmp_path / "uploads",
        **{**BASE, **overrides},
    )
    return IngestContext.from_settings(migrated(settings))


def add_document(ctx: IngestContext, data: bytes, media_type: str, **fields: Any) -> str:
    """A stored ``pending`` document of a new user, in their own workspace and notebook."""
    with ctx.session_factory() as db:
        user = User(email=f"{new_id()}@example.com", name="U", password_hash="x")
        db.add(user)
        db.flush()
        ws = Workspace(name="W", created_by=user.id)
        db.add(ws)
        db.flush()
        nb = Notebook(workspace_id=ws.id, title="N", created_by=user.id)
        db.add(nb)
        db.flush()
        doc = Document(
            workspace_id=ws.id,
            notebook_id=nb.id,
            title="doc",
            filename="doc",
            media_type=media_type,
            size_bytes=len(data),
            sha256="0" * 64,
            storage_key=f"documents/{user.id}",
            created_by=user.id,
            **fields,
        )
        db.add(doc)
        db.commit()
        ctx.storage.put(doc.storage_key, io.BytesIO(data), content_type=media_type)
        return doc.id


def document(ctx: IngestContext, doc_id: str) -> Document:
    with ctx.session_factory() as db:
        doc = db.get(Document, doc_id)
        assert doc is not None
        return doc


def chunk_ids(ctx: IngestContext, doc_id: str) -> list[str]:
    with ctx.session_factory() as db:
        return list(db.scalars(select(Chunk.id).where(Chunk.document_id == doc_id)))


def test_reingest_replaces_chunks_and_never_duplicates(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    doc_id = add_document(ctx, all_samples()["falcon-plan.pdf"], filetypes.PDF)
    assert ingest(ctx, doc_id) is Outcome.ready
    first = chunk_ids(ctx, doc_id)
    assert ingest(ctx, doc_id) is Outcome.skipped  # a duplicate message is a no-op
    with ctx.session_factory() as db:
        request_reingest(db, db.get(Document, doc_id))  # type: ignore[arg-type]
        db.commit()
    assert ingest(ctx, doc_id) is Outcome.ready
    second = chunk_ids(ctx, doc_id)
    assert len(second) == len(first) == document(ctx, doc_id).chunk_count == 3
    assert not set(first) & set(second)  # replaced, not appended


def test_bad_document_fails_at_once_with_a_readable_error(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    doc_id = add_document(ctx, CORRUPT_PDF, filetypes.PDF)
    assert ingest(ctx, doc_id) is Outcome.failed
    doc = document(ctx, doc_id)
    assert (doc.status, doc.attempts) == ("failed", 1)
    assert doc.error == "the PDF is damaged or not a PDF and cannot be read"


def test_transient_failures_are_retried_then_fail_after_the_budget(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    ctx = make_ctx(
        tmp_path,
        embeddings_provider="openai",
        embeddings_url=dead,
        embeddings_model="m",
        ingest_max_attempts=2,
    )
    doc_id = add_document(ctx, b"Some text to embed.", filetypes.TXT)
    with pytest.raises(TransientError):
        ingest(ctx, doc_id)
    doc = document(ctx, doc_id)
    assert doc.status == "pending"
    assert doc.error == "attempt 1: TransientError: embeddings endpoint unreachable: ConnectError"
    assert ingest(ctx, doc_id) is Outcome.failed
    doc = document(ctx, doc_id)
    assert doc.status == "failed"
    assert doc.error is not None
    assert doc.error.startswith("gave up after 2 attempts")


def test_a_live_lease_makes_others_wait(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    doc_id = add_document(ctx, b"text", filetypes.TXT)
    assert claim(ctx, doc_id) == 1
    with pytest.raises(Busy):
        claim(ctx, doc_id)


def test_sweep_requeues_expired_leases_and_fails_exhausted_ones(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, ingest_max_attempts=3)
    past, future = utcnow() - timedelta(seconds=1), utcnow() + timedelta(minutes=5)
    lost = add_document(
        ctx, b"a", filetypes.TXT, status="processing", attempts=1, lease_expires_at=past
    )
    exhausted = add_document(
        ctx, b"b", filetypes.TXT, status="processing", attempts=3, lease_expires_at=past
    )
    alive = add_document(
        ctx, b"c", filetypes.TXT, status="processing", attempts=1, lease_expires_at=future
    )
    queue = RecordingQueue()
    result = sweep(ctx.session_factory, queue, max_attempts=3)
    assert (result.requeued, result.failed, queue.enqueued) == ([lost], [exhausted], [lost])
    assert document(ctx, lost).status == "pending"
    failed = document(ctx, exhausted)
    assert failed.status == "failed"
    assert failed.error == ("gave up after 3 attempts: the worker processing it stopped responding")
    assert document(ctx, alive).status == "processing"
    assert sweep(ctx.session_factory, queue, max_attempts=3).requeued == []  # idempotent


def test_sweep_queues_again_what_stayed_pending_for_long(tmp_path: Path) -> None:
    """A job lost with Redis leaves its document ``pending`` with nothing to pick it up."""
    ctx = make_ctx(tmp_path)
    long_ago = utcnow() - timedelta(hours=1)
    lost = add_document(ctx, b"a", filetypes.TXT, updated_at=long_ago)
    fresh = add_document(ctx, b"b", filetypes.TXT)
    done = add_document(ctx, b"c", filetypes.TXT, status="ready", updated_at=long_ago)
    queue = RecordingQueue()
    result = sweep(ctx.session_factory, queue, max_attempts=3, pending_requeue_seconds=600)
    assert (result.reenqueued, queue.enqueued) == ([lost], [lost])
    assert document(ctx, lost).updated_at > long_ago  # touched: the window starts again
    # The next sweeps leave it alone until the window passes again, and it can be ingested.
    assert sweep(ctx.session_factory, queue, max_attempts=3).reenqueued == []
    assert ingest(ctx, lost) is Outcome.ready
    assert {document(ctx, d).status for d in (fresh, done)} == {"pending", "ready"}
    assert queue.enqueued == [lost]


def test_pdf_text_keeps_pages_and_exact_offsets() -> None:
    extracted = parse(filetypes.PDF, pdf(["First page text.", "Second page text."]))
    assert extracted.text == "First page text.\n\nSecond page text."
    assert extracted.page_starts == [(0, 1), (18, 2)]
    pieces = chunk(extracted)
    assert [(p.text, p.page) for p in pieces] == [
        ("First page text.", 1),
        ("Second page text.", 2),
    ]


def test_html_keeps_visible_text_only() -> None:
    text = parse(filetypes.HTML, HTML).text
    assert "every Tuesday at noon" in text
    assert "quokka" not in text
    assert "trackingPixelZebra" not in text


def test_csv_rows_read_as_labelled_facts() -> None:
    text = parse(filetypes.CSV, b"name,role\nada,owner\ngrace,editor\n").text
    assert text == "name: ada; role: owner\nname: grace; role: editor"


def test_empty_documents_are_bad() -> None:
    with pytest.raises(BadDocument, match="no text"):
        parse(filetypes.TXT, b"   \n\n")


def test_chunks_overlap_cover_the_text_and_index_it_exactly() -> None:
    words = " ".join(f"word{i}." for i in range(2000))
    extracted = parse(filetypes.TXT, words.encode())
    pieces = chunk(extracted, size=500, overlap=100)
    assert all(extracted.text[p.start : p.end] == p.text for p in pieces)
    assert all(len(p.text) <= 500 for p in pieces)
    assert pieces[0].start == 0
    assert pieces[-1].end == len(extracted.text)
    assert all(b.start < a.end for a, b in itertools.pairwise(pieces))  # overlap


def test_sentences_do_not_split_decimals() -> None:
    text = "Version 3.5 ships today. It is faster!"
    assert [text[s:e] for s, e in sentences(text)] == ["Version 3.5 ships today.", "It is faster!"]


def test_hashing_embeddings_are_unit_vectors_that_reflect_overlap() -> None:
    e = HashingEmbedder()
    vectors = e.embed(["Falcon pilot budget", PDF_PAGE_2, "espresso machine descaling"])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert np.array_equal(e.embed(["Falcon"]), e.embed(["Falcon"]))
    assert supports(e, "Falcon budget?", PDF_PAGE_2, float(vectors[0] @ vectors[1]))
    assert not supports(e, "capital of Peru?", PDF_PAGE_2, 0.9)  # no shared word


def test_openai_embeddings_are_validated_against_the_stored_dimension(
    openai_server: Any,
) -> None:
    def reply(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        dim = 384 if body["model"] == "small" else 1536
        data = [{"index": i, "embedding": [1.0] * dim} for i in range(len(body["input"]))]
        return 200, {"data": data}

    server: OpenAICompatible = openai_server(reply)
    vectors = OpenAIEmbedder(server.url, "small", "k").embed(["a", "b"])
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1)
    assert server.requests[0][0] == "/v1/embeddings"
    with pytest.raises(BadDocument, match="1536-dimensional"):
        OpenAIEmbedder(server.url, "large", None).embed(["a"])


def test_rrf_and_bm25() -> None:
    fused = rrf(["a", "b"], ["b", "c"])
    assert max(fused, key=fused.__getitem__) == "b"
    ranked = bm25_rank(
        [("1", "refund policy for customers"), ("2", "the espresso machine"), ("3", "refund")],
        "refund customers",
        10,
    )
    assert ranked == ["1", "3"]


def test_reindex_reembeds_other_models_chunks(tmp_path: Path) -> None:
    from charterflow.ingest.pipeline import reindex

    ctx = make_ctx(tmp_path)
    doc_id = add_document(ctx, all_samples()["espresso.txt"], filetypes.TXT)
    ingest(ctx, doc_id)
    with ctx.session_factory() as db:
        db.execute(Chunk.__table__.update().values(embedding_model="old-model"))
        db.commit()
    assert reindex(ctx) == 1
    assert reindex(ctx) == 0
    with ctx.session_factory() as db:
        assert db.scalar(select(func.count()).where(Chunk.embedding_model == "hashing-v1")) == 1
