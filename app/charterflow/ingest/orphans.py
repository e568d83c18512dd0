"""Storage lifecycle: objects under ``documents/`` whose document row does not exist.

An upload writes the object first and commits the row after it (so a row never names a missing
object); a crash in between, or a commit that failed, leaves an object no row names. The sweep
removes such objects once they are older than a safe age (far longer than any upload takes, so
an upload still in flight is never touched), and counts them. Several workers may sweep at
once: deleting an object twice is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from charterflow.ingest import metrics
from charterflow.logging import get_logger
from charterflow.models import Document, utcnow
from charterflow.storage import Storage

log = get_logger("charterflow.orphans")
PREFIX = "documents/"
BATCH = 500  # keys looked up in the database per query


@dataclass
class OrphanSweep:
    removed: list[str] = field(default_factory=list)
    bytes_removed: int = 0
    kept_young: int = 0  # orphans not old enough yet


def sweep_orphans(
    session_factory: sessionmaker[Session],
    storage: Storage,
    min_age: timedelta,
    now: datetime | None = None,
) -> OrphanSweep:
    """Delete every object under ``documents/`` older than ``min_age`` that no row names."""
    now = now or utcnow()
    result = OrphanSweep()
    objects = list(storage.list(PREFIX))
    for start in range(0, len(objects), BATCH):
        batch = objects[start : start + BATCH]
        with session_factory() as db:
            named = set(
                db.scalars(
                    select(Document.storage_key).where(
                        Document.storage_key.in_([o.key for o in batch])
                    )
                )
            )
        for info in batch:
            if info.key in named:
                continue
            if now - info.modified < min_age:
                result.kept_young += 1
                continue
            storage.delete(info.key)
            result.removed.append(info.key)
            result.bytes_removed += info.size
    if result.removed:
        metrics.orphans_removed.inc(len(result.removed))
        metrics.orphan_bytes_removed.inc(result.bytes_removed)
        log.warning(
            "stored objects without a document removed",
            objects=len(result.removed),
            bytes=result.bytes_removed,
        )
    return result
