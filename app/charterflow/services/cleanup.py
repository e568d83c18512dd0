"""Deleting a notebook or a workspace with its documents: rows first, stored objects after."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from charterflow.logging import get_logger
from charterflow.models import Document, Notebook, Workspace
from charterflow.services import audit
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


def delete_with_documents(
    db: Session, request: Request, target: Notebook | Workspace, *, actor_id: str
) -> None:
    """Delete ``target`` (its documents' rows cascade) with an audit event in one commit, then
    its documents' stored objects: a failure leaves an unreferenced object, never a row
    without its object."""
    if isinstance(target, Notebook):
        kind, workspace_id, owned = "notebook", target.workspace_id, Document.notebook_id
    else:
        kind, workspace_id, owned = "workspace", target.id, Document.workspace_id
    keys = list(db.scalars(select(Document.storage_key).where(owned == target.id)))
    db.delete(target)
    audit.record(
        db,
        request,
        f"{kind}.delete",
        target_type=kind,
        target_id=target.id,
        workspace_id=workspace_id,
        actor_id=actor_id,
        documents=len(keys),
    )
    db.commit()
    delete_objects(request.app.state.storage, keys)
