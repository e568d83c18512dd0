"""The workspace storage quota (``WORKSPACE_QUOTA_BYTES``): what a workspace's content takes.

Uploads count as their size; notes (title, body, citations), charters and every kept charter
version (title and sections as stored JSON, shared sections once) count as their UTF-8 bytes,
so history and notes cannot fill the disk past the quota either (issue 26, item 4).
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import LargeBinary, Text, cast, func, select
from sqlalchemy.orm import Session

from charterflow.models import Charter, CharterVersion, Document, Note
from charterflow.services.workspaces import lock_workspace
from charterflow.settings import Settings


def _bytes(db: Session, *columns: Any) -> Any:
    """The UTF-8 bytes of ``columns`` (text or JSON) together, as SQL."""
    postgres = db.get_bind().dialect.name == "postgresql"
    parts = [
        func.octet_length(cast(c, Text))
        if postgres
        else func.length(cast(cast(c, Text), LargeBinary))
        for c in columns
    ]
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return func.coalesce(func.sum(total), 0)


def used_bytes(db: Session, workspace_id: str) -> int:
    """Bytes the workspace's uploads, notes, charters and charter versions take."""
    queries = [
        select(func.coalesce(func.sum(Document.size_bytes), 0)).where(
            Document.workspace_id == workspace_id
        ),
        select(_bytes(db, Note.title, Note.body, Note.citations)).where(
            Note.workspace_id == workspace_id
        ),
        select(_bytes(db, Charter.title, Charter.sections)).where(
            Charter.workspace_id == workspace_id
        ),
        select(_bytes(db, CharterVersion.title, CharterVersion.sections))
        .join(Charter, Charter.id == CharterVersion.charter_id)
        .where(Charter.workspace_id == workspace_id),
    ]
    return sum(int(db.scalar(q) or 0) for q in queries)


def refuse_if_over(db: Session, workspace_id: str, settings: Settings) -> None:
    """409 when the workspace, with this transaction's writes (flushed), holds more than
    ``WORKSPACE_QUOTA_BYTES``; the caller's transaction is then rolled back. Counted under
    the workspace's lock, so two saves at the same instant cannot both pass."""
    quota = settings.workspace_quota_bytes
    if not quota:
        return
    db.flush()
    lock_workspace(db, workspace_id)
    used = used_bytes(db, workspace_id)
    if used > quota:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"The workspace's storage quota is {quota} bytes (WORKSPACE_QUOTA_BYTES) and this "
            f"would take it to {used}; delete documents, notes, charters or charter versions",
        )
