"""Markdown exports: a text whose ``[n]`` markers are followed by numbered references."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def reference(citation: Mapping[str, Any]) -> str:
    """One reference line: document title, page when known, and the quoted passage."""
    page = f", page {citation['page']}" if citation.get("page") else ""
    quote = " ".join(str(citation.get("text", "")).split())
    if len(quote) > 300:
        quote = quote[:297] + "..."
    return f"{citation['document_title']}{page}" + (f' — "{quote}"' if quote else "")


def with_references(title: str, body: str, citations: Iterable[Mapping[str, Any]]) -> str:
    """``# title``, the body, then ``## References`` numbered as the body's markers."""
    lines = [f"# {title}", "", body.strip(), ""]
    refs = list(citations)
    if refs:
        lines += ["## References", ""]
        lines += [f"{n}. {reference(c)}" for n, c in enumerate(refs, start=1)]
        lines.append("")
    return "\n".join(lines)


def download_name(title: str) -> str:
    """A safe ``.md`` file name for ``Content-Disposition``."""
    stem = _UNSAFE_FILENAME.sub("-", title).strip("-.")[:80]
    return f"{stem or 'export'}.md"
