"""Ingest one document: claim it, fetch, parse, chunk, embed, store; the same code for the
Dramatiq actor and the in-process development queue.

Safety comes from the database, not from the queue: a worker *claims* a document with one
conditional UPDATE (pending, or processing with an expired lease) that also counts the
attempt; the attempt number is a fencing token, so a worker whose lease was taken over cannot
write. Chunks are replaced and the document marked ``ready`` in one transaction, and
``(document_id, ordinal)`` is unique: re-running never duplicates chunks. While it works, a
worker renews its lease; a crashed worker's lease expires and the document is claimable again.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import numpy as np
from sqlalchemy import ColumnElement, Engine, delete, func, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from charterflow.db import make_engine, make_session_factory, session_scope
from charterflow.ingest import metrics
from charterflow.ingest.chunking import TextChunk, chunk
from charterflow.ingest.errors import BadDocument, Busy, Deferred, TransientError
from charterflow.ingest.limits import Limits, time_budget
from charterflow.ingest.parsers import PARSER_VERSION, parse
from charterflow.ingest.webpage import URL_MEDIA_TYPE, fetch
from charterflow.logging import get_logger
from charterflow.models import Chunk, Document, DocumentStage, DocumentStatus, new_id, utcnow
from charterflow.retrieval.embedders import (
    Embedder,
    get_embedder,
    pack_sentences,
    sentence_vectors,
)
from charterflow.retrieval.text import SEGMENTER_VERSION
from charterflow.settings import Settings
from charterflow.storage import ObjectNotFound, Storage, StorageError, make_storage

log = get_logger("charterflow.ingest")
#: Test hook: seconds to pause after parsing, so a test can kill a worker mid-document.
PAUSE_ENV = "CHARTERFLOW_TEST_INGEST_PAUSE_SECONDS"
MAX_ERROR_CHARS = 500
#: Passages embedded per call while ingesting; progress is reported after each batch.
EMBED_BATCH = 64
#: Seconds between two progress writes while reading pages (the last page is always written).
PROGRESS_INTERVAL = 0.5


class Outcome(StrEnum):
    ready = "ready"
    failed = "failed"
    skipped = "skipped"


@dataclass
class IngestContext:
    """What ingestion needs; built once per process."""

    settings: Settings
    session_factory: sessionmaker[Session]
    storage: Storage
    engine: Engine | None = None
    _embedder: Embedder | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestContext:
        engine = make_engine(settings, pool_size=settings.worker_threads + 2, max_overflow=10)
        return cls(settings, make_session_factory(engine), make_storage(settings), engine)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder(self.settings)
        return self._embedder

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if "://" in text or "password" in text.lower():
        text = ""
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:MAX_ERROR_CHARS]


def _check_user_concurrency(
    ctx: IngestContext, db: Session, document_id: str, now: datetime
) -> None:
    """``Deferred`` when the uploader already has their share of documents in progress (a
    live lease), so that one person's uploads cannot occupy every worker thread. Counted,
    not locked: two workers claiming at the same instant may both pass (a soft limit)."""
    limit = ctx.settings.ingest_user_concurrency
    if not limit:
        return
    uploader = db.scalar(select(Document.created_by).where(Document.id == document_id))
    if uploader is None:
        return
    busy = db.scalar(
        select(func.count())
        .select_from(Document)
        .where(
            Document.created_by == uploader,
            Document.id != document_id,
            Document.status == DocumentStatus.processing.value,
            Document.lease_expires_at >= now,
        )
    )
    if busy and busy >= limit:
        raise Deferred(f"the uploader already has {busy} documents in progress")


def claim(ctx: IngestContext, document_id: str) -> int | None:
    """Take the document for this worker; returns the attempt number (the fencing token).

    ``None`` when there is nothing to do (deleted, ready, failed); ``Busy`` when another
    worker holds a live lease.
    """
    now = utcnow()
    with session_scope(ctx.session_factory) as db:
        _check_user_concurrency(ctx, db, document_id, now)
        attempt = db.scalar(
            update(Document)
            .where(
                Document.id == document_id,
                or_(
                    Document.status == DocumentStatus.pending.value,
                    (Document.status == DocumentStatus.processing.value)
                    & (Document.lease_expires_at < now),
                ),
            )
            .values(
                status=DocumentStatus.processing.value,
                attempts=Document.attempts + 1,
                lease_expires_at=now + timedelta(seconds=ctx.settings.ingest_lease_seconds),
                updated_at=now,
                stage=DocumentStage.reading.value,
                progress_done=None,
                progress_total=None,
            )
            .returning(Document.attempts)
        )
        if attempt is not None:
            return int(attempt)
        status = db.scalar(select(Document.status).where(Document.id == document_id))
    if status == DocumentStatus.processing.value:
        raise Busy("another worker is processing this document")
    return None


def _fenced(document_id: str, attempt: int) -> list[ColumnElement[bool]]:
    return [
        Document.id == document_id,
        Document.attempts == attempt,
        Document.status == DocumentStatus.processing.value,
    ]


class Progress:
    """Writes the document's stage and progress (fenced: only while the attempt owns it);
    page counts at most every ``PROGRESS_INTERVAL`` seconds, so a long PDF costs few writes."""

    def __init__(self, ctx: IngestContext, document_id: str, attempt: int) -> None:
        self.ctx, self.document_id, self.attempt = ctx, document_id, attempt
        self._last = 0.0

    def stage(
        self, stage: DocumentStage, done: int | None = None, total: int | None = None
    ) -> None:
        with session_scope(self.ctx.session_factory) as db:
            db.execute(
                update(Document)
                .where(*_fenced(self.document_id, self.attempt))
                .values(stage=stage.value, progress_done=done, progress_total=total)
            )
        self._last = time.monotonic()

    def page(self, done: int, total: int) -> None:
        if done >= total or time.monotonic() - self._last >= PROGRESS_INTERVAL:
            self.stage(DocumentStage.reading, done, total)


@contextmanager
def keep_lease(ctx: IngestContext, document_id: str, attempt: int) -> Iterator[None]:
    """Renew the lease every third of its length while the block runs."""
    stop = threading.Event()
    seconds = ctx.settings.ingest_lease_seconds

    def renew() -> None:
        while not stop.wait(seconds / 3):
            try:
                with session_scope(ctx.session_factory) as db:
                    db.execute(
                        update(Document)
                        .where(*_fenced(document_id, attempt))
                        .values(lease_expires_at=utcnow() + timedelta(seconds=seconds))
                    )
            except SQLAlchemyError as exc:
                log.warning("lease renewal failed", document_id=document_id, error=_describe(exc))

    thread = threading.Thread(target=renew, name=f"lease-{document_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def _read(storage: Storage, key: str) -> bytes:
    try:
        return b"".join(storage.iter_bytes(key))
    except ObjectNotFound as exc:
        raise BadDocument("the uploaded file is missing from storage") from exc
    except StorageError as exc:
        raise TransientError(str(exc)) from exc


def _store(
    ctx: IngestContext,
    doc: Document,
    attempt: int,
    pieces: list[TextChunk],
    vectors: list[np.ndarray],
) -> bool:
    """Replace the document's chunks and mark it ready, only if we still own it. The
    chunks have no sentence vectors yet: ``store_sentences`` adds them afterwards."""
    now = utcnow()
    with session_scope(ctx.session_factory) as db:
        owned = db.execute(
            update(Document)
            .where(*_fenced(doc.id, attempt))
            .values(
                status=DocumentStatus.ready.value,
                error=None,
                lease_expires_at=None,
                chunk_count=len(pieces),
                updated_at=now,
                parser_version=PARSER_VERSION,
                stage=DocumentStage.ready.value,
                progress_done=None,
                progress_total=None,
            )
        ).rowcount
        if not owned:
            db.rollback()
            return False
        _replace_chunks(ctx, db, doc, pieces, vectors)
    return True


def _replace_chunks(
    ctx: IngestContext,
    db: Session,
    doc: Document,
    pieces: list[TextChunk],
    vectors: list[np.ndarray],
) -> None:
    now = utcnow()
    db.execute(delete(Chunk).where(Chunk.document_id == doc.id))
    if not pieces:
        return
    db.execute(
        insert(Chunk),
        [
            {
                "id": new_id(),
                "document_id": doc.id,
                "notebook_id": doc.notebook_id,
                "workspace_id": doc.workspace_id,
                "ordinal": piece.ordinal,
                "text": piece.text,
                "start": piece.start,
                "end": piece.end,
                "page": piece.page,
                "heading": piece.heading,
                "embedding": vector,
                "embedding_model": ctx.embedder.name,
                "created_at": now,
            }
            for piece, vector in zip(pieces, vectors, strict=True)
        ],
    )


def _embed(
    ctx: IngestContext, pieces: list[TextChunk], progress: Progress | None
) -> list[np.ndarray]:
    """The passages' vectors, in batches, reporting ``embedding`` progress after each."""
    started = time.perf_counter()
    vectors: list[np.ndarray] = []
    if progress is not None:
        progress.stage(DocumentStage.embedding, 0, len(pieces))
    for at in range(0, len(pieces), EMBED_BATCH):
        vectors.extend(ctx.embedder.embed([p.text for p in pieces[at : at + EMBED_BATCH]]))
        if progress is not None:
            progress.stage(DocumentStage.embedding, len(vectors), len(pieces))
    metrics.embedded(len(pieces), time.perf_counter() - started)
    return vectors


