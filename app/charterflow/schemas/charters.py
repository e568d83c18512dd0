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


_Given = Literal["keep", "drop"] | Annotated[list[CitationIn], Field(max_length=100)]


class SectionUpdate(BaseModel):
    """A section's new text, and what becomes of its citations."""

    body: _Body = Field(description="The text; `[n]` marks cite the n-th citation.")
    citations_policy: Literal["drop_unused", "keep"] = Field(
        "drop_unused",
        description="`drop_unused` (default): the citations the new text no longer cites as "
        "`[n]` are dropped, the others renumbered in the order the text cites them; `keep`: "
        "the section keeps all its citations. Either way every `[n]` must name one (400).",
    )
    citations: (
        Literal["keep", "drop"] | Annotated[list[CitationIn], Field(max_length=100)] | None
    ) = Field(
        None,
        description="A list: these citations replace the section's (`[n]` names the n-th; "
        "`citations_policy` does not apply). Older clients' `keep` (as `citations_policy: "
        "keep`) and `drop` (no citations, `[n]` marks removed) are still accepted.",
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
    model: str | None = Field(None, description="The model that drafted it (`mode: llm`).")
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
