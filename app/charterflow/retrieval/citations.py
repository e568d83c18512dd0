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
    #: The heading path of the cited passage (outermost heading first); None if it has none.
    heading: str | None = None


@dataclass
class Answer:
    answer: str
    mode: Literal["extractive", "llm"]
    citations: list[Citation] = field(default_factory=list)
    warning: str | None = None
    #: The model that wrote it (``mode == "llm"``); None for extracts.
    model: str | None = None

    @property
    def quoted(self) -> bool:
        """Whether the text is verbatim extracts of the sources (not written by a model)."""
        return self.mode == "extractive" and bool(self.citations)


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
        heading=hit.heading,
    )
