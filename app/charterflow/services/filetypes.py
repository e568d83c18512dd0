"""Decide what an upload is from its bytes, never from the client's header or file name.

PDF by its ``%PDF-`` signature; DOCX, PPTX and XLSX as a ZIP holding their main part, EPUB as
one whose ``mimetype`` says so; everything else
must decode as UTF-8 text without control characters, and is then sniffed as HTML, CSV,
Markdown or plain text (the file name only chooses between text kinds the content allows).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import zipfile
from pathlib import PurePosixPath
from typing import BinaryIO

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TXT = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"
CSV = "text/csv"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EPUB = "application/epub+zip"
ALLOWED = (PDF, DOCX, TXT, MARKDOWN, HTML, CSV, PPTX, XLSX, EPUB)
#: A ZIP package is the type whose main part it holds.
_PACKAGES = {"word/document.xml": DOCX, "ppt/presentation.xml": PPTX, "xl/workbook.xml": XLSX}

SAMPLE_CHARS = 16_384
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_HTML = re.compile(r"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)[\s>]", re.S | re.I)
_MARKDOWN = re.compile(
    r"^(#{1,6}\s|```|>\s|[-*+]\s|\d+\.\s|\|.*\|\s*$)|\[[^\]]+\]\([^)]+\)|\*\*[^*]+\*\*", re.M
)
_UNSAFE_NAME = re.compile(r"[^\w .()+,=@-]")


class UnsupportedType(ValueError):
    """Not one of the accepted document types (the API answers 415)."""


class TextSniffer:
    """Fed the upload block by block: tells whether it is UTF-8 text and keeps a sample."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.is_text = True
        self.sample = ""

    def feed(self, block: bytes, final: bool = False) -> None:
        if not self.is_text:
            return
        try:
            decoded = self._decoder.decode(block, final=final)
        except UnicodeDecodeError:
            self.is_text = False
            return
        if _CONTROL.search(decoded):
            self.is_text = False
            return
        if len(self.sample) < SAMPLE_CHARS:
            self.sample += decoded[: SAMPLE_CHARS - len(self.sample)]


def detect(head: bytes, stream: BinaryIO, text: TextSniffer, filename: str) -> str:
    """The media type of the upload, or ``UnsupportedType``; ``stream`` is left at 0."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(stream) as archive:
                kind = _package_kind(archive)
        except (zipfile.BadZipFile, OSError, EOFError):
            kind = None
        finally:
            stream.seek(0)
        if kind is None:
            raise UnsupportedType(
                "a ZIP archive that is not a Word, PowerPoint, Excel or EPUB document"
            )
        return kind
    if not head or not text.is_text:
        raise UnsupportedType("empty" if not head else "binary content of an unsupported type")
    return _text_kind(text.sample.lstrip("\ufeff"), PurePosixPath(filename).suffix.lower())


def _package_kind(archive: zipfile.ZipFile) -> str | None:
    names = set(archive.namelist())
    for part, kind in _PACKAGES.items():
        if part in names:
            return kind
    if "mimetype" in names and "META-INF/container.xml" in names:
        info = archive.getinfo("mimetype")
        if info.file_size < 64 and archive.read(info).strip() == EPUB.encode():
            return EPUB
    return None


def _text_kind(sample: str, suffix: str) -> str:
    if _HTML.match(sample[:4096]):
        return HTML
    if suffix in {".md", ".markdown"}:
        return MARKDOWN
    if suffix == ".txt":
        return TXT
    if _looks_like_csv(sample):
        return CSV
    if suffix != ".csv" and _MARKDOWN.search(sample):
        return MARKDOWN
    return TXT


def _looks_like_csv(sample: str) -> bool:
    """At least two rows, all with the same number (2 or more) of fields."""
    lines = [line for line in sample.splitlines()[:50] if line.strip()]
    if len(sample) >= SAMPLE_CHARS:
        lines = lines[:-1]  # the sample may end mid-row
    if len(lines) < 2:
        return False
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines[:20]), delimiters=",;\t")
        widths = {len(row) for row in csv.reader(io.StringIO("\n".join(lines)), dialect)}
    except csv.Error:
        return False
    return len(widths) == 1 and widths.pop() >= 2


def sanitize_filename(name: str | None, fallback: str = "upload") -> str:
    """A display-safe base name: no directories, control or odd characters, at most 200 chars."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFKC", base)
    base = "".join(c for c in base if not unicodedata.category(c).startswith("C"))
    base = _UNSAFE_NAME.sub("_", base).strip(" .")
    base = re.sub(r"\s+", " ", base)
    if len(base) > 200:
        path = PurePosixPath(base)
        suffix = path.suffix[:20]
        base = path.stem[: 200 - len(suffix)] + suffix
    return base or fallback
