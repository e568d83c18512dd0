"""The worker's Prometheus collectors (its own registry, served by ``ingest.health``)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

registry = CollectorRegistry()
documents = Counter(
    "charterflow_ingest_documents_total",
    "Documents whose ingestion ended, by outcome (ready or failed).",
    ["outcome"],
    registry=registry,
)
retries = Counter(
    "charterflow_ingest_retries_total",
    "Ingestion attempts that failed transiently and were scheduled again.",
    registry=registry,
)
duration = Histogram(
    "charterflow_ingest_duration_seconds",
    "Time to ingest one document (fetch, parse, chunk, embed, store), by outcome.",
    ["outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=registry,
)
swept = Counter(
    "charterflow_ingest_swept_total",
    "Documents with an expired lease that the sweep re-queued or failed, by action.",
    ["action"],
    registry=registry,
)
orphans_removed = Counter(
    "charterflow_storage_orphans_removed_total",
    "Stored objects that no document names (a crash between write and commit), removed.",
    registry=registry,
)
orphan_bytes_removed = Counter(
    "charterflow_storage_orphan_bytes_removed_total",
    "Bytes of the orphaned objects removed.",
    registry=registry,
)

embedder = Info(
    "charterflow_embedder",
    "The embedder this worker stores vectors with (provider and model).",
    registry=registry,
)
chunks_embedded = Counter(
    "charterflow_ingest_chunks_embedded_total",
    "Chunks embedded; with charterflow_ingest_embed_seconds_total it gives chunks/s.",
    registry=registry,
)
embed_seconds = Counter(
    "charterflow_ingest_embed_seconds_total",
    "Seconds spent embedding chunks (the largest part of ingestion with a local model).",
    registry=registry,
)


def observe(outcome: str, seconds: float) -> None:
    documents.labels(outcome).inc()
    duration.labels(outcome).observe(seconds)


def embedded(chunks: int, seconds: float) -> None:
    chunks_embedded.inc(chunks)
    embed_seconds.inc(seconds)


class PendingAgeCollector(Collector):
    """Seconds the oldest ``pending`` document has waited since its upload, read from the
    database at scrape time (0 when none waits): the queue's age, which its depth alone
    cannot show (a few documents stuck for an hour)."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from charterflow.models import Document, DocumentStatus, utcnow

        gauge = GaugeMetricFamily(
            "charterflow_ingest_oldest_pending_seconds",
            "Age of the oldest document waiting for ingestion (0: none waits).",
        )
        try:
            with self.session_factory() as db:
                oldest = db.scalar(
                    select(func.min(Document.created_at)).where(
                        Document.status == DocumentStatus.pending.value
                    )
                )
            age = max(0.0, (utcnow() - oldest).total_seconds()) if oldest else 0.0
        except Exception:  # a scrape must not fail because the database is down
            age = float("nan")
        gauge.add_metric([], age)
        yield gauge
