"""Parse again the documents stored under an older parser version, and move the citations
that point into them.

A document's chunks index its extracted text, and citations (conversation turns, notes,
charter sections and their versions) keep ``start``/``end``/``text`` into it. A new parser
lays the same document out differently (paragraphs joined, headers dropped), so after the
new chunks are stored, each citation of the document is found again in the new text, by its
letters and digits (spacing, line breaks and rejoined hyphens aside), nearest to where it
was; its offsets, text, chunk and page are rewritten. A citation that cannot be found (its
text crossed a running header that is gone) keeps its quote and is pointed at the passage
that holds the best-matching start of it, else left as it was.

The document stays ``ready`` and searchable throughout: the new chunks replace the old ones
in one transaction, and only if the document is still ready, still on the old version and
not re-ingested meanwhile (``attempts`` unchanged).
"""

from __future__ import annotations

import copy
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from charterflow.db import session_scope
from charterflow.ingest.chunking import TextChunk, chunk
from charterflow.ingest.limits import Limits, time_budget
from charterflow.ingest.parsers import PARSER_VERSION, parse
from charterflow.ingest.pipeline import IngestContext, _embed, _replace_chunks, _source, log
from charterflow.models import (
    Charter,
    CharterVersion,
    Chunk,
    Conversation,
    Document,
    DocumentStatus,
    Message,
    Note,
    utcnow,
)

#: Letters and digits of a quote that must match at least, at its start, to place it.
MIN_PREFIX = 24
PREFIX_STEP = 8


@dataclass
class Locator:
    """Finds a quote in ``text`` whatever its spacing: an index of its letters and digits."""

    text: str

    def __post_init__(self) -> None:
        self.positions = [i for i, ch in enumerate(self.text) if ch.isalnum()]
        self.letters = "".join(self.text[i].lower() for i in self.positions)

    def find(self, quote: str, near: int) -> tuple[int, int] | None:
        """``(start, end)`` of ``quote`` in the text, the occurrence nearest ``near``."""
        key = "".join(ch.lower() for ch in quote if ch.isalnum())
        if not key:
            return None
        span = self._nearest(key, near)
        if span is not None:
            return self._punctuated(quote, span)
        # Part of it is gone (a running header inside it): place it by its longest start.
        for size in range(len(key) - 1, MIN_PREFIX - 1, -PREFIX_STEP):
            span = self._nearest(key[:size], near)
            if span is not None:
                start = span[0]
                return start, self._end_of(start, min(len(self.text), start + len(quote)))
        return None

    def _punctuated(self, quote: str, span: tuple[int, int]) -> tuple[int, int]:
        """``span`` widened by the punctuation the quote starts or ends with ("(CTRL-A).")."""
        start, end = span
        stripped = quote.strip()
        head = stripped[: len(stripped) - len(stripped.lstrip("\"'([{\u201c\u2018"))]
        tail = stripped[len(stripped.rstrip(".,;:!?\"')]}\u201d\u2019")) :]
        if head and self.text[start - len(head) : start] == head:
            start -= len(head)
        if tail and self.text[end : end + len(tail)] == tail:
            end += len(tail)
        return start, end

    def _nearest(self, key: str, near: int) -> tuple[int, int] | None:
        best: tuple[int, int] | None = None
        at = self.letters.find(key)
        while at >= 0:
            start = self.positions[at]
            end = self.positions[at + len(key) - 1] + 1
            if best is None or abs(start - near) < abs(best[0] - near):
                best = (start, end)
            at = self.letters.find(key, at + 1)
        return best

    def _end_of(self, start: int, end: int) -> int:
        """``end`` moved back to the end of a word, and not past the block ``start`` is in."""
        stop = self.text.find("\n\n", start, end)
        if stop >= 0:
            return stop
        while 0 < end < len(self.text) and self.text[end].isalnum():
            end -= 1
        return end


def _chunk_at(pieces: list[TextChunk], offset: int) -> TextChunk | None:
    starts = [p.start for p in pieces]
    i = bisect_right(starts, offset) - 1
    return pieces[i] if i >= 0 else None


