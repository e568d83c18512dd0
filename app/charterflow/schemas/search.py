"""Request and response bodies of notebook search and ask."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from charterflow.schemas.common import storable


class SearchHitOut(BaseModel):
    chunk_id: str
    document_id: str
    document_title: str
    text: str
    start: int = Field(description="Offset of the passage in the document's extracted text.")
    end: int
    page: int | None = Field(description="PDF page of the passage; null for other types.")
    score: float = Field(description="Reciprocal-rank-fusion score of the hybrid ranking.")
    similarity: float = Field(description="Cosine similarity of passage and query.")
    lexical_rank: int | None
    vector_rank: int | None
    heading: str | None = Field(None, description="Heading path of the passage, if any.")


class SearchOut(BaseModel):
    query: str
    items: list[SearchHitOut]


_DocumentId = Annotated[str, StringConstraints(min_length=1, max_length=32)]
#: "Ask only these": the documents retrieval is limited to (422 if one is not the notebook's).
DocumentIds = Annotated[
    list[_DocumentId] | None,
    Field(
        None,
        min_length=1,
        max_length=100,
        description="Answer from these documents of the notebook only (at most 100); "
        "default: all of them.",
    ),
]


class AskIn(BaseModel):
    question: Annotated[str, AfterValidator(storable)] = Field(min_length=1, max_length=2000)
    top_k: int = Field(5, ge=1, le=20, description="Passages to answer from, at most.")
    document_ids: DocumentIds = None


class CitationOut(BaseModel):
    document_id: str
    document_title: str
    chunk_id: str
    text: str
    start: int
    end: int
    page: int | None
    score: float
    heading: str | None = Field(
        None, description='Heading path of the cited passage ("3 Globs \u203a 3.1 Weights").'
    )


QUOTED = (
    "True when the answer is verbatim extracts of the sources (no model wrote it); false for a "
    "model's answer and for \"The sources don't answer this.\""
)
MODEL = "The model that wrote the answer (`mode: llm`); null for extracts."


class AskOut(BaseModel):
    answer: str
    mode: Literal["extractive", "llm"]
    quoted: bool = Field(description=QUOTED)
    model: str | None = Field(description=MODEL)
    citations: list[CitationOut]
    warning: str | None = None
