"""A document's extracted text, read back from its chunks, and the paragraph around a citation.

The text is not stored whole: chunks overlap and together cover it, each at its exact
``start``/``end`` offsets, so any window of it is the chunks that overlap the window laid at
their offsets. What lies between two chunks (only ever whitespace: the separator between
pages, or the blank line between blocks) is filled with newlines. Blocks (paragraphs, list
items, headings) are separated by a blank line, so a citation's paragraph is the
blank-line-delimited block around its offsets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from charterflow.models import Chunk

BLOCK_BREAK = "\n\n"
#: Characters of context shown at most on each side of a citation: a document without blank
#: lines (one huge block) is clipped, at a space, rather than sent whole.
CONTEXT_CHARS = 2000


@dataclass(frozen=True)
class Piece:
    """A chunk's text at its offsets (what ``stitch`` lays out)."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Window:
    offset: int
    text: str
    clipped_start: bool = False
    clipped_end: bool = False


def stitch(pieces: Iterable[Piece], lo: int, hi: int) -> str:
    """The text of ``[lo, hi)`` from overlapping ``pieces``; uncovered runs become newlines
    (a single uncovered character a space), which is what the parser put between chunks.
    Where pieces overlap, the one that starts first gives the text (they agree there)."""
    out: list[str] = []
    cursor = lo
    for piece in sorted(pieces, key=lambda p: p.start):
        stop = min(piece.end, piece.start + len(piece.text), hi)
        if stop <= cursor:
            continue
        if piece.start > cursor:
            gap = min(piece.start, hi) - cursor
            out.append(" " if gap == 1 else "\n" * gap)
            cursor += gap
        if cursor < stop:
            out.append(piece.text[cursor - piece.start : stop - piece.start])
            cursor = stop
        if cursor >= hi:
            break
    if cursor < hi:
        out.append(" " if hi - cursor == 1 else "\n" * (hi - cursor))
    return "".join(out)


def _clip_at_space(text: str, at: int, forward: bool) -> int:
    """``at`` moved to the nearest space inward (so a clipped context starts on a word)."""
    if forward:
        found = text.find(" ", at)
        return found + 1 if 0 <= found < at + 80 else at
    found = text.rfind(" ", 0, at)
    return found if found > at - 80 else at


def enclosing_blocks(text: str, offset: int, start: int, end: int, length: int) -> Window:
    """The blank-line-delimited block(s) of ``text`` (the document's ``length`` characters
    from ``offset`` on) that contain ``[start, end)``; clipped where they reach past ``text``."""
    s, e = start - offset, end - offset
    before = text.rfind(BLOCK_BREAK, 0, max(s, 0))
    after = text.find(BLOCK_BREAK, max(e, s))
    clipped_start = before < 0 and offset > 0
    clipped_end = after < 0 and offset + len(text) < length
    lo = before + len(BLOCK_BREAK) if before >= 0 else 0
    hi = after if after >= 0 else len(text)
    if clipped_start:
        lo = _clip_at_space(text, lo, forward=True)
    if clipped_end:
        hi = _clip_at_space(text, hi, forward=False)
    while lo < s and text[lo].isspace():
        lo += 1
    while hi > e and text[hi - 1].isspace():
        hi -= 1
    return Window(offset + lo, text[lo:hi], clipped_start, clipped_end)


def _pieces(db: Session, document_id: str, lo: int, hi: int) -> list[Piece]:
    rows = db.execute(
        select(Chunk.start, Chunk.end, Chunk.text)
        .where(Chunk.document_id == document_id, Chunk.end > lo, Chunk.start < hi)
        .order_by(Chunk.start)
    )
    return [Piece(start, end, text) for start, end, text in rows]


def text_length(db: Session, document_id: str) -> int:
    return int(db.scalar(select(func.max(Chunk.end)).where(Chunk.document_id == document_id)) or 0)


def page_starts(db: Session, document_id: str) -> list[tuple[int, int]]:
    """``(page, offset)`` where each page's text begins (chunks never span two pages)."""
    rows = db.execute(
        select(Chunk.page, func.min(Chunk.start))
        .where(Chunk.document_id == document_id, Chunk.page.is_not(None))
        .group_by(Chunk.page)
        .order_by(func.min(Chunk.start))
    )
    return [(int(page), int(start)) for page, start in rows]


def window(db: Session, document_id: str, offset: int, limit: int, length: int) -> Window:
    """Up to ``limit`` characters from ``offset``, ending at a block break when one falls in
    the last half, so that a page of the preview does not cut a paragraph."""
    hi = min(offset + limit, length)
    text = stitch(_pieces(db, document_id, offset, hi), offset, hi)
    if hi < length:
        cut = text.rfind(BLOCK_BREAK, len(text) // 2)
        if cut > 0:
            text = text[: cut + len(BLOCK_BREAK)]
    return Window(offset, text, clipped_end=offset + len(text) < length)


def passage(db: Session, document_id: str, start: int, end: int, length: int) -> Window:
    """The paragraph(s) that hold the span ``[start, end)``, with at most ``CONTEXT_CHARS``
    on either side of it."""
    lo, hi = max(start - CONTEXT_CHARS, 0), min(end + CONTEXT_CHARS, length)
    text = stitch(_pieces(db, document_id, lo, hi), lo, hi)
    return enclosing_blocks(text, lo, start, end, length)
