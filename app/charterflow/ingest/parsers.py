"""Extract the visible text of each supported type, with the page each span comes from.

The result's text is normalised (``normalize``) before offsets are taken, so chunk offsets
index exactly into ``Extracted.text``. Anything a parser cannot read raises ``BadDocument``.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field

from charterflow.ingest.errors import BadDocument
from charterflow.services import filetypes

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b\ufeff]")
_SPACES = re.compile(r"[ \t\xa0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
HIDDEN_TAGS = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object")


def normalize(text: str) -> str:
    """NFKC, one kind of newline, no control characters, single spaces, at most one blank line."""
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text.replace("\f", "\n").replace("\v", "\n"))
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


@dataclass
class Extracted:
    """The document's text; ``page_starts`` are ``(offset, page)`` pairs for paged formats."""

    text: str
    page_starts: list[tuple[int, int]] = field(default_factory=list)

    def page_at(self, offset: int) -> int | None:
        if not self.page_starts:
            return None
        i = bisect_right([start for start, _ in self.page_starts], offset) - 1
        return self.page_starts[max(i, 0)][1]


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadDocument("the text is not valid UTF-8") from exc


def parse_pdf(data: bytes) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise BadDocument("the PDF is encrypted")
        pages = [normalize(page.extract_text() or "") for page in reader.pages]
    except BadDocument:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise BadDocument("the PDF is damaged or not a PDF and cannot be read") from exc
    parts: list[str] = []
    starts: list[tuple[int, int]] = []
    offset = 0
    for number, text in enumerate(pages, start=1):
        if not text:
            continue
        if parts:
            parts.append("\n\n")
            offset += 2
        starts.append((offset, number))
        parts.append(text)
        offset += len(text)
    return Extracted("".join(parts), starts)


def parse_docx(data: bytes) -> Extracted:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise BadDocument("the Word document is damaged and cannot be read") from exc
    blocks = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            blocks.append(" | ".join(cell.text.strip() for cell in row.cells))
    return Extracted(normalize("\n\n".join(blocks)))


def parse_html(data: bytes) -> Extracted:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(data), "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(HIDDEN_TAGS):
        tag.decompose()
    for tag in soup.select('[hidden], [aria-hidden="true"]'):
        tag.decompose()
    for tag in soup.find_all(style=re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden")):
        tag.decompose()
    body = soup.get_text("\n")
    return Extracted(normalize(f"{title}\n\n{body}" if title else body))


_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_PREFIX = re.compile(r"^(\s{0,3}(#{1,6}|>|[-*+]|\d+[.)])\s+)+", re.M)
_MD_MARKS = re.compile(r"(\*\*|__|~~|`{1,3})")
_MD_RULE = re.compile(r"^\s*([-*_]\s*){3,}$", re.M)
_HTML_TAG = re.compile(r"<[^>\n]+>")


def parse_markdown(data: bytes) -> Extracted:
    """Markdown as the reader sees it: link text without URLs, no heading or emphasis marks."""
    text = _decode(data)
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_RULE.sub("", text)
    text = _MD_PREFIX.sub("", text)
    text = _MD_MARKS.sub("", text)
    text = _HTML_TAG.sub("", text)
    return Extracted(normalize(text))


def parse_text(data: bytes) -> Extracted:
    return Extracted(normalize(_decode(data)))


def parse_csv(data: bytes) -> Extracted:
    """One line per row, each value labelled with its column, so a row reads as a fact."""
    text = _decode(data)
    try:
        dialect = csv.Sniffer().sniff(text[:16384], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in row)]
    if not rows:
        return Extracted("")
    header, body = rows[0], rows[1:]
    if not body:
        return Extracted(normalize(", ".join(header)))
    lines = [
        "; ".join(f"{h.strip()}: {v.strip()}" for h, v in zip(header, row, strict=False) if v)
        for row in body
    ]
    return Extracted(normalize("\n".join(lines)))


PARSERS = {
    filetypes.PDF: parse_pdf,
    filetypes.DOCX: parse_docx,
    filetypes.HTML: parse_html,
    filetypes.MARKDOWN: parse_markdown,
    filetypes.TXT: parse_text,
    filetypes.CSV: parse_csv,
}


def parse(media_type: str, data: bytes) -> Extracted:
    """The normalised text of ``data``; ``BadDocument`` when it cannot be read or is empty."""
    parser = PARSERS.get(media_type)
    if parser is None:
        raise BadDocument(f"documents of type {media_type} cannot be ingested")
    extracted = parser(data)
    if not extracted.text.strip():
        raise BadDocument("no text could be extracted (a scanned or empty document?)")
    return extracted