def _finish(
    ctx: IngestContext, document_id: str, attempt: int, status: DocumentStatus, error: str
) -> None:
    """Settle the document (if still ours); a failed one keeps no chunks, not even those of
    an earlier version, so search never shows part of a document that was refused."""
    values: dict[str, object] = {
        "status": status.value,
        "error": error[:MAX_ERROR_CHARS],
        "lease_expires_at": None,
        "stage": (
            DocumentStage.failed if status == DocumentStatus.failed else DocumentStage.queued
        ).value,
        "progress_done": None,
        "progress_total": None,
    }
    if status == DocumentStatus.failed:
        values["chunk_count"] = 0
    with session_scope(ctx.session_factory) as db:
        owned = db.execute(
            update(Document).where(*_fenced(document_id, attempt)).values(**values)
        ).rowcount
        if owned and status == DocumentStatus.failed:
            db.execute(delete(Chunk).where(Chunk.document_id == document_id))


def _test_pause() -> None:
    seconds = float(os.environ.get(PAUSE_ENV, "0") or 0)
    if seconds > 0:
        log.warning("test pause", seconds=seconds)
        time.sleep(seconds)


def _source(ctx: IngestContext, doc: Document) -> tuple[str, bytes]:
    """The media type and bytes to parse: the stored object, or for a URL source the page
    it names, fetched now within the SSRF rules and bounds of ``webpage.fetch``."""
    data = _read(ctx.storage, doc.storage_key)
    if doc.media_type != URL_MEDIA_TYPE:
        return doc.media_type, data
    page = fetch(data.decode("utf-8"), ctx.settings)
    return page.media_type, page.data


