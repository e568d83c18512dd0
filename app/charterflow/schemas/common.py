"""Shared schema pieces: safe text, the pagination envelope, the error body."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

T = TypeVar("T")


def storable(value: str) -> str:
    """Reject text that a database cannot store: NUL bytes and lone surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


#: Bidirectional embeddings, overrides and isolates: they reorder what a reader sees (a name
#: that reads as another, a link that hides its target).
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def one_line(value: str) -> str:
    """Reject control characters in a name or title (CR/LF, tabs, escapes, line and
    paragraph separators, bidirectional overrides): names reach emails, exports and page
    headings, where a line break starts a new header, heading or paragraph of the sender's
    choosing."""
    for char in value:
        if char in _BIDI or unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            raise ValueError("must be one line without control characters")
    return value


def _text(min_length: int, max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


Name = Annotated[str, _text(1, 200), AfterValidator(storable), AfterValidator(one_line)]
Title = Annotated[str, _text(1, 300), AfterValidator(storable), AfterValidator(one_line)]
Description = Annotated[str, _text(0, 5000), AfterValidator(storable)]
Password = Annotated[str, StringConstraints(min_length=8, max_length=256), AfterValidator(storable)]


class Page(BaseModel, Generic[T]):
    """One page of a list, ordered by ``created_at`` then ``id`` (stable across pages)."""

    items: list[T]
    total: int = Field(description="How many items match, across all pages.")
    limit: int
    offset: int


class ErrorOut(BaseModel):
    detail: str


class ORMModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
