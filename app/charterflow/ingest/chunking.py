"""Split extracted text into overlapping passages that keep their offsets and page.

Passages never span two PDF pages, so a passage's page is exact. They end at a paragraph
break, else a sentence end, else a space, inside the last 40% of
the window, so that they rarely cut a sentence; the next passage starts ``overlap`` characters
earlier, on a word boundary, so a fact that straddles a boundary is whole in one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from charterflow.ingest.limits import UNBOUNDED, Limits
from charterflow.ingest.parsers import Extracted

CHUNK_CHARS = 1000
OVERLAP_CHARS = 200
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?\s")


@dataclass(frozen=True)
class TextChunk:
    ordinal: int
    text: str
    start: int
    end: int
    page: int | None


def _cut(text: str, start: int, limit: int) -> int:
    """Where a passage starting at ``start`` should end (exclusive)."""
    if limit >= len(text):
        return len(text)
    floor = start + (limit - start) * 6 // 10
    window = text[floor:limit]
    for pattern in ("\n\n", None, "\n", " "):
        if pattern is None:
            ends = [m.end() for m in _SENTENCE_END.finditer(window)]
            if ends:
                return floor + ends[-1]
            continue
        at = window.rfind(pattern)
        if at >= 0:
            return floor + at + len(pattern)
    return limit


def _segments(extracted: Extracted) -> list[tuple[int, int]]:
    """Pages of a paged document (passages never span two pages), else the whole text."""
    starts = [start for start, _ in extracted.page_starts] or [0]
    ends = [*starts[1:], len(extracted.text)]
    return list(zip(starts, ends, strict=True))


def chunk(
    extracted: Extracted,
    size: int = CHUNK_CHARS,
    overlap: int = OVERLAP_CHARS,
    limits: Limits = UNBOUNDED,
) -> list[TextChunk]:
    """Passages of at most ``size`` characters covering all of ``extracted.text``; stops
    with ``OverLimit`` as soon as there are more than ``limits.max_chunks``."""
    chunks: list[TextChunk] = []
    for seg_start, seg_end in _segments(extracted):
        text = extracted.text[:seg_end]
        start = seg_start
        while start < seg_end:
            while start < seg_end and text[start].isspace():
                start += 1
            if start >= seg_end:
                break
            end = _cut(text, start, start + size)
            stripped = end
            while stripped > start and text[stripped - 1].isspace():
                stripped -= 1
            limits.chunks(len(chunks) + 1)
            chunks.append(
                TextChunk(
                    len(chunks), text[start:stripped], start, stripped, extracted.page_at(start)
                )
            )
            if end >= seg_end:
                break
            nxt = max(end - overlap, start + 1)
            space = text.find(" ", nxt, end)
            start = space + 1 if space >= 0 else nxt
    return chunks