def ingest(ctx: IngestContext, document_id: str) -> Outcome:
    """Ingest one document. Returns the outcome, or raises ``TransientError`` (retry later)
    after putting the document back to ``pending`` with the reason in ``error``."""
    attempt = claim(ctx, document_id)
    if attempt is None:
        log.info("nothing to ingest", document_id=document_id)
        return Outcome.skipped
    started = time.perf_counter()
    log.info("ingesting", document_id=document_id, attempt=attempt)
    try:
        with keep_lease(ctx, document_id, attempt):
            with ctx.session_factory() as db:
                doc = db.get(Document, document_id)
            if doc is None:
                return Outcome.skipped
            limits = Limits.from_settings(ctx.settings)
            progress = Progress(ctx, document_id, attempt)
            with time_budget(limits.time_budget_seconds):
                media_type, data = _source(ctx, doc)
                extracted = parse(media_type, data, limits, on_page=progress.page)
                del data
                progress.stage(DocumentStage.chunking)
                _test_pause()
                pieces = chunk(extracted, limits=limits)
                del extracted
                vectors = _embed(ctx, pieces, progress)
            if not _store(ctx, doc, attempt, pieces, vectors):
                log.warning("lost the lease; result discarded", document_id=document_id)
                return Outcome.skipped
    except BadDocument as exc:
        _finish(ctx, document_id, attempt, DocumentStatus.failed, str(exc))
        metrics.observe(Outcome.failed, time.perf_counter() - started)
        log.info("document failed", document_id=document_id, error=str(exc))
        return Outcome.failed
    except Exception as exc:
        reason = _describe(exc)
        if attempt >= ctx.settings.ingest_max_attempts:
            message = f"gave up after {attempt} attempts: {reason}"
            _finish(ctx, document_id, attempt, DocumentStatus.failed, message)
            metrics.observe(Outcome.failed, time.perf_counter() - started)
            log.error("document failed", document_id=document_id, error=message)
            return Outcome.failed
        _finish(ctx, document_id, attempt, DocumentStatus.pending, f"attempt {attempt}: {reason}")
        metrics.retries.inc()
        log.warning("ingestion will be retried", document_id=document_id, error=reason)
        raise TransientError(reason) from exc
    metrics.observe(Outcome.ready, time.perf_counter() - started)
    log.info("document ready", document_id=document_id, chunks=len(pieces))
    return Outcome.ready