def relocate(
    citations: list[dict[str, Any]],
    document_id: str,
    locator: Locator,
    pieces: list[TextChunk],
    chunk_ids: dict[int, str],
    scale: float,
) -> tuple[list[dict[str, Any]], int]:
    """The citations with those of ``document_id`` moved into the new text; how many moved."""
    moved = 0
    out = []
    for citation in citations:
        if citation.get("document_id") != document_id or not isinstance(citation.get("text"), str):
            out.append(citation)
            continue
        near = int((citation.get("start") or 0) * scale)
        span = locator.find(citation["text"], near)
        if span is None:
            out.append(citation)
            continue
        start, end = span
        piece = _chunk_at(pieces, start)
        new = {**citation, "start": start, "end": end, "text": locator.text[start:end]}
        if piece is not None:
            new["chunk_id"] = chunk_ids.get(piece.ordinal, citation.get("chunk_id"))
            new["page"] = piece.page
        moved += new != citation
        out.append(new)
    return out, moved


def _rewrite_citations(
    db: Session, doc: Document, text: str, pieces: list[TextChunk], old_length: int
) -> int:
    """Move the citations of ``doc`` in its notebook's turns, notes and charters."""
    chunk_ids = dict(
        db.execute(select(Chunk.ordinal, Chunk.id).where(Chunk.document_id == doc.id)).all()
    )
    locator = Locator(text)
    scale = len(text) / old_length if old_length else 1.0
    moved = 0

    def fix(citations: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        nonlocal moved
        if not any(c.get("document_id") == doc.id for c in citations or []):
            return None
        new, count = relocate(citations, doc.id, locator, pieces, chunk_ids, scale)
        moved += count
        return new if count else None

    messages = db.scalars(
        select(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.notebook_id == doc.notebook_id)
    )
    for owner in [*messages, *db.scalars(select(Note).where(Note.notebook_id == doc.notebook_id))]:
        if (new := fix(owner.citations)) is not None:
            owner.citations = new
    charters = db.scalars(select(Charter).where(Charter.notebook_id == doc.notebook_id)).all()
    versions = db.scalars(
        select(CharterVersion).where(CharterVersion.charter_id.in_([c.id for c in charters]))
    ).all()
    for owner in [*charters, *versions]:
        sections = copy.deepcopy(owner.sections)
        changed = False
        for section in sections:
            if (new := fix(section.get("citations") or [])) is not None:
                section["citations"] = new
                changed = True
        if changed:
            owner.sections = sections
    return moved


def _stale() -> Any:
    return or_(Document.parser_version.is_(None), Document.parser_version < PARSER_VERSION)


def reparse(ctx: IngestContext, document_id: str) -> bool:
    """Parse one ready document again; False when it is not stale any more (or not ready,
    or changed meanwhile) or cannot be read now (it keeps its old chunks then)."""
    with ctx.session_factory() as db:
        doc = db.get(Document, document_id)
        if doc is None or doc.status != DocumentStatus.ready.value:
            return False
        if doc.parser_version is not None and doc.parser_version >= PARSER_VERSION:
            return False
        db.expunge(doc)
        old_end = db.scalar(
            select(Chunk.end).where(Chunk.document_id == doc.id).order_by(Chunk.end.desc())
        )
    limits = Limits.from_settings(ctx.settings)
    try:
        with time_budget(limits.time_budget_seconds):
            media_type, data = _source(ctx, doc)
            extracted = parse(media_type, data, limits)
            pieces = chunk(extracted, limits=limits)
            vectors = _embed(ctx, pieces, None)
    except Exception as exc:  # kept as it is; the next start tries again
        log.warning("re-parse failed", document_id=document_id, error=type(exc).__name__)
        return False
    with session_scope(ctx.session_factory) as db:
        owned = db.execute(
            update(Document)
            .where(
                Document.id == doc.id,
                Document.status == DocumentStatus.ready.value,
                Document.attempts == doc.attempts,
                _stale(),
            )
            .values(parser_version=PARSER_VERSION, chunk_count=len(pieces), updated_at=utcnow())
        ).rowcount
        if not owned:
            db.rollback()
            return False
        _replace_chunks(ctx, db, doc, pieces, vectors)
        db.flush()
        moved = _rewrite_citations(db, doc, extracted.text, pieces, old_end or 0)
    log.info("document parsed again", document_id=doc.id, chunks=len(pieces), citations=moved)
    return True


def reparse_stale(ctx: IngestContext) -> int:
    """Parse again every ready document stored under an older parser version; returns how
    many were. Their sentence vectors follow (``backfill_sentences``)."""
    done = 0
    last_id = ""
    while True:
        with ctx.session_factory() as db:
            ids = list(
                db.scalars(
                    select(Document.id)
                    .where(
                        Document.id > last_id,
                        Document.status == DocumentStatus.ready.value,
                        _stale(),
                    )
                    .order_by(Document.id)
                    .limit(100)
                )
            )
        if not ids:
            return done
        for document_id in ids:
            done += reparse(ctx, document_id)
        last_id = ids[-1]
