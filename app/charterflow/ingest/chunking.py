"""Split a document's blocks into passages that keep their offsets, page and heading path.

A passage is a run of whole blocks (``ingest.blocks``), so it never starts mid-paragraph: a
heading or an FAQ question starts a new one (a question stays with its answer); a page
starts a new one (so a passage's page is exact); a passage ends before the block that would
take it over ``size`` characters. Only a block longer than that is cut, at sentence ends.
After a cut for size, the next passage repeats the last block when it is short (at most
``overlap`` characters), so a fact that straddles the cut is whole in one of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from charterflow.ingest.blocks import HEADING_SEPARATOR, Block, Extracted, Kind
from charterflow.ingest.limits import UNBOUNDED, Limits
from charterflow.retrieval.text import sentences

CHUNK_CHARS = 1000
OVERLAP_CHARS = 200


@dataclass(frozen=True)
class TextChunk:
    ordinal: int
    text: str
    start: int
    end: int
    page: int | None
    heading: str | None = None


@dataclass(frozen=True)
class _Unit:
    """A block, or a sentence-aligned piece of a block too long for one passage."""

    start: int
    end: int
    page: int | None
    heading: tuple[str, ...]
    kind: Kind


def _cut_space(text: str, start: int, end: int, size: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` pieces of at most ``size`` characters, cut at a space when one is in
    the last 40% of the window (a sentence longer than a passage)."""
    while end - start > size:
        floor = start + size * 6 // 10
        space = text.rfind(" ", floor, start + size)
        cut = space if space > start else start + size
        yield start, cut
        start = cut
        while start < end and text[start] == " ":
            start += 1
    if end > start:
        yield start, end


def _units(blocks: list[Block], size: int, overlap: int) -> Iterator[_Unit]:
    for block in blocks:
        if block.end - block.start <= size:
            yield _Unit(block.start, block.end, block.page, block.heading, block.kind)
            continue
        if block.kind is Kind.pre:  # code and tables: cut between lines
            spans = [(m.start(), m.end()) for m in _LINE.finditer(block.text)]
        else:
            spans = sentences(block.text)
        spans = spans or [(0, len(block.text))]
        piece_start, piece_end = spans[0]
        pieces: list[tuple[int, int]] = []
        for i, (s, e) in enumerate(spans[1:], start=1):
            if e - piece_start > size:
                pieces.append((piece_start, piece_end))
                # Start again a few sentences back (at most ``overlap`` characters).
                back = i
                while back > 1 and piece_end - spans[back - 1][0] <= overlap:
                    back -= 1
                piece_start = spans[back][0] if back < i and spans[back][0] > piece_start else s
            piece_end = e
        pieces.append((piece_start, piece_end))
        for s, e in pieces:
            for a, b in _cut_space(block.text, s, e, size):
                yield _Unit(block.start + a, block.start + b, block.page, block.heading, block.kind)


_LINE = re.compile(r"[^\n]+")
_STARTS = (Kind.heading, Kind.question)


def chunk(
    extracted: Extracted,
    size: int = CHUNK_CHARS,
    overlap: int = OVERLAP_CHARS,
    limits: Limits = UNBOUNDED,
) -> list[TextChunk]:
    """Passages of (about) at most ``size`` characters covering all of ``extracted``'s
    blocks; stops with ``OverLimit`` as soon as there are more than ``limits.max_chunks``."""
    chunks: list[TextChunk] = []
    current: list[_Unit] = []
    text = extracted.text

    def emit() -> None:
        first, last = current[0], current[-1]
        limits.chunks(len(chunks) + 1)
        heading = HEADING_SEPARATOR.join(first.heading) if first.heading else None
        chunks.append(
            TextChunk(
                len(chunks),
                text[first.start : last.end],
                first.start,
                last.end,
                first.page,
                heading,
            )
        )

    for unit in _units(extracted.blocks, size, overlap):
        if not current:
            current = [unit]
            continue
        only_headings = all(u.kind in _STARTS for u in current)
        if unit.page != current[0].page or (unit.kind in _STARTS and not only_headings):
            emit()
            current = [unit]
        elif unit.end - current[0].start > size and not only_headings:
            emit()
            last = current[-1]
            repeat = (
                len(current) > 1
                and last.kind not in _STARTS
                and last.end - last.start <= overlap
                and last.end - last.start + unit.end - unit.start + 2 <= size
            )
            current = [last, unit] if repeat else [unit]
        else:
            current.append(unit)
    if current:
        emit()
    return chunks
