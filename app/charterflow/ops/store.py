"""Where backups live: ``<BACKUP_PREFIX><instance>/<UTC stamp>.dump`` and ``.json`` (its
manifest, written last: a backup without one is incomplete and never restored). Age, for
retention, is the stamp in the key (not ``LastModified``, which a bucket copy rewrites)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from charterflow.ops import LifecycleError
from charterflow.settings import Settings
from charterflow.storage import S3Storage, check_key

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_BACKUP_FILE = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)\.(?P<ext>dump|json)$")


def open_bucket(settings: Settings) -> S3Storage:
    if not settings.s3_bucket:
        raise LifecycleError("S3_BUCKET is not set: backups are written to S3")
    storage = S3Storage(settings)
    storage.check()
    return storage


def backup_base(prefix: str, name: str) -> str:
    """``<prefix><name>/``, the folder of one instance's backups."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    base = f"{prefix}{name}/"
    try:
        check_key(base + "x")
    except ValueError:
        raise LifecycleError(f"invalid backup prefix or name: {base!r}") from None
    return base


@dataclass
class StoredBackup:
    """One stamp's objects; complete when both the dump and its manifest exist."""

    stamp: datetime
    keys: dict[str, str] = field(default_factory=dict)  # extension -> key

    @property
    def complete(self) -> bool:
        return {"dump", "json"} <= self.keys.keys()


def list_backups(storage: S3Storage, base: str) -> list[StoredBackup]:
    """The backups directly under ``base``, oldest first; other objects are not ours."""
    found: dict[str, StoredBackup] = {}
    for obj in storage.list(base):
        match = _BACKUP_FILE.match(obj.key[len(base) :])
        if not match:
            continue
        stamp = datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=UTC)
        found.setdefault(match["stamp"], StoredBackup(stamp)).keys[match["ext"]] = obj.key
    return [found[s] for s in sorted(found)]


def prune(storage: S3Storage, base: str, retention_days: int, now: datetime) -> list[str]:
    """Delete backups stamped more than ``retention_days`` before ``now``; keep the newest
    complete one whatever its age. ``0`` keeps everything. Returns the deleted keys."""
    if retention_days <= 0:
        return []
    backups = list_backups(storage, base)
    complete = [b for b in backups if b.complete]
    newest = complete[-1] if complete else None
    cutoff = now - timedelta(days=retention_days)
    deleted = []
    for b in backups:
        if b.stamp < cutoff and b is not newest:
            for ext in ("json", "dump"):  # manifest first: a half-deleted backup is incomplete
                if ext in b.keys:
                    storage.delete(b.keys[ext])
                    deleted.append(b.keys[ext])
    return deleted
