"""Shared schema pieces: safe text, the pagination envelope, the error body."""

from __future__ import annotations

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


def _text(min_length: int, max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


Name = Annotated[str, _text(1, 200), AfterValidator(storable)]
Title = Annotated[str, _text(1, 300), AfterValidator(storable)]
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
