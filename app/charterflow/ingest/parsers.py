"""Extract the visible text of each supported type, with the page each span comes from.

The result's text is normalised (``normalize``) before offsets are taken, so chunk offsets
index exactly into ``Extracted.text``. Anything a parser cannot read raises ``BadDocument``.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

from charterflow.ingest.blocks import (
    Builder,
    Extracted,
    Kind,
    Piece,
    Words,
    clean_lines,
    join_lines,
    nfkc_line,
    pdf_blocks,
    squeeze,
    text_blocks,
)
from charterflow.ingest.errors import BadDocument
from charterflow.ingest.limits import UNBOUNDED, BoundedReader, Limits, OverLimit
from charterflow.services import filetypes

_SPACES = re.compile(r"[ \t\xa0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
#: Bumped whenever parsing or chunking may lay a document out differently: documents stored
#: under an older version (``documents.parser_version``; NULL before issue 24) are parsed
#: again by ``charterflow reindex`` and by workers at start (``pipeline.reparse_stale``).
PARSER_VERSION = 2
HIDDEN_TAGS = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object")


def normalize(text: str, limits: Limits = UNBOUNDED) -> str:
    """NFKC, one kind of newline, no control characters, single spaces, at most one blank line.

    Line by line, counting the characters produced, so that ``limits.max_chars`` stops a
    document (NFKC can expand a character many times) before its text is built."""
    for old in ("\r\n", "\r", "\f", "\v"):
        text = text.replace(old, "\n")
    lines: list[str] = []
    total = 0
    for raw in text.split("\n"):
        line = _SPACES.sub(" ", nfkc_line(raw, total, limits)).strip()
        total += len(line) + 1
        limits.chars(total)
        lines.append(line)
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadDocument("the text is not valid UTF-8") from exc


def _count_pages(reader: Any, limits: Limits) -> int:
    """The PDF's pages, counted by walking its page tree without recursion, before any
    text is extracted: a node that appears twice (a tree repeating one subtree to make
    thousands of pages from a few bytes) is refused, and so is a count over the bound."""
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

    root = reader.trailer["/Root"].get_object()
    stack: list[tuple[Any, int]] = [(root.raw_get("/Pages"), 0)]
    seen: set[tuple[int, int]] = set()
    pages = 0
    while stack:
        ref, depth = stack.pop()
        if isinstance(ref, IndirectObject):
            key = (ref.idnum, ref.generation)
            if key in seen:
                raise BadDocument("the PDF's page tree repeats a node; the file is malformed")
            seen.add(key)
        node = ref.get_object()
        if not isinstance(node, DictionaryObject):
            raise BadDocument("the PDF's page tree is damaged")
        kids = node.get("/Kids") if node.get("/Type") != "/Page" else None
        if kids is None:
            pages += 1
            limits.pages(pages)
            continue
        if depth > 64:
            raise BadDocument("the PDF's page tree is nested too deeply (over 64 levels)")
        kids = kids.get_object()
        if not isinstance(kids, ArrayObject):
            raise BadDocument("the PDF's page tree is damaged")
        limits.pages(pages + len(kids) // 64)  # a node listing millions of kids
        stack.extend((kid, depth + 1) for kid in reversed(kids))
    return pages


def _paged(pages: list[tuple[int, str]], limits: Limits) -> Extracted:
    """Pages (or slides, or sheets) ``(number, normalised text)`` as one text whose
    ``page_starts`` give each one's number; empty ones are left out."""
    parts: list[str] = []
    starts: list[tuple[int, int]] = []
    offset = 0
    for number, text in pages:
        if not text:
            continue
        if parts:
            parts.append("\n\n")
            offset += 2
        starts.append((offset, number))
        parts.append(text)
        offset += len(text)
        limits.chars(offset)
    return Extracted("".join(parts), starts)


def _draws_images(page: Any) -> bool:
    """Whether the PDF page paints an image (a scan is one image per page)."""
    resources = page.get("/Resources")
    xobjects = resources.get_object().get("/XObject") if resources is not None else None
    if xobjects is None:
        return False
    return any(x.get_object().get("/Subtype") == "/Image" for x in xobjects.get_object().values())


#: Told ``(pages read, pages in all)`` while a paged document is read (document progress).
OnPage = Callable[[int, int], None]


