"""Markdown exports: texts whose ``[n]`` markers are followed by numbered references.

What goes in may come from anyone (a source's text, a third-party page's title, a model's
answer), and an export is opened in viewers that render HTML and follow links. So every piece
is made inert here: HTML is escaped, links other than http(s) and mailto lose their target,
titles are one line (no injected headings) and body lines cannot open a heading.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
MARKER = re.compile(r"\[(\d{1,3})\]")
_SAFE_SCHEMES = ("http", "https", "mailto")
# An inline link's target, or a reference definition's, that names a scheme.
_LINK_TARGET = re.compile(r"(\]\(\s*<?|^\s{0,3}\[[^\]]*\]:\s*<?)([A-Za-z][A-Za-z0-9+.-]*):", re.M)


def _escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _neutralise_links(text: str) -> str:
    """Links to ``javascript:``, ``data:``, ``file:`` and other schemes lose the scheme."""

    def sub(match: re.Match[str]) -> str:
        scheme = match.group(2)
        if scheme.lower() in _SAFE_SCHEMES:
            return match.group(0)
        return f"{match.group(1)}#blocked-{scheme.lower()}-"

    return _LINK_TARGET.sub(sub, text)


def inline(text: str) -> str:
    """A title or quote as one inert line of Markdown."""
    return _neutralise_links(_escape_html(" ".join(str(text).split())))


def block(text: str) -> str:
    """A body as inert Markdown: HTML escaped, unsafe links neutralised, and a line that
    would open a heading (``# ...``, a fake ``## References``) escaped."""
    safe = _neutralise_links(_escape_html(str(text)))
    return re.sub(r"^(\s{0,3})#", r"\1\\#", safe, flags=re.M)


def reference(citation: Mapping[str, Any]) -> str:
    """One reference line: document title, page when known, and the quoted passage."""
    page = f", page {citation['page']}" if citation.get("page") else ""
    quote = " ".join(str(citation.get("text", "")).split())
    if len(quote) > 300:
        quote = quote[:297] + "..."
    title = inline(citation["document_title"])
    return f"{title}{page}" + (f' — "{inline(quote)}"' if quote else "")


def references_section(citations: Sequence[Mapping[str, Any]]) -> list[str]:
    """``## References`` and its numbered lines (nothing when there are no citations)."""
    if not citations:
        return []
    lines = ["## References", ""]
    lines += [f"{n}. {reference(c)}" for n, c in enumerate(citations, start=1)]
    return [*lines, ""]


def with_references(title: str, body: str, citations: Iterable[Mapping[str, Any]]) -> str:
    """``# title``, the body, then ``## References`` numbered as the body's markers."""
    lines = [f"# {inline(title)}", "", block(body.strip()), ""]
    return "\n".join([*lines, *references_section(list(citations))])


class References:
    """Citations numbered across several texts: each text's own ``[n]`` (1-based into its
    citations) becomes the number of that passage in one list, the same passage keeping one
    number; markers naming no citation are dropped."""

    def __init__(self) -> None:
        self.items: list[Mapping[str, Any]] = []
        self._numbers: dict[tuple[Any, Any, Any], int] = {}

    def number(self, citation: Mapping[str, Any]) -> int:
        key = (citation["document_id"], citation["start"], citation["end"])
        if key not in self._numbers:
            self.items.append(citation)
            self._numbers[key] = len(self.items)
        return self._numbers[key]

    def renumber(self, text: str, citations: Sequence[Mapping[str, Any]]) -> str:
        def sub(match: re.Match[str]) -> str:
            n = int(match.group(1))
            return f"[{self.number(citations[n - 1])}]" if 1 <= n <= len(citations) else ""

        return re.sub(r" +([.,;:!?])", r"\1", MARKER.sub(sub, text)).strip()


def without_markers(text: str) -> str:
    """``text`` with its ``[n]`` markers (and the spaces before them) removed."""
    return re.sub(r" *\[\d{1,3}\]", "", text)


def markers(text: str) -> set[int]:
    """The citation numbers ``text`` refers to."""
    return {int(m.group(1)) for m in MARKER.finditer(text)}


def download_name(title: str) -> str:
    """A safe ``.md`` file name for ``Content-Disposition``."""
    stem = _UNSAFE_FILENAME.sub("-", title).strip("-.")[:80]
    return f"{stem or 'export'}.md"
