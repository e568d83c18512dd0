"""Store an upload and its ``documents`` row so that the two never disagree.

The bytes are read once from the spooled upload (memory up to 1 MiB, then a temporary file):
counted (aborting past the limit), hashed and type-checked. Then the object is written, then
the row is committed; if the row fails, the object is deleted again. A storage failure raises
``StorageError`` before any row exists.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import BinaryIO

from fastapi import Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from charterflow.logging import get_logger
from charterflow.models import Document, Notebook, User, new_id
from charterflow.services import audit
from charterflow.services.filetypes import TextSniffer, detect, sanitize_filename
from charterflow.services.quota import used_bytes
from charterflow.services.workspaces import lock_workspace
from charterflow.settings import Settings
from charterflow.storage import CHUNK, Storage, StorageError

log = get_logger("charterflow.uploads")
HEAD_BYTES = 8192


class UploadTooLarge(ValueError):
    """The upload is larger than ``MAX_UPLOAD_BYTES`` (the API answers 413)."""


class QuotaExceeded(ValueError):
    """The workspace would hold more than its quota of bytes or documents (the API: 409)."""


def check_quota(db: Session, workspace_id: str, size: int, settings: Settings) -> None:
    """Refuse an upload of ``size`` bytes that would take the workspace past
    ``WORKSPACE_QUOTA_BYTES`` or ``WORKSPACE_QUOTA_DOCUMENTS``. Exact only under
    ``lock_workspace``; without it, a cheap early refusal."""
    count = (
        db.scalar(
            select(func.count()).select_from(Document).where(Document.workspace_id == workspace_id)
        )
        or 0
    )
    if settings.workspace_quota_documents and count + 1 > settings.workspace_quota_documents:
        raise QuotaExceeded(
            f"The workspace holds {count} documents, its quota (WORKSPACE_QUOTA_DOCUMENTS); "
            "delete some first"
        )
    if not settings.workspace_quota_bytes:
        return
    used = used_bytes(db, workspace_id)  # notes and charters count too
    if used + size > settings.workspace_quota_bytes:
        raise QuotaExceeded(
            f"The workspace's storage quota is {settings.workspace_quota_bytes} bytes "
            f"(WORKSPACE_QUOTA_BYTES); {used} are used and this file has {size}"
        )


@dataclass(frozen=True)
class Inspected:
    size: int
    sha256: str
    media_type: str


def inspect(
    stream: BinaryIO, filename: str, limit: int, media_type: str | None = None
) -> Inspected:
    """One pass over ``stream``: size (at most ``limit``), SHA-256 and detected media type
    (unless ``media_type`` is given: pasted text and URLs are what they are said to be)."""
    digest = hashlib.sha256()
    sniffer = TextSniffer()
    head = b""
    size = 0
    while block := stream.read(CHUNK):
        size += len(block)
        if size > limit:
            raise UploadTooLarge(f"larger than {limit} bytes")
        digest.update(block)
        sniffer.feed(block)
        if len(head) < HEAD_BYTES:
            head += block[: HEAD_BYTES - len(head)]
    sniffer.feed(b"", final=True)
    stream.seek(0)
    if media_type is None:
        media_type = detect(head, stream, sniffer, filename)
        stream.seek(0)
    return Inspected(size=size, sha256=digest.hexdigest(), media_type=media_type)


def store_document(
    db: Session,
    storage: Storage,
    request: Request,
    *,
    notebook: Notebook,
    user: User,
    stream: BinaryIO,
    filename: str | None,
    title: str | None,
    limit: int,
    source_url: str | None = None,
    media_type: str | None = None,
) -> Document:
    """Check, store and record one upload; returns the committed ``pending`` document.

    ``media_type`` overrides detection (a URL source's object is its address, ingested by
    fetching it); ``source_url`` is recorded on the row.
    """
    name = sanitize_filename(filename)
    info = inspect(stream, name, limit, media_type)
    settings = request.app.state.settings
    check_quota(db, notebook.workspace_id, info.size, settings)  # refuse early, store nothing
    doc_id = new_id()
    key = f"documents/{doc_id}"
    storage.put(key, stream, content_type=info.media_type)
    try:
        if settings.workspace_quota_bytes or settings.workspace_quota_documents:
            # Two uploads at the same instant may both have passed the early check.
            lock_workspace(db, notebook.workspace_id)
            check_quota(db, notebook.workspace_id, info.size, settings)
        doc = Document(
            id=doc_id,
            workspace_id=notebook.workspace_id,
            notebook_id=notebook.id,
            title=title or name.rsplit(".", 1)[0] or name,
            filename=name,
            media_type=info.media_type,
            size_bytes=info.size,
            sha256=info.sha256,
            storage_key=key,
            source_url=source_url,
            created_by=user.id,
        )
        db.add(doc)
        audit.record(
            db,
            request,
            "document.upload",
            target_type="document",
            target_id=doc_id,
            workspace_id=notebook.workspace_id,
            actor_id=user.id,
            notebook_id=notebook.id,
            size_bytes=info.size,
            media_type=info.media_type,
        )
        db.commit()
    except BaseException:
        db.rollback()
        try:
            storage.delete(key)
        except StorageError:
            log.error("orphaned object after a failed insert", key=key)
        raise
    return doc