def _no_progress(_done: int, _total: int) -> None:
    return None


def parse_pdf(data: bytes, limits: Limits = UNBOUNDED, on_page: OnPage = _no_progress) -> Extracted:
    """The pages' text as blocks (``blocks.pdf_blocks``): running headers, footers and page
    numbers dropped, paragraphs joined across lines and pages, hyphenation undone."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    pages: list[list[str]] = []
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise BadDocument("the PDF is encrypted")
        total = _count_pages(reader, limits)
        chars = 0
        for number, page in enumerate(reader.pages, start=1):
            limits.pages(number)
            lines = [line for _, line in clean_lines(page.extract_text() or "", limits)]
            chars += sum(len(line) + 1 for line in lines)
            limits.chars(chars)
            pages.append(lines)
            on_page(number, total)
        builder = Builder(limits)
        for number, piece in pdf_blocks(pages):
            if number != builder.current_page:
                builder.page(number)
            builder.add(piece)
        extracted = builder.build()
        scanned = not extracted.text and pages and all(_draws_images(p) for p in reader.pages)
    except BadDocument:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise BadDocument("the PDF is damaged or not a PDF and cannot be read") from exc
    if scanned:
        raise BadDocument(
            f"the PDF has no text layer: its {len(pages)} page(s) are scanned images, and "
            "text recognition (OCR) is not supported yet"
        )
    return extracted


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_OFFICE_DOCUMENT = "/officeDocument"
_DOCX_TAGS = [f"{_W}{name}" for name in ("p", "t", "tab", "br", "cr", "tc", "tr", "pStyle")]
_DOCX_HEADING = re.compile(r"(?i)^(?:heading\s?([1-9])|title)$")


def _xml_events(reader: BoundedReader, events: tuple[str, ...], tags: list[str]) -> Any:
    from lxml import etree

    # No DTDs, entities or network; lxml's default depth and node-size limits stay on.
    return etree.iterparse(
        reader,
        events=events,
        tag=tags,
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=False,
    )


def _docx_main_part(archive: zipfile.ZipFile, limits: Limits) -> str:
    """The main document part named by the package relationships (usually word/document.xml)."""
    try:
        info = archive.getinfo("_rels/.rels")
    except KeyError:
        return "word/document.xml"
    for _, elem in _xml_events(BoundedReader(archive, info, limits), ("end",), [_REL]):
        if elem.tag == _REL and elem.get("Type", "").endswith(_OFFICE_DOCUMENT):
            return elem.get("Target", "").lstrip("/") or "word/document.xml"
    return "word/document.xml"


def _docx_blocks(reader: BoundedReader, limits: Limits) -> list[Piece]:
    """Headings (paragraph styles Title, Heading 1-9), paragraphs and table rows (cells
    joined by `` | ``) in document order, streamed: each element is dropped once read, so
    memory follows the text, not the XML; empty paragraphs leave nothing."""
    blocks: list[Piece] = []
    paragraphs: list[list[str]] = []  # open paragraphs (a text box nests one in another)
    styles: list[str] = []  # their paragraph styles
    cells: list[list[str]] = []  # open table cells: their paragraphs
    rows: list[list[str]] = []  # open table rows: their cells' text
    chars = elements = 0
    for event, elem in _xml_events(reader, ("start", "end"), _DOCX_TAGS):
        tag = elem.tag
        if event == "start":
            if tag == f"{_W}p":
                paragraphs.append([])
                styles.append("")
            elif tag == f"{_W}tc":
                cells.append([])
            elif tag == f"{_W}tr":
                rows.append([])
            continue
        if tag == f"{_W}t" and paragraphs:
            text = elem.text or ""
            chars += len(text)
            limits.chars(chars)
            paragraphs[-1].append(text)
        elif tag == f"{_W}pStyle" and styles:
            styles[-1] = elem.get(f"{_W}val", "")
        elif tag == f"{_W}tab" and paragraphs:
            paragraphs[-1].append("\t")
        elif tag in (f"{_W}br", f"{_W}cr") and paragraphs:
            paragraphs[-1].append("\n")
        elif tag == f"{_W}p" and paragraphs:
            elements += 1
            limits.elements(elements)
            text = "".join(paragraphs.pop())
            style = _DOCX_HEADING.match(styles.pop())
            if cells:
                cells[-1].append(text)
            elif text.strip():
                level = int(style.group(1) or 0) if style else 0
                blocks.append(Piece(Kind.heading if style else Kind.paragraph, text, level))
        elif tag == f"{_W}tc" and cells:
            elements += 1
            limits.elements(elements)
            text = "\n".join(cells.pop()).strip()
            if rows:
                rows[-1].append(text)
        elif tag == f"{_W}tr" and rows:
            line = " | ".join(rows.pop())
            if cells:
                cells[-1].append(line)
            elif line.strip(" |"):
                blocks.append(Piece(Kind.row, line))
        _drop(elem)
    return blocks


@contextmanager
def _package(data: bytes, kind: str) -> Iterator[zipfile.ZipFile]:
    """The zip package of an office document or book; its damage, in any of the ways zip and
    XML can be damaged, is a ``BadDocument`` naming ``kind``."""
    from lxml import etree

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            yield archive
    except OverLimit:
        raise
    except etree.XMLSyntaxError as exc:
        raise BadDocument(
            f"the {kind}'s XML is damaged or nested too deeply and cannot be read"
        ) from exc
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, ValueError, OSError) as exc:
        raise BadDocument(f"the {kind} is damaged and cannot be read") from exc
    except (EOFError, NotImplementedError) as exc:  # truncated data; unknown compression
        raise BadDocument(f"the {kind} is damaged and cannot be read") from exc


def _part(archive: zipfile.ZipFile, name: str, limits: Limits) -> BoundedReader:
    """One part of the package, read as a bounded stream (``KeyError`` when missing)."""
    return BoundedReader(archive, archive.getinfo(name), limits)


def _drop(elem: Any) -> None:
    """Free an element once read, and the siblings read before it (streamed XML)."""
    elem.clear()
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]


def parse_docx(data: bytes, limits: Limits = UNBOUNDED) -> Extracted:
    """The main document's paragraphs and tables, read from the zip as a stream: the
    decompressed size and ratio are checked as the bytes come out (zip bombs)."""
    with _package(data, "Word document") as archive:
        name = _docx_main_part(archive, limits)
        pieces = _docx_blocks(_part(archive, name, limits), limits)
    builder = Builder(limits)
    for piece in pieces:
        text = " ".join(line for _, line in clean_lines(piece.text, limits) if line)
        builder.add(Piece(piece.kind, text, piece.level))
    return builder.build()


_R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def _relationships(archive: zipfile.ZipFile, part: str, limits: Limits) -> dict[str, str]:
    """``rId`` → the package path of each internal target of ``part``'s relationships."""
    folder, name = posixpath.split(part)
    rels = posixpath.join(folder, "_rels", f"{name}.rels")
    targets: dict[str, str] = {}
    for _, elem in _xml_events(_part(archive, rels, limits), ("end",), [_REL]):
        target = elem.get("Target", "")
        if elem.get("TargetMode") != "External" and target:
            path = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
            targets[elem.get("Id", "")] = posixpath.normpath(path)
        _drop(elem)
    return targets


