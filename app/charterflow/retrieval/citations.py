"""What an answer is made of: its text, how it was written, and the spans it cites."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from charterflow.retrieval.search import Hit


@dataclass
class Citation:
    document_id: str
    document_title: str
    chunk_id: str
    text: str
    start: int
    end: int
    page: int | None
    score: float


@dataclass
class Answer:
    answer: str
    mode: Literal["extractive", "llm"]
    citations: list[Citation] = field(default_factory=list)
    warning: str | None = None


def cite(hit: Hit, start: int | None = None, end: int | None = None, score: float = 0) -> Citation:
    s, e = (0, len(hit.text)) if start is None or end is None else (start, end)
    return Citation(
        document_id=hit.document_id,
        document_title=hit.document_title,
        chunk_id=hit.chunk_id,
        text=hit.text[s:e],
        start=hit.start + s,
        end=hit.start + e,
        page=hit.page,
        score=round(score or hit.similarity, 4),
    )
