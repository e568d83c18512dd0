"""The worker's Prometheus collectors (its own registry, served by ``ingest.health``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, Info

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