def _ordered_parts(
    archive: zipfile.ZipFile, main: str, tag: str, limits: Limits
) -> list[tuple[str, str]]:
    """``(name attribute, part path)`` of the ``tag`` elements of ``main`` (slides of a
    presentation, sheets of a workbook) in their document order; pages are counted."""
    rels = _relationships(archive, main, limits)
    found: list[tuple[str, str]] = []
    for _, elem in _xml_events(_part(archive, main, limits), ("end",), [tag]):
        target = rels.get(elem.get(f"{_R}id", ""))
        if target is not None:
            found.append((elem.get("name", ""), target))
            limits.pages(len(found))
        _drop(elem)
    return found


def _drawing_text(reader: BoundedReader, limits: Limits) -> str:
    """The paragraphs of a slide's text (DrawingML ``a:p`` / ``a:t``), streamed."""
    paragraphs: list[str] = []
    current: list[str] = []
    chars = 0
    for event, elem in _xml_events(reader, ("start", "end"), [f"{_A}p", f"{_A}t", f"{_A}br"]):
        if event == "start":
            if elem.tag == f"{_A}p":
                current = []
            continue
        if elem.tag == f"{_A}t":
            text = elem.text or ""
            chars += len(text)
            limits.chars(chars)
            current.append(text)
        elif elem.tag == f"{_A}br":
            current.append("\n")
        else:
            paragraphs.append("".join(current))
            limits.elements(len(paragraphs))
            _drop(elem)
    return "\n".join(paragraphs)


