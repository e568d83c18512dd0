"""Changing the embedder on an existing database is safe: old chunks stay findable and citable
at once, and the worker re-embeds them in the background (one worker, by an advisory lock)."""

from __future__ import annotations

from pathlib import Path

import pytest
from charterflow.db import make_engine
from charterflow.ingest.pipeline import IngestContext, ingest
from charterflow.ingest.worker import REEMBED_LOCK, reembed_stale
from charterflow.models import Chunk, Document
from charterflow.retrieval.embedders import get_embedder
from charterflow.retrieval.search import search
from charterflow.services import filetypes
from charterflow.settings import Settings
from sqlalchemy import func, select, text

from tests.api.conftest import BASE, migrated
from tests.ingest.test_pipeline import add_document, make_ctx

TEXT = b"The espresso machine on floor four is descaled every Friday morning by facilities.\n"
OTHER = b"Visitors must sign in at the reception desk and wear a badge at all times.\n"


def switched(ctx: IngestContext, provider: str) -> IngestContext:
    settings = ctx.settings.model_copy(update={"embeddings_provider": provider})
    return IngestContext(settings, ctx.session_factory, ctx.storage, ctx.engine)


def models(ctx: IngestContext) -> dict[str, int]:
    with ctx.session_factory() as db:
        rows = db.execute(
            select(Chunk.embedding_model, func.count()).group_by(Chunk.embedding_model)
        )
        return {model: count for model, count in rows}


def notebook_of(ctx: IngestContext, doc_id: str) -> str:
    with ctx.session_factory() as db:
        return db.get(Document, doc_id).notebook_id


def test_old_chunks_stay_citable_then_the_worker_reembeds_them(tmp_path: Path) -> None:
    old = make_ctx(tmp_path, embeddings_provider="hashing")
    doc_id = add_document(old, TEXT, filetypes.TXT)
    ingest(old, doc_id)
    with old.session_factory() as db:  # a second document in the same notebook
        doc = db.get(Document, doc_id)
        other = add_document(old, OTHER, filetypes.TXT)
        db.get(Document, other).notebook_id = doc.notebook_id
        db.commit()
    ingest(old, other)
    assert models(old) == {"hashing-v1": 2}

    new = switched(old, "semantic")
    embedder = get_embedder(new.settings)
    with new.session_factory() as db:
        (hit,) = search(db, embedder, notebook_of(new, doc_id), "espresso machine descaling", 1)
    assert hit.lexical_rank == 1
    assert hit.vector_rank is None  # its stored vector is another model's
    assert hit.similarity > embedder.min_similarity  # computed now, so answers can cite it

    assert reembed_stale(new) == sum(models(old).values())
    assert set(models(new)) == {"all-MiniLM-L6-v2"}
    with new.session_factory() as db:
        (hit,) = search(db, embedder, notebook_of(new, doc_id), "coffee maker cleaning", 1)
    assert hit.document_id == doc_id  # found by meaning alone: no word in common
    assert (hit.lexical_rank, hit.vector_rank) == (None, 1)


@pytest.mark.services
def test_one_worker_reembeds_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    settings = migrated(
        Settings(
            _env_file=None,
            database_url=postgres_url,
            upload_path=tmp_path / "uploads",
            embeddings_provider="hashing",
            **BASE,
        )
    )
    old = IngestContext.from_settings(settings)
    try:
        ingest(old, add_document(old, TEXT, filetypes.TXT))
        before = models(old)
        new = switched(old, "semantic")
        holder = make_engine(settings)
        try:
            with holder.connect() as conn:  # another worker is re-embedding
                assert conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": REEMBED_LOCK})
                assert reembed_stale(new) is None
                assert models(new) == before
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": REEMBED_LOCK})
        finally:
            holder.dispose()
        assert reembed_stale(new) == sum(before.values())
        assert set(models(new)) == {"all-MiniLM-L6-v2"}
        assert reembed_stale(new) == 0
    finally:
        old.close()
