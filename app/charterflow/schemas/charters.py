"""Request and response bodies of charters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from charterflow.schemas.common import ORMModel, Title, storable
from charterflow.schemas.notes import CitationIn
from charterflow.schemas.search import CitationOut

_Query = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(storable),
]
_Body = Annotated[str, StringConstraints(max_length=50_000), AfterValidator(storable)]


class CharterIn(BaseModel):
    template: Literal["product-charter", "sop"] = Field(
        description="`product-charter`: problem, users, goals, scope, out of scope, risks, "
        "success measures. `sop`: purpose, scope, roles, steps, checks."
    )
    title: Title


class CharterUpdate(BaseModel):
    title: Title


class SectionUpdate(BaseModel):
    """A section's new text, and what becomes of its citations — said explicitly."""

    body: _Body = Field(description="The text; `[n]` marks cite the n-th citation.")
    citations: Literal["keep", "drop"] | Annotated[list[CitationIn], Field(max_length=100)] = Field(
        description="`keep`: the section keeps its citations (every `[n]` in `body` must name "
        "one); `drop`: it has none any more (`[n]` marks are removed from `body`); a list: "
        "these citations replace them."
    )


class RegenerateIn(BaseModel):
    query: _Query | None = Field(
        None, description="What to look for in the sources; default: the section's question."
    )


class SectionOut(BaseModel):
    key: str
    title: str
    body: str
    citations: list[CitationOut]
    status: Literal["drafted", "unsupported", "edited"] = Field(
        description="`unsupported`: no passage of the sources supports this section."
    )
    mode: Literal["extractive", "llm"] | None = Field(description="How it was drafted.")
    query: str = Field(description="What retrieval looked for.")
    warning: str | None = None


class CharterOut(ORMModel):
    id: str
    workspace_id: str
    notebook_id: str
    template: str
    title: str
    sections: list[SectionOut]
    version: int
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class CharterVersionSummary(ORMModel):
    number: int
    title: str
    change: str = Field(
        description="`draft`, `title`, `edit:<section>`, `regenerate:<section>` or `restore:<n>`."
    )
    created_by: str | None
    created_at: datetime


class CharterVersionOut(CharterVersionSummary):
    sections: list[SectionOut]