def parse_pptx(data: bytes, limits: Limits = UNBOUNDED) -> Extracted:
    """Each slide's text, in the presentation's order; the slide number is the page."""
    with _package(data, "PowerPoint presentation") as archive:
        slides = _ordered_parts(archive, "ppt/presentation.xml", f"{_P}sldId", limits)
        pages = [
            (number, normalize(_drawing_text(_part(archive, part, limits), limits), limits))
            for number, (_name, part) in enumerate(slides, start=1)
        ]
    return _paged(pages, limits)


def _column(ref: str) -> int:
    """The 0-based column of a cell reference such as ``C7``."""
    n = 0
    for ch in ref:
        if not ch.isalpha():
            break
        n = n * 26 + ord(ch.upper()) - 64
    return max(n - 1, 0)


def _shared_strings(archive: zipfile.ZipFile, limits: Limits) -> list[str]:
    if "xl/sharedStrings.xml" not in archive.namelist():
        return []
    strings: list[str] = []
    chars = 0
    for _, elem in _xml_events(
        _part(archive, "xl/sharedStrings.xml", limits), ("end",), [f"{_S}si"]
    ):
        text = "".join(t.text or "" for t in elem.iter(f"{_S}t") if t.getparent().tag != f"{_S}rPh")
        chars += len(text)
        limits.chars(chars)
        strings.append(text)
        limits.elements(len(strings))
        _drop(elem)
    return strings


def _sheet_rows(reader: BoundedReader, shared: list[str], limits: Limits) -> list[list[str]]:
    """The sheet's rows as text values, each in its own column (gaps are empty)."""
    rows: list[list[str]] = []
    cells = chars = 0
    for _, elem in _xml_events(reader, ("end",), [f"{_S}row"]):
        row: list[str] = []
        for cell in elem.iter(f"{_S}c"):
            kind, value = cell.get("t"), cell.find(f"{_S}v")
            raw = value.text or "" if value is not None else ""
            if kind == "s":
                text = shared[int(raw)] if raw.isdigit() and int(raw) < len(shared) else ""
            elif kind == "inlineStr":
                text = "".join(t.text or "" for t in cell.iter(f"{_S}t"))
            elif kind == "b":
                text = "TRUE" if raw == "1" else "FALSE"
            else:
                text = raw
            column = _column(cell.get("r", "")) if cell.get("r") else len(row)
            # A cell far to the right pads its row: the padding counts as cells too.
            cells += max(column - len(row), 0) + 1
            limits.elements(cells)
            row.extend([""] * (column - len(row)))
            row.append(text.strip())
            chars += len(text)
        limits.chars(chars)
        if any(row):
            rows.append(row)
        _drop(elem)
    return rows


def parse_xlsx(data: bytes, limits: Limits = UNBOUNDED) -> Extracted:
    """Each sheet as labelled rows (as CSV is read), headed by its name; the sheet number is
    the page."""
    with _package(data, "Excel workbook") as archive:
        sheets = _ordered_parts(archive, "xl/workbook.xml", f"{_S}sheet", limits)
        shared = _shared_strings(archive, limits)
        pages = []
        for number, (name, part) in enumerate(sheets, start=1):
            rows = _sheet_rows(_part(archive, part, limits), shared, limits)
            body = _labelled_rows(rows, limits) if rows else ""
            pages.append((number, normalize(f"{name}\n{body}", limits) if body else ""))
    return _paged(pages, limits)


_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}rootfile"
_OPF = "{http://www.idpf.org/2007/opf}"
_XHTML = {"application/xhtml+xml", "text/html"}


def _read_all(reader: BoundedReader) -> bytes:
    blocks = []
    while block := reader.read(64 * 1024):
        blocks.append(block)
    return b"".join(blocks)


