"""Citations given by clients (a note's, an edited charter section's) are resolved against
the notebook's own passages and rebuilt from them.

A client could otherwise send any ``document_id``, ``chunk_id``, quote and title (another
workspace's chunk ids, a fabricated "Board minutes (CONFIDENTIAL), page 3"), and the UI and
the exports would show it as a real source. Only ``chunk_id`` and the ``start``/``end`` span
are taken from the client; the quote, title, document and page come from the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from charterflow.models import Chunk, Document


def resolve(db: Session, notebook_id: str, given: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``given`` rebuilt from the passages they name; 400 for one naming no passage of this
    notebook, or a span outside its passage."""
    if not given:
        return []
    ids = {str(c["chunk_id"]) for c in given}
    rows = db.execute(
        select(
            Chunk.id,
            Chunk.document_id,
            Chunk.text,
            Chunk.start,
            Chunk.end,
            Chunk.page,
            Chunk.heading,
            Document.title,
        )
        .join(Document, Document.id == Chunk.document_id)
        .where(Chunk.id.in_(ids), Chunk.notebook_id == notebook_id)
    ).all()
    found = {row.id: row for row in rows}
    out = []
    for n, citation in enumerate(given, start=1):
        row = found.get(str(citation["chunk_id"]))
        start, end = int(citation["start"]), int(citation["end"])
        if row is None or citation["document_id"] != row.document_id:
            raise _refused(n, "does not name a passage of this notebook")
        if not row.start <= start < end <= row.end:
            raise _refused(n, f"spans {start}-{end}, outside its passage ({row.start}-{row.end})")
        out.append(
            {
                "document_id": row.document_id,
                "document_title": row.title,
                "chunk_id": row.id,
                "text": row.text[start - row.start : end - row.start],
                "start": start,
                "end": end,
                "page": row.page,
                "heading": row.heading,
                "score": float(citation.get("score") or 0.0),
            }
        )
    return out


def _refused(n: int, why: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, f"Citation {n} {why}")
