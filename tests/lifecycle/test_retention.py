"""Retention: age comes from the UTC stamp in a backup's key, never from ``LastModified``, and
the newest complete backup is kept whatever its age."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from charterflow.ops.store import STAMP_FORMAT, list_backups, prune
from charterflow.settings import Settings
from charterflow.storage import S3Storage

from tests.lifecycle.conftest import Instance

pytestmark = pytest.mark.services
BASE = "backups/acme/"


def _put(inst: Instance, *keys: str) -> None:
    s3 = inst.s3.client()
    for key in keys:
        s3.put_object(Bucket=inst.bucket, Key=key, Body=b"not a real dump")


def _stamp(when: datetime) -> str:
    return when.strftime(STAMP_FORMAT)


def test_backup_prunes_by_the_stamp_in_the_key(make_instance: Callable[..., Instance]) -> None:
    """Objects written just now but stamped long ago are pruned; others' objects are not."""
    inst = make_instance()
    recent = _stamp(datetime.now(UTC) - timedelta(days=2))
    old = [f"{BASE}20200101T030000Z.dump", f"{BASE}20200101T030000Z.json"]
    old_incomplete = [f"{BASE}20200102T030000Z.dump"]
    kept = [
        f"{BASE}{recent}.dump",
        f"{BASE}{recent}.json",
        f"{BASE}README.txt",  # not a backup
        "backups/acme-staging/20200101T030000Z.dump",  # another instance
        "documents/0123abcd",
    ]
    _put(inst, *old, *old_incomplete, *kept)

    done = inst.cli("backup", "--retention-days", "7")
    assert done.returncode == 0, done.stderr
    assert "pruned 3 objects" in done.stdout

    keys = set(inst.objects())
    assert not keys & {*old, *old_incomplete}
    assert set(kept) <= keys
    new = keys - set(kept)
    assert len(new) == 2  # the backup just written: its dump and manifest
    assert all(k.startswith(BASE) and k > f"{BASE}{recent}" for k in new)


def test_retention_from_the_environment_and_zero_keeps_all(
    make_instance: Callable[..., Instance],
) -> None:
    inst = make_instance(BACKUP_RETENTION_DAYS="0")
    old = [f"{BASE}20200101T030000Z.dump", f"{BASE}20200101T030000Z.json"]
    _put(inst, *old)
    assert inst.cli("backup").returncode == 0
    assert set(old) <= set(inst.objects())


def test_the_newest_complete_backup_is_kept_even_when_older_than_the_window(
    make_instance: Callable[..., Instance],
) -> None:
    inst = make_instance(migrated=False)
    env = inst.env()
    storage = S3Storage(
        Settings(
            _env_file=None,
            s3_bucket=env["S3_BUCKET"],
            s3_endpoint_url=env["S3_ENDPOINT_URL"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
    )
    complete = ["20200101T030000Z", "20200102T030000Z"]
    _put(inst, *(f"{BASE}{s}.{ext}" for s in complete for ext in ("dump", "json")))
    _put(inst, f"{BASE}20200103T030000Z.dump")  # newer, but incomplete: not a backup to keep

    assert prune(storage, BASE, 0, datetime(2026, 1, 1, tzinfo=UTC)) == []
    deleted = prune(storage, BASE, 7, datetime(2026, 1, 1, tzinfo=UTC))

    expired = ["20200101T030000Z.dump", "20200101T030000Z.json", "20200103T030000Z.dump"]
    assert sorted(deleted) == [BASE + name for name in expired]
    (left,) = list_backups(storage, BASE)
    assert left.complete
    assert left.stamp == datetime(2020, 1, 2, 3, tzinfo=UTC)