def parse_epub(data: bytes, limits: Limits = UNBOUNDED) -> Extracted:
    """The visible text of the book's reading order (its spine), chapter after chapter."""
    with _package(data, "EPUB book") as archive:
        container = _xml_events(
            _part(archive, "META-INF/container.xml", limits), ("end",), [_CONTAINER]
        )
        opf = next((e.get("full-path", "") for _, e in container), "")
        if not opf:
            raise BadDocument("the EPUB book names no package document")
        folder = posixpath.dirname(opf)
        manifest: dict[str, tuple[str, str]] = {}
        spine: list[str] = []
        tags = [f"{_OPF}item", f"{_OPF}itemref"]
        for _, elem in _xml_events(_part(archive, opf, limits), ("end",), tags):
            if elem.tag == f"{_OPF}item":
                manifest[elem.get("id", "")] = (elem.get("href", ""), elem.get("media-type", ""))
            else:
                spine.append(elem.get("idref", ""))
            limits.elements(len(manifest) + len(spine))
            _drop(elem)
        builder = Builder(limits)
        for idref in spine:
            href, media_type = manifest.get(idref, ("", ""))
            if not href or media_type not in _XHTML:
                continue
            name = posixpath.normpath(posixpath.join(folder, unquote(href)))
            chapter = parse_html(_read_all(_part(archive, name, limits)), limits)
            builder.extend(Piece(b.kind, b.text, b.level) for b in chapter.blocks)
    return builder.build()


