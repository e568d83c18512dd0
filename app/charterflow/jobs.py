"""How the API hands work to the background workers.

``make_job_queue`` returns the queue the API uses: Dramatiq on Redis when ``REDIS_URL`` is set,
otherwise an in-process runner so that development still ingests uploads.
(The ingestion work fills in the real implementations.)
"""

from __future__ import annotations

from typing import Protocol

from charterflow.settings import Settings


class JobQueue(Protocol):
    def enqueue_ingest(self, document_id: str) -> None:
        """Schedule ingestion (parse, chunk, embed) of a stored document."""


class _NoIngestion:
    def enqueue_ingest(self, document_id: str) -> None:
        return None


def make_job_queue(settings: Settings) -> JobQueue:
    return _NoIngestion()