def is_large(ctx: IngestContext, document_id: str) -> bool:
    """Whether the document is over ``INGEST_LARGE_DOCUMENT_BYTES`` (its own lane)."""
    with ctx.session_factory() as db:
        size = db.scalar(select(Document.size_bytes).where(Document.id == document_id))
    return (size or 0) > ctx.settings.ingest_large_document_bytes


def request_reingest(db: Session, document: Document) -> None:
    """Put a settled document back in the queue's hands (its chunks are replaced on success)."""
    if document.status in {DocumentStatus.ready.value, DocumentStatus.failed.value}:
        document.status = DocumentStatus.pending.value
        document.attempts = 0
        document.error = None


def _sentence_column(ctx: IngestContext, texts: list[str]) -> list[bytes | None]:
    """``Chunk.sentence_embeddings`` for each text (all None with ``INGEST_SENTENCE_VECTORS``
    off: answers then embed the sentences when asked)."""
    if not ctx.settings.ingest_sentence_vectors:
        return [None] * len(texts)
    return [pack_sentences(v) for v in sentence_vectors(ctx.embedder, texts)]


def _fill_sentences(ctx: IngestContext, *where: ColumnElement[bool], batch: int = 256) -> int:
    """Store the sentence vectors of the chunks matching ``where`` that have the configured
    embedder's vector but none for their sentences; returns how many got them. Read, embed
    and write are separate steps (no transaction open while embedding), and each write is
    conditional, so a chunk replaced or deleted meanwhile is skipped and a rerun is a no-op."""
    if not ctx.settings.ingest_sentence_vectors:
        return 0
    embedder = ctx.embedder
    missing = [
        Chunk.embedding_model == embedder.name,
        or_(
            Chunk.sentence_embeddings.is_(None),
            Chunk.sentence_version.is_(None),
            Chunk.sentence_version != SEGMENTER_VERSION,
        ),
    ]
    done = 0
    last_id = ""
    while True:
        with ctx.session_factory() as db:
            rows = db.execute(
                select(Chunk.id, Chunk.text)
                .where(Chunk.id > last_id, *missing, *where)
                .order_by(Chunk.id)
                .limit(batch)
            ).all()
        if not rows:
            return done
        per_sentence = _sentence_column(ctx, [text for _, text in rows])
        with session_scope(ctx.session_factory) as db:
            for (chunk_id, _), sentence_vectors in zip(rows, per_sentence, strict=True):
                done += db.execute(
                    update(Chunk)
                    .where(Chunk.id == chunk_id, *missing)
                    .values(
                        sentence_embeddings=sentence_vectors, sentence_version=SEGMENTER_VERSION
                    )
                ).rowcount
        last_id = rows[-1][0]


def store_sentences(ctx: IngestContext, document_id: str) -> int:
    """The follow-up of a ``ready`` document: store its chunks' sentence vectors (off the
    path to ``ready``, which they would make ~2.2x slower); answers embed the sentences of
    chunks still without them when asked. A deleted or re-ingested document has no chunks
    left to fill, so a late or repeated run does nothing."""
    return _fill_sentences(ctx, Chunk.document_id == document_id)


def backfill_sentences(ctx: IngestContext, *, batch: int = 256) -> int:
    """Store the sentence vectors of every chunk that lacks them (stored before migration
    0009, with the setting off then, or whose follow-up was lost); returns how many chunks
    got them. Nothing with ``INGEST_SENTENCE_VECTORS`` off."""
    return _fill_sentences(ctx, batch=batch)


def reindex(ctx: IngestContext, *, everything: bool = False, batch: int = 256) -> int:
    """Re-embed chunks made by another model (or all); returns how many were re-embedded."""
    embedder = ctx.embedder
    done = 0
    last_id = ""
    while True:
        with session_scope(ctx.session_factory) as db:
            stmt = select(Chunk.id, Chunk.text).where(Chunk.id > last_id).order_by(Chunk.id)
            if not everything:
                stmt = stmt.where(Chunk.embedding_model != embedder.name)
            rows = db.execute(stmt.limit(batch)).all()
            if not rows:
                return done
            texts = [text for _, text in rows]
            vectors = embedder.embed(texts)
            per_sentence = _sentence_column(ctx, texts)
            for (chunk_id, _), vector, sentence_vectors in zip(
                rows, vectors, per_sentence, strict=True
            ):
                db.execute(
                    update(Chunk)
                    .where(Chunk.id == chunk_id)
                    .values(
                        embedding=vector,
                        embedding_model=embedder.name,
                        sentence_embeddings=sentence_vectors,
                        sentence_version=SEGMENTER_VERSION if sentence_vectors else None,
                    )
                )
            done += len(rows)
            last_id = rows[-1][0]