def _decode_bounded(data: bytes, limits: Limits, factor: int = 1) -> str:
    """The text of ``data``, refused early when even its raw form is over ``factor`` times
    the character bound."""
    text = _decode(data)
    limits.chars(len(text) // factor)
    return text


#: Elements that make a block of their own; the rest (links, emphasis, spans) run inline.
_HTML_BLOCKS = frozenset(
    [
        "p",
        "div",
        "section",
        "article",
        "main",
        "header",
        "footer",
        "aside",
        "blockquote",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "figure",
        "figcaption",
        "caption",
        "form",
        "fieldset",
        "address",
        "hr",
        "br",
        "details",
        "summary",
        "center",
        "body",
    ]
)
_MARK = re.compile("\x02([^\x03]*)\x03")


def _mark(tag: Any, name: str) -> None:
    tag.insert(0, f"\x02{name}\x03")
    tag.append("\x02/\x03")


def _html_pieces(text: str, limits: Limits) -> Iterator[Piece]:
    """Pieces from the marked text of a page: each marker opens or closes a block kind."""
    stack = ["b"]
    buffer: list[str] = []

    def flush() -> Iterator[Piece]:
        raw = "".join(buffer)
        buffer.clear()
        kind = stack[-1]
        if kind == "pre":  # its headings sit below the page's own (h1-h6)
            for piece in text_blocks(clean_lines(raw, limits), None):
                level = piece.level + 6 if piece.kind is Kind.heading else 0
                yield Piece(piece.kind, piece.text, level)
            return
        body = squeeze(" ".join(line for _, line in clean_lines(raw, limits)))
        if kind == "tr":
            body = body.strip(" |")
        if not body:
            return
        if kind.startswith("h") and kind[1:].isdigit():
            yield Piece(Kind.heading, body, int(kind[1:]))
        else:
            yield Piece({"li": Kind.item, "tr": Kind.row}.get(kind, Kind.paragraph), body)

    for i, part in enumerate(_MARK.split(text)):
        if i % 2 == 0:
            buffer.append(part)
        elif part == "|":
            buffer.append(" | ")
        else:
            yield from flush()
            if part == "/":
                if len(stack) > 1:
                    stack.pop()
            elif part == "b" and stack[-1] != "b":
                stack.append(stack[-1])  # a paragraph inside a list item is the item
            else:
                stack.append(part)
    yield from flush()


def parse_html(data: bytes, limits: Limits = UNBOUNDED) -> Extracted:
    """The visible text as blocks: headings (``h1``-``h6``), paragraphs, list items, table
    rows (cells joined by `` | ``); a ``<pre>`` is read as plain text (``text_blocks``)."""
    from bs4 import BeautifulSoup

    markup = _decode_bounded(data, limits, factor=4).replace("\x02", "").replace("\x03", "")
    limits.elements(markup.count("<"))  # bounds the tree before it is built
    soup = BeautifulSoup(markup, "html.parser")
    del markup
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(HIDDEN_TAGS):
        tag.decompose()
    for tag in soup.select('[hidden], [aria-hidden="true"], a.headerlink, nav, [role=navigation]'):
        tag.decompose()
    for tag in soup.find_all(style=re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden")):
        tag.decompose()
    for tag in soup.find_all(True):
        name = tag.name
        if name == "pre":
            text = tag.get_text()
            tag.clear()
            tag.append(f"\x02pre\x03{text}\x02/\x03")
        elif name in ("h1", "h2", "h3", "h4", "h5", "h6", "li", "tr"):
            _mark(tag, name)
        elif name in ("td", "th"):
            tag.append("\x02|\x03")
        elif name in _HTML_BLOCKS:
            _mark(tag, "b")
    builder = Builder(limits)
    pieces = list(_html_pieces(soup.get_text(""), limits))
    if title and not (pieces and squeeze(title) == pieces[0].text):
        builder.add(Piece(Kind.paragraph, title))
    builder.extend(pieces)
    return builder.build()


_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_MD_MARKS = re.compile(r"(\*\*|__|~~|`{1,3})")
_MD_RULE = re.compile(r"^([-*_]\s*){3,}$")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*$")
_MD_SETEXT = re.compile(r"^(=+|-+)$")
_MD_FENCE = re.compile(r"^(`{3,}|~{3,})")
_MD_ITEM = re.compile(r"^(?:[-*+]|\d{1,9}[.)])\s+")
_MD_TABLE_RULE = re.compile(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?$")
_HTML_TAG = re.compile(r"<[^>\n]+>")


_MD_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def _md_inline(line: str) -> str:
    """A line as the reader sees it: link text without URLs, no emphasis marks or tags; code
    spans (`` `<stdlib.h>` ``) keep their text as written, angle brackets and all."""
    parts: list[str] = []
    at = 0
    for code in _MD_CODE_SPAN.finditer(line):
        parts += [_md_prose(line[at : code.start()]), code.group(2)]
        at = code.end()
    return "".join([*parts, _md_prose(line[at:])])


def _md_prose(line: str) -> str:
    line = _MD_IMAGE.sub(r"\1", line)
    line = _MD_LINK.sub(r"\1", line)
    line = _MD_AUTOLINK.sub(r"\1", line)
    line = _MD_MARKS.sub("", line)
    return _HTML_TAG.sub("", line)


def _dedent(lines: list[str]) -> str:
    base = min((len(line) - len(line.lstrip(" ")) for line in lines if line.strip()), default=0)
    return "\n".join(line[base:] for line in lines)


def markdown_blocks(lines: list[tuple[int, str]], words: Words) -> list[Piece]:
    """Headings (ATX and setext), paragraphs, list items, fenced code and tables."""
    pieces: list[Piece] = []
    para: list[str] = []
    kind = Kind.paragraph
    code: list[str] | None = None
    fence = ""
    table: list[str] = []

    def flush() -> None:
        nonlocal kind
        if para:
            pieces.append(Piece(kind, join_lines(para, words)))
            para.clear()
        if table:
            pieces.append(Piece(Kind.pre, "\n".join(table)))
            table.clear()
        kind = Kind.paragraph

    for indent, line in lines:
        if code is not None:
            if line.startswith(fence):
                pieces.append(Piece(Kind.pre, _dedent(code)))
                code = None
            else:
                code.append(" " * indent + line)
            continue
        if fenced := _MD_FENCE.match(line):
            flush()
            code, fence = [], fenced.group(1)
            continue
        while line.startswith(">"):
            line = line[1:].lstrip()
        if not line:
            flush()
            continue
        if heading := _MD_HEADING.match(line):
            flush()
            pieces.append(Piece(Kind.heading, _md_inline(heading.group(2)), len(heading.group(1))))
        elif _MD_SETEXT.match(line) and len(para) == 1 and kind is Kind.paragraph:
            text = para.pop()
            pieces.append(Piece(Kind.heading, squeeze(text), 1 if line[0] == "=" else 2))
        elif _MD_RULE.match(line):
            flush()
        elif line.startswith("|"):
            if para:
                flush()
            if not _MD_TABLE_RULE.match(line):
                table.append(squeeze(_md_inline(line).strip("| ")))
        elif _MD_ITEM.match(line):
            flush()
            kind = Kind.item
            para.append(_md_inline(_MD_ITEM.sub("", line, count=1)))
        else:
            if table:
                flush()
            para.append(_md_inline(line))
    if code:
        pieces.append(Piece(Kind.pre, _dedent(code)))
    flush()
    return pieces


def parse_markdown(data: bytes, limits: Limits = UNBOUNDED) -> Extracted:
    """Markdown as the reader sees it, as blocks: link text without URLs, no heading or
    emphasis marks; headings make the heading path; fenced code keeps its lines."""
    lines = clean_lines(_decode_bounded(data, limits, factor=2), limits)
    builder = Builder(limits)
    builder.extend(markdown_blocks(lines, Words((line for _, line in lines))))
    return builder.build()


def parse_text(data: bytes, limits: Limits = UNBOUNDED) -> Extracted:
    """Plain text as blocks (``blocks.text_blocks``): hard-wrapped lines joined."""
    lines = clean_lines(_decode_bounded(data, limits), limits)
    builder = Builder(limits)
    builder.extend(text_blocks(lines, Words((line for _, line in lines))))
    return builder.build()


def _labelled_rows(rows: list[list[str]], limits: Limits) -> str:
    """One line per row after the first, each value labelled with its column's header, so
    that a row reads as a fact; a lone row is just its values."""
    header, body = rows[0], rows[1:]
    if not body:
        return ", ".join(header)
    lines: list[str] = []
    total = 0
    for row in body:  # labelling repeats the header on every row: count as it grows
        line = "; ".join(
            f"{h.strip()}: {v.strip()}" for h, v in zip(header, row, strict=False) if v
        )
        total += len(line) + 1
        limits.chars(total)
        lines.append(line)
    return "\n".join(lines)


def parse_csv(data: bytes, limits: Limits = UNBOUNDED) -> Extracted:
    """One line per row, each value labelled with its column, so a row reads as a fact."""
    text = _decode_bounded(data, limits)
    try:
        dialect = csv.Sniffer().sniff(text[:16384], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in row)]
    if not rows:
        return Extracted("")
    return Extracted(normalize(_labelled_rows(rows, limits), limits))


PARSERS: dict[str, Callable[[bytes, Limits], Extracted]] = {
    filetypes.PDF: parse_pdf,
    filetypes.DOCX: parse_docx,
    filetypes.HTML: parse_html,
    filetypes.MARKDOWN: parse_markdown,
    filetypes.TXT: parse_text,
    filetypes.CSV: parse_csv,
    filetypes.PPTX: parse_pptx,
    filetypes.XLSX: parse_xlsx,
    filetypes.EPUB: parse_epub,
}


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


_KINDS = {
    filetypes.PDF: "PDF",
    filetypes.DOCX: "Word document",
    filetypes.HTML: "HTML page",
    filetypes.MARKDOWN: "Markdown file",
    filetypes.TXT: "text file",
    filetypes.CSV: "CSV file",
    filetypes.PPTX: "PowerPoint presentation",
    filetypes.XLSX: "Excel workbook",
    filetypes.EPUB: "EPUB book",
}


def parse(
    media_type: str, data: bytes, limits: Limits = UNBOUNDED, on_page: OnPage = _no_progress
) -> Extracted:
    """The normalised text of ``data``; ``BadDocument`` when it cannot be read, is empty or
    is over one of ``limits``. Structure too deep for the parser is the file's fault, not a
    passing failure: it is a ``BadDocument`` too, never retried."""
    parser = PARSERS.get(media_type)
    if parser is None:
        raise BadDocument(f"documents of type {media_type} cannot be ingested")
    kind = _KINDS.get(media_type, "document")
    too_deep = f"the {kind} nests its structure too deeply to be read (a damaged or hostile file)"
    try:
        if parser is parse_pdf:
            extracted = parse_pdf(data, limits, on_page)
        else:
            extracted = parser(data, limits)
    except RecursionError as exc:
        raise BadDocument(too_deep) from exc
    except BadDocument as exc:  # a library may wrap the RecursionError in its own error
        if _caused_by(exc, RecursionError):
            raise BadDocument(too_deep) from exc
        raise
    except MemoryError as exc:
        raise BadDocument(f"the {kind} needs more memory to read than is allowed") from exc
    if not extracted.text.strip():
        raise BadDocument("no text could be extracted (a scanned or empty document?)")
    return extracted
