"""No document stays ``processing`` forever: documents whose worker stopped renewing the
lease are re-queued, or failed once they have used up their attempts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from charterflow.db import session_scope
from charterflow.ingest import metrics
from charterflow.jobs import JobQueue
from charterflow.logging import get_logger
from charterflow.models import Document, DocumentStatus, utcnow

log = get_logger("charterflow.sweep")


@dataclass
class SweepResult:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def sweep(
    session_factory: sessionmaker[Session],
    jobs: JobQueue,
    max_attempts: int,
    now: datetime | None = None,
) -> SweepResult:
    """Handle every ``processing`` document whose lease expired before ``now``."""
    now = now or utcnow()
    result = SweepResult()
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
    for doc_id in result.requeued:
        jobs.enqueue_ingest(doc_id)
    for action, ids in (("requeued", result.requeued), ("failed", result.failed)):
        if ids:
            metrics.swept.labels(action).inc(len(ids))
            log.warning("expired leases swept", action=action, documents=ids)
    return result
