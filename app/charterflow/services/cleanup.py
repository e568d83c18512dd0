"""Remove stored objects whose rows are already gone (notebook and workspace deletion)."""

from __future__ import annotations

from collections.abc import Iterable

from charterflow.logging import get_logger
from charterflow.storage import Storage, StorageError

log = get_logger("charterflow.cleanup")


def delete_objects(storage: Storage, keys: Iterable[str]) -> int:
    """Delete each key, best effort: a failure leaves an unreferenced object, never a row
    without its object. Returns how many could not be deleted (each is logged)."""
    failed = 0
    for key in keys:
        try:
            storage.delete(key)
        except StorageError as exc:
            failed += 1
            log.warning("stored object left behind", key=key, error=str(exc))
    return failed
