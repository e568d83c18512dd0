"""No document is stuck: documents whose worker stopped renewing the lease are re-queued, or
failed once they have used up their attempts; documents left ``pending`` for long are queued
again, because their job may be gone (Redis restarted without persistence, or down when the
upload tried to enqueue). A duplicate job is harmless: only one can claim the document."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from charterflow.db import session_scope
from charterflow.ingest import metrics
from charterflow.ingest_queue import JobQueue
from charterflow.logging import get_logger
from charterflow.models import Document, DocumentStatus, utcnow

log = get_logger("charterflow.sweep")


# A document ``pending`` this long without a worker taking it is queued again.
PENDING_REQUEUE_SECONDS = 900


@dataclass
class SweepResult:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    reenqueued: list[str] = field(default_factory=list)  # ``pending`` for too long


def sweep(
    session_factory: sessionmaker[Session],
    jobs: JobQueue,
    max_attempts: int,
    now: datetime | None = None,
    pending_requeue_seconds: float = PENDING_REQUEUE_SECONDS,
) -> SweepResult:
    """Handle every ``processing`` document whose lease expired before ``now``, and every
    ``pending`` one unchanged for ``pending_requeue_seconds``."""
    now = now or utcnow()
    result = SweepResult()
    stale_since = now - timedelta(seconds=pending_requeue_seconds)
    _requeue_stale_pending(session_factory, stale_since, now, result)
    expired = (
        Document.status == DocumentStatus.processing.value,
        Document.lease_expires_at < now,
    )
    with session_scope(session_factory) as db:
        rows = db.execute(select(Document.id, Document.attempts).where(*expired)).all()
        for doc_id, attempts in rows:
            gave_up = attempts >= max_attempts
            reason = (
                f"gave up after {attempts} attempts: the worker processing it stopped responding"
                if gave_up
                else f"attempt {attempts}: the worker processing it stopped responding; re-queued"
            )
            changed = db.execute(
                update(Document)
                .where(Document.id == doc_id, Document.attempts == attempts, *expired)
                .values(
                    status=(DocumentStatus.failed if gave_up else DocumentStatus.pending).value,
                    error=reason,
                    lease_expires_at=None,
                )
            ).rowcount
            if changed:
                (result.failed if gave_up else result.requeued).append(doc_id)
    for doc_id in [*result.requeued, *result.reenqueued]:
        jobs.enqueue_ingest(doc_id)
    for action, ids, what in (
        ("requeued", result.requeued, "expired leases swept"),
        ("failed", result.failed, "expired leases swept"),
        ("reenqueued", result.reenqueued, "documents pending for long queued again"),
    ):
        if ids:
            metrics.swept.labels(action).inc(len(ids))
            log.warning(what, action=action, documents=ids)
    return result


def _requeue_stale_pending(
    session_factory: sessionmaker[Session], before: datetime, now: datetime, result: SweepResult
) -> None:
    """Touch (so that the next sweep leaves them alone) and collect ``pending`` documents
    unchanged since ``before``; each is touched only if no one changed it meanwhile."""
    stale = (Document.status == DocumentStatus.pending.value, Document.updated_at < before)
    with session_scope(session_factory) as db:
        rows = db.execute(select(Document.id, Document.updated_at).where(*stale)).all()
        for doc_id, updated_at in rows:
            changed = db.execute(
                update(Document)
                .where(Document.id == doc_id, Document.updated_at == updated_at, *stale)
                .values(updated_at=now)
            ).rowcount
            if changed:
                result.reenqueued.append(doc_id)
