"""``charterflow worker``: Dramatiq worker threads, the health/metrics server and the sweep,
in one process that stops cleanly on SIGTERM (in-flight documents finish or are redelivered)."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import timedelta

from dramatiq import Worker
from sqlalchemy import text

from charterflow.appmetrics import DatabaseMetrics
from charterflow.ingest import metrics
from charterflow.ingest.actors import (
    QUEUE,
    declare_ingest_actor,
    declare_sentences_actor,
    make_broker,
    queue_depth,
)
from charterflow.ingest.health import HealthServer
from charterflow.ingest.orphans import sweep_orphans
from charterflow.ingest.pipeline import (
    IngestContext,
    Outcome,
    backfill_sentences,
    ingest,
    reindex,
    store_sentences,
)
from charterflow.ingest.reparse import reparse_stale
from charterflow.ingest.sweep import sweep
from charterflow.logging import configure_logging, get_logger
from charterflow.retrieval.embedders import provider
from charterflow.settings import Settings, get_settings

log = get_logger("charterflow.worker")
STOP_TIMEOUT_MS = 30_000
#: PostgreSQL advisory lock key held by the one worker re-embedding other models' chunks.
REEMBED_LOCK = 0x6366_7265_656D  # "cfreem"


def reembed_stale(ctx: IngestContext) -> int | None:
    """Parse again the documents stored under an older parser version (``reparse_stale``),
    re-embed the chunks stored by another embedder (after ``EMBEDDINGS_PROVIDER`` changed),
    then store the sentence vectors of chunks that lack them or whose sentences were split
    by another segmenter version (``backfill_sentences``).

    Every worker calls it at start, in the background; on PostgreSQL an advisory lock lets one
    of them do the work and the others return ``None`` at once. Until it is done, search
    ranks those chunks lexically and computes their similarity at query time, and answers
    embed the sentences of chunks without sentence vectors when asked.
    """
    engine = ctx.engine
    if engine is None or engine.dialect.name != "postgresql":
        return _catch_up(ctx)
    with engine.connect() as conn:
        if not conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": REEMBED_LOCK}):
            return None
        try:
            return _catch_up(ctx)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": REEMBED_LOCK})
            conn.commit()


def _catch_up(ctx: IngestContext) -> int:
    return reparse_stale(ctx) + reindex(ctx) + backfill_sentences(ctx)


class _ActorQueue:
    """``JobQueue`` for the sweep: re-queued documents go back through the broker."""

    def __init__(self, send: object) -> None:
        self._send = send

    def enqueue_ingest(self, document_id: str) -> None:
        self._send.send(document_id)  # type: ignore[attr-defined]


def run(threads: int | None = None, settings: Settings | None = None) -> int:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.effective_log_format)
    if not settings.redis_url:
        print("REDIS_URL: the worker needs Redis (development ingests in-process)", file=sys.stderr)
        return 2
    ctx = IngestContext.from_settings(settings)
    # Load the model before taking messages, so the first document does not pay for it.
    ctx.embedder.embed(["warm-up"])
    metrics.embedder.info({"provider": provider(settings), "model": ctx.embedder.name})
    db_metrics = DatabaseMetrics(metrics.registry, ctx.engine) if ctx.engine is not None else None
    metrics.registry.register(pending_age := metrics.PendingAgeCollector(ctx.session_factory))
    broker = make_broker(settings)
    sentences = declare_sentences_actor(broker, lambda doc_id: store_sentences(ctx, doc_id))

    def ingest_then_sentences(document_id: str) -> None:
        """Ready first; the sentence vectors follow as a lower-priority message."""
        if ingest(ctx, document_id) is Outcome.ready and settings.ingest_sentence_vectors:
            sentences.send(document_id)

    actor = declare_ingest_actor(broker, settings, ingest_then_sentences)
    worker = Worker(broker, worker_threads=threads or settings.worker_threads, worker_timeout=1000)
    stop = threading.Event()

    def consumers_alive() -> bool:
        threads = [*worker.workers, *worker.consumers.values()]
        return not stop.is_set() and bool(threads) and all(t.is_alive() for t in threads)

    health = HealthServer(
        settings.worker_health_port,
        {"workers": consumers_alive},
        lambda: queue_depth(broker),
        dependencies={"broker": lambda: bool(broker.client.ping())},
    )

    def sweeper() -> None:
        while not stop.wait(settings.sweep_interval_seconds):
            try:
                sweep(
                    ctx.session_factory,
                    _ActorQueue(actor),
                    settings.ingest_max_attempts,
                    pending_requeue_seconds=settings.ingest_pending_requeue_seconds,
                )
            except Exception as exc:
                log.error("sweep failed", error=type(exc).__name__)

    def orphan_sweeper() -> None:
        min_age = timedelta(seconds=settings.storage_orphan_min_age_seconds)
        while not stop.wait(settings.storage_sweep_interval_seconds):
            try:
                sweep_orphans(ctx.session_factory, ctx.storage, min_age)
            except Exception as exc:
                log.error("orphan sweep failed", error=type(exc).__name__)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker.start()
    health.start()
    sweep_thread = threading.Thread(target=sweeper, name="sweep", daemon=True)
    sweep_thread.start()
    threading.Thread(target=orphan_sweeper, name="orphans", daemon=True).start()

    def reembedder() -> None:
        try:
            count = reembed_stale(ctx)
        except Exception as exc:
            log.error("re-embedding other models' chunks failed", error=type(exc).__name__)
            return
        if count:
            log.info("re-embedded other models' chunks", chunks=count, model=ctx.embedder.name)

    threading.Thread(target=reembedder, name="reembed", daemon=True).start()
    log.info(
        "worker started",
        queue=QUEUE,
        threads=worker.worker_threads,
        health_port=health.port,
        embeddings=ctx.embedder.name,
    )
    try:
        stop.wait()
    finally:
        log.info("worker stopping")
        worker.stop(timeout=STOP_TIMEOUT_MS)
        health.stop()
        broker.close()
        if db_metrics is not None:
            db_metrics.close()
        metrics.registry.unregister(pending_age)
        ctx.close()
    return 0
