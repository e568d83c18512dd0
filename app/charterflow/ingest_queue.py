"""The ingest queue: how the API hands uploads to the background workers.

``make_job_queue`` returns the queue the API uses: Dramatiq on Redis when ``REDIS_URL`` is set
(``charterflow worker`` consumes it), otherwise an in-process runner: one background thread
that ingests uploads with the same pipeline and retries, so development needs no Redis.
Either way a ready document's sentence vectors are stored by a follow-up job that comes after
the ingests already waiting (``store_sentences``), not on the way to ``ready``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

from charterflow.logging import get_logger
from charterflow.settings import Settings

if TYPE_CHECKING:
    from charterflow.ingest.pipeline import IngestContext

log = get_logger("charterflow.ingest_queue")


class JobQueue(Protocol):
    def enqueue_ingest(self, document_id: str) -> None:
        """Schedule ingestion (parse, chunk, embed) of a stored document."""


class DramatiqJobQueue:
    """Sends ``ingest_document`` messages to Redis."""

    def __init__(self, settings: Settings) -> None:
        from charterflow.ingest.actors import make_sender

        self._actor = make_sender(settings)

    def enqueue_ingest(self, document_id: str) -> None:
        self._actor.send(document_id)


class InProcessJobQueue:
    """Ingests in a background thread of this process, retrying with exponential backoff."""

    def __init__(self, settings: Settings, backoff_seconds: float = 1.0) -> None:
        self.settings = settings
        self.backoff_seconds = backoff_seconds
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest")
        # Large uploads get their own thread: small documents never wait behind them.
        self._large = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-large")
        self._ctx: IngestContext | None = None
        self._lock = threading.Lock()

    def _context(self) -> IngestContext:
        from charterflow.ingest.pipeline import IngestContext

        with self._lock:
            if self._ctx is None:
                self._ctx = IngestContext.from_settings(self.settings)
            return self._ctx

    def _run(self, document_id: str, lane: ThreadPoolExecutor) -> None:
        from charterflow.ingest.errors import Deferred
        from charterflow.ingest.pipeline import Outcome, ingest

        for attempt in range(self.settings.ingest_max_attempts * 3):
            try:
                outcome = ingest(self._context(), document_id)
            except Deferred:  # the uploader has their share: back of the queue
                threading.Timer(1.0, self.enqueue_ingest, (document_id,)).start()
                return
            except Exception as exc:
                delay = min(self.backoff_seconds * 2**attempt, 60)
                log.warning("in-process ingestion retry", document_id=document_id, error=str(exc))
                time.sleep(delay)
                continue
            if outcome is Outcome.ready and self.settings.ingest_sentence_vectors:
                # Behind the uploads already queued in this lane (FIFO). Refused only while
                # shutting down: answers then embed those sentences when asked.
                with contextlib.suppress(RuntimeError):
                    lane.submit(self._sentences, document_id)
            return

    def _sentences(self, document_id: str) -> None:
        """The follow-up: idempotent, so one more try after a failure is safe; chunks it
        misses are embedded by answers when asked (and by ``backfill_sentences``)."""
        from charterflow.ingest.pipeline import store_sentences

        for attempt in range(2):
            try:
                store_sentences(self._context(), document_id)
                return
            except Exception as exc:
                log.warning("sentence vectors failed", document_id=document_id, error=str(exc))
                time.sleep(self.backoff_seconds * 2**attempt)

    def enqueue_ingest(self, document_id: str) -> None:
        from charterflow.ingest.pipeline import is_large

        lane = self._large if is_large(self._context(), document_id) else self._executor
        lane.submit(self._run, document_id, lane)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._large.shutdown(wait=True)
        if self._ctx is not None:
            self._ctx.close()


def make_job_queue(settings: Settings) -> JobQueue:
    if settings.redis_url:
        return DramatiqJobQueue(settings)
    return InProcessJobQueue(settings)
