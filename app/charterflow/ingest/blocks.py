"""Documents as structure: blocks (headings, paragraphs, list items, rows, preformatted text).

Parsers turn what they read into ``Block``s through one ``Builder``, which lays them out as
``Extracted.text``: one block after another, separated by a blank line, each paragraph on one
line (hard-wrapped lines joined by a space, words hyphenated across line ends rejoined);
only preformatted text and tables keep their newlines. So a citation's paragraph is found by
splitting the text on blank lines, and sentences never cross a block (``retrieval.text``).

``text_blocks`` reads plain text (a text file, a PDF page, an HTML ``<pre>``): paragraphs
are groups of lines between blank lines; numbered, underlined or capitalised lines are
headings; ``Q:`` lines and short lines ending in ``?`` are FAQ questions; bulleted lines are
list items; column-aligned lines are preformatted.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from charterflow.ingest.limits import UNBOUNDED, Limits

#: Joins a heading path for display and storage (``chunks.heading``).
HEADING_SEPARATOR = " \u203a "

#: Below every heading: a question is the innermost part of its answer's heading path.
QUESTION_LEVEL = 99
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b\ufeff]")
_SPACES = re.compile(r"[ \t\xa0]+")
_ASCII = re.compile(r"[\x00-\x7f]")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_HYPHENATED = re.compile(r"([^\W\d_]+)-$")
_LEADING_WORD = re.compile(r"^([^\W\d_]+)")
_RULE = re.compile(r"^\s*([=\-~_*#+]\s*){3,}$|^\s*(=-)+=?\s*$")
#: "3.1 Weights", "3.1. Weights", "8.1.1. dpkg", "Chapter 2. The Filesystem", "2 Scope",
#: "A. Licences": a section number, or a bare number or letter before a word that starts as
#: a title does ("10 volunteers joined" is no heading).
_NUMBERED = re.compile(
    r"^(?:(?i:chapter|section|appendix|part)\s+)?"
    r"(?:([0-9]+(?:\.[0-9]+)+\.?|[0-9]+\.)\s+\S|([0-9]+|[A-Z]\.)\s+[A-Z/(\"'\u201c`])"
)
_BULLET = re.compile(r"^(?:[*\-•◦▪‣+o·]|\(?[0-9]{1,3}[.)]|\(?[a-z][.)])\s+(?=\S)")
_QUESTION = re.compile(r"^(?:q(?:uestion)?\s*[0-9.]*\s*[:.)]\s*)", re.I)
_SECTION = re.compile(r"^[0-9]+(?:\.[0-9]+)*\.?\s+\S")
_COLUMNS = re.compile(r"\S {4,}\S|\t")
_TERMINAL = ".,;:!"


class Kind(StrEnum):
    heading = "heading"
    paragraph = "paragraph"
    item = "item"
    row = "row"
    pre = "pre"
    question = "question"


@dataclass(frozen=True)
class Block:
    """One unit of the document; ``start``/``end`` index into ``Extracted.text``;
    ``heading`` is the path of the headings it sits under (a heading includes itself)."""

    kind: Kind
    text: str
    start: int
    end: int
    page: int | None
    heading: tuple[str, ...] = ()
    level: int = 0  #: a heading's level (1 outermost; 0 for a title or for other blocks)

    @property
    def heading_path(self) -> str | None:
        return HEADING_SEPARATOR.join(self.heading) if self.heading else None


@dataclass
class Extracted:
    """The document's text and its blocks; ``page_starts`` are ``(offset, page)`` pairs for
    paged formats."""

    text: str
    page_starts: list[tuple[int, int]] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.blocks and self.text:
            self.blocks = [
                Block(b.kind, b.text, b.start, b.end, self.page_at(b.start))
                for b in _plain_blocks(self.text)
            ]

    def page_at(self, offset: int) -> int | None:
        if not self.page_starts:
            return None
        i = bisect_right([start for start, _ in self.page_starts], offset) - 1
        return self.page_starts[max(i, 0)][1]


def _plain_blocks(text: str) -> list[Block]:
    """Blocks of a text laid out already (paragraphs between blank lines)."""
    blocks = []
    for match in re.finditer(r"[^\n](?:.|\n(?!\n))*", text):
        body = match.group().rstrip()
        kind = Kind.pre if "\n" in body else Kind.paragraph
        blocks.append(Block(kind, body, match.start(), match.start() + len(body), None))
    return blocks


def nfkc_pieces(line: str, size: int = 65536) -> Iterator[str]:
    """NFKC of ``line`` in pieces of about ``size`` characters, cut before an ASCII
    character (nothing composes across it), so a huge single line is never copied whole."""
    start = 0
    while start < len(line):
        end = start + size
        if end < len(line):
            ascii_at = _ASCII.search(line, end, end + size)
            end = ascii_at.start() if ascii_at else end + size
        yield unicodedata.normalize("NFKC", line[start:end])
        start = end


def nfkc_line(raw: str, total: int, limits: Limits) -> str:
    """One raw line as NFKC without control characters, counted against ``limits.max_chars``
    (``total``: the characters produced before it) piece by piece as NFKC grows it."""
    limits.chars(total + len(raw))
    pieces: list[str] = []
    grown = total
    for piece in nfkc_pieces(raw):
        grown += len(piece)
        limits.chars(grown)
        pieces.append(piece)
    return _CONTROL.sub("", "".join(pieces).replace("\n", " "))


def clean_lines(text: str, limits: Limits = UNBOUNDED) -> list[tuple[int, str]]:
    """``(indent, line)`` for each line: NFKC, no control characters, tabs expanded, inner
    spaces kept (columns), trailing space dropped. Counted as they are produced, so that
    ``limits.max_chars`` stops a document (NFKC can expand a character many times) early."""
    for old in ("\r\n", "\r", "\f", "\v"):
        text = text.replace(old, "\n")
    lines: list[tuple[int, str]] = []
    total = 0
    for raw in text.split("\n"):
        line = nfkc_line(raw, total, limits).expandtabs(8)
        line = line.replace("\xa0", " ").rstrip()
        stripped = line.lstrip(" ")
        total += len(stripped) + 1
        limits.chars(total)
        lines.append((len(line) - len(stripped), stripped))
    return lines


def squeeze(text: str) -> str:
    """Single spaces, trimmed: how a paragraph's words are laid out."""
    return _SPACES.sub(" ", text).strip()


class Words:
    """The words a document uses, to decide whether a hyphen at a line end belongs to the
    word or only breaks it: it is dropped when the document writes the joined word
    elsewhere ("hyphen-/ation" when "hyphenation" occurs), else kept ("non-/free"), since
    most hard-wrapped text and many PDFs break lines only at a hyphen that is there."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.plain: set[str] = set()
        self.hyphenated: set[str] = set()
        for line in lines:
            for word in _WORD.findall(line.lower()):
                (self.hyphenated if "-" in word else self.plain).add(word)

    def join(self, head: str, tail: str) -> str:
        """``head`` (ending in a hyphen) and ``tail`` as one word."""
        first = _HYPHENATED.search(head)
        second = _LEADING_WORD.match(tail)
        if not first or not second:
            return head + tail
        a, b = first.group(1).lower(), second.group(1).lower()
        if f"{a}-{b}" in self.hyphenated:
            return head + tail
        if a + b in self.plain:
            return head[:-1] + tail
        return head + tail


def join_lines(lines: list[str], words: Words | None) -> str:
    """Hard-wrapped lines as one paragraph: a space between lines, none after a hyphen
    that breaks a word, nor inside a URL cut at a slash. Built from parts, so a hostile
    paragraph of a million lines costs linear time."""
    parts: list[str] = []
    for line in lines:
        line = squeeze(line)
        if not line:
            continue
        last = parts[-1] if parts else ""
        if not parts:
            parts.append(line)
        elif last.endswith("-") and len(last) > 1 and last[-2].isalpha() and line[:1].isalpha():
            head, _, word = last.rpartition(" ")
            joined = words.join(word, line) if words else word + line
            parts[-1] = f"{head} {joined}" if head else joined
        elif last.endswith("/") or line.startswith("//"):
            parts[-1] = last + line
        else:
            parts.append(line)
    return " ".join(parts)


def _heading_level(lines: list[tuple[int, str]], next_line: str | None) -> int | None:
    """The heading level of a group of lines, or None when it is not a heading."""
    text = " ".join(line for _, line in lines)
    if len(text) > 160 or len(lines) > 3:
        return None
    last = lines[-1][1]
    numbered = _NUMBERED.match(text)
    if numbered and last[-1:] not in _TERMINAL[:3] and not _BULLET.match(text):
        number = (numbered.group(1) or numbered.group(2)).rstrip(".")
        if re.match(r"(?i)chapter|part|appendix", text):
            return 1
        if number.isdigit() and int(number) > 200:  # a year, a quantity
            return None
        return number.count(".") + 2 if "." in number else 2
    if len(lines) == 1 and len(text) <= 80 and text[-1:] not in _TERMINAL:
        letters = [c for c in text if c.isalpha()]
        if len(letters) >= 3 and all(c.isupper() for c in letters):
            return 1
    return None


def _is_question(lines: list[tuple[int, str]]) -> bool:
    text = " ".join(line for _, line in lines)
    if _QUESTION.match(text) and len(text) > 4:
        return True
    return len(lines) <= 3 and len(text) <= 300 and text.endswith("?")


def _is_pre(lines: list[tuple[int, str]]) -> bool:
    """Column-aligned lines, or a table of contents (lines of numbered sections)."""
    columns = sum(1 for _, line in lines if _COLUMNS.search(line))
    sections = sum(1 for _, line in lines if _SECTION.match(line))
    return (len(lines) >= 2 and max(columns, sections) * 2 >= len(lines)) or _ragged(lines)


def _ragged(lines: list[tuple[int, str]]) -> bool:
    """Lines that do not run to a common width, as code, a file's fields or an address do
    (hard-wrapped prose fills most of its lines): at least three, no bullets, and fewer than
    half of them (the last aside) within 75% of the longest."""
    if len(lines) < 3 or any(_BULLET.match(line) for _, line in lines):
        return False
    widths = [indent + len(line) for indent, line in lines]
    full = sum(1 for w in widths[:-1] if w >= max(widths) * 0.75)
    return full * 2 < len(lines) - 1


def _pre_text(lines: list[tuple[int, str]]) -> str:
    base = min(indent for indent, _ in lines)
    return "\n".join(" " * (indent - base) + line for indent, line in lines).strip("\n")


def _groups(lines: list[tuple[int, str]]) -> Iterator[list[tuple[int, str]]]:
    group: list[tuple[int, str]] = []
    for indent, line in lines:
        if line:
            group.append((indent, line))
        elif group:
            yield group
            group = []
    if group:
        yield group


@dataclass(frozen=True)
class Piece:
    """A block before it has a place in the text: what ``text_blocks`` yields."""

    kind: Kind
    text: str
    level: int = 0


def _items(group: list[tuple[int, str]], words: Words | None) -> list[Piece]:
    """A group whose lines start list items: an item per bullet, with its continuation
    lines; lines before the first bullet are a paragraph."""
    pieces: list[Piece] = []
    current: list[str] = []
    kind = Kind.paragraph
    item_indent = -1
    for indent, line in group:
        if _BULLET.match(line) and (item_indent < 0 or indent <= item_indent + 1):
            if current:
                pieces.append(Piece(kind, join_lines(current, words)))
            current, kind, item_indent = [line], Kind.item, indent
        else:
            current.append(line)
    if current:
        pieces.append(Piece(kind, join_lines(current, words)))
    return pieces


def _split_indented(group: list[tuple[int, str]]) -> Iterator[list[tuple[int, str]]]:
    """A paragraph with lines set deeper after a line ending in a colon (a command, an
    example) as three groups: before, the deeper lines, after."""
    if len(group) < 3 or any(_BULLET.match(line) for _, line in group):
        yield group
        return
    base = min(indent for indent, _ in group[1:])
    current: list[tuple[int, str]] = []
    deeper = False
    for indent, line in group:
        if not deeper and current and indent >= base + 3 and current[-1][1].endswith(":"):
            yield current
            current, deeper = [], True
        elif deeper and indent < base + 3:
            yield current
            current, deeper = [], False
        current.append((indent, line))
    if current:
        yield current


def _indented_groups(lines: list[tuple[int, str]]) -> Iterator[list[tuple[int, str]]]:
    for group in _groups(lines):
        yield from _split_indented(group)


def text_blocks(lines: list[tuple[int, str]], words: Words | None = None) -> list[Piece]:
    """The blocks of plain text (see the module's docstring)."""
    pieces: list[Piece] = []
    groups = list(_indented_groups(lines))
    for i, group in enumerate(groups):
        # A line of ===== or ----- under a line makes it a heading; alone it is decoration.
        if _RULE.match(group[-1][1]):
            rule = group[-1][1].strip()
            group = group[:-1]
            if not group:
                continue
            if len(group) == 1 and len(group[0][1]) <= 100:
                level = 1 if rule.startswith("=") else 2
                pieces.append(Piece(Kind.heading, squeeze(group[0][1]), level))
                continue
        group = [(indent, line) for indent, line in group if not _RULE.match(line)]
        if not group:
            continue
        following = groups[i + 1][0][1] if i + 1 < len(groups) else None
        level = _heading_level(group, following)
        if level is not None:
            text = join_lines([line for _, line in group], words)
            pieces.append(Piece(Kind.heading, text, level))
        elif _is_pre(group):
            pieces.append(Piece(Kind.pre, _pre_text(group)))
        elif _is_question(group) and following is not None:
            pieces.append(Piece(Kind.question, join_lines([line for _, line in group], words)))
        elif any(_BULLET.match(line) for _, line in group):
            pieces.extend(_items(group, words))
        else:
            pieces.append(Piece(Kind.paragraph, join_lines([line for _, line in group], words)))
    return pieces


class Builder:
    """Lays blocks out as one text (blocks separated by a blank line) and keeps each one's
    offsets, page and heading path; ``limits.max_chars`` and ``max_elements`` are checked
    as it grows."""

    def __init__(self, limits: Limits = UNBOUNDED) -> None:
        self.limits = limits
        self.parts: list[str] = []
        self.blocks: list[Block] = []
        self.page_starts: list[tuple[int, int]] = []
        self.offset = 0
        self._page: int | None = None
        self._page_open = False
        self._headings: list[tuple[int, str]] = []

    @property
    def current_page(self) -> int | None:
        return self._page

    def page(self, number: int) -> None:
        """The blocks added from now on are on page ``number`` (an empty page leaves no mark)."""
        self._page = number
        self._page_open = True

    def add(self, piece: Piece) -> None:
        text = piece.text.strip("\n") if piece.kind is Kind.pre else squeeze(piece.text)
        if not text:
            return
        if self.parts:
            self.parts.append("\n\n")
            self.offset += 2
        if self._page_open:
            self.page_starts.append((self.offset, self._page or 0))
            self._page_open = False
        if piece.kind in (Kind.heading, Kind.question):
            # A question heads its answer until the next question or heading.
            level = QUESTION_LEVEL if piece.kind is Kind.question else piece.level
            while self._headings and self._headings[-1][0] >= level:
                self._headings.pop()
            self._headings.append((level, text))
        path = tuple(t for _, t in self._headings)
        start = self.offset
        self.parts.append(text)
        self.offset += len(text)
        self.limits.chars(self.offset)
        block = Block(piece.kind, text, start, self.offset, self._page, path, piece.level)
        self.blocks.append(block)

    def extend(self, pieces: Iterable[Piece]) -> None:
        for piece in pieces:
            self.add(piece)

    def build(self) -> Extracted:
        return Extracted("".join(self.parts), self.page_starts, self.blocks)


_PAGE_NUMBER = re.compile(
    r"(?i)^(?:page\s+)?(?:[0-9]{1,5}|[ivxlcdm]{1,8})(?:\s*(?:/|of)\s*[0-9]{1,5})?$"
)
_LEADERS = re.compile(r"(?:\.\s?){4,}\s*[0-9ivxlc]+$|\s[0-9]{1,4}$")
_TERMINAL_END = re.compile(r"[.!?:;][\"')\]]*$")
#: How many lines at each end of a page may be running headers or footers.
EDGE_LINES = 3


def _shape(line: str) -> str:
    """A line with its page number (a number standing alone at either end) left out."""
    return re.sub(r"^[0-9]+\s+|\s+[0-9]+(\s*(/|of)\s*[0-9]+)?$", " # ", line.lower()).strip()


def strip_running(pages: list[list[str]]) -> list[list[str]]:
    """The pages' lines without running headers, footers and page numbers: a line among the
    first or last ``EDGE_LINES`` of a page that is a page number, or whose shape (its page
    number aside) is at the same place on at least three pages and a tenth of them."""

    def places(lines: list[str]) -> list[tuple[int, int]]:
        n = len(lines)
        return [(i, i) for i in range(min(EDGE_LINES, n))] + [
            (i, i - n) for i in range(max(n - EDGE_LINES, EDGE_LINES), n)
        ]

    counts: dict[tuple[int, str], int] = {}
    for lines in pages:
        for i, place in places(lines):
            key = (place, _shape(lines[i]))
            counts[key] = counts.get(key, 0) + 1
    threshold = max(3, len(pages) // 10)
    kept: list[list[str]] = []
    for lines in pages:
        drop = {
            i
            for i, place in places(lines)
            if _PAGE_NUMBER.match(lines[i]) or counts[(place, _shape(lines[i]))] >= threshold
        }
        kept.append([line for i, line in enumerate(lines) if i not in drop])
    return kept


def _width(pages: list[list[str]]) -> int:
    lengths = sorted(len(line) for lines in pages for line in lines if line)
    return lengths[len(lengths) * 9 // 10] if lengths else 80


def pdf_blocks(pages: list[list[str]]) -> list[tuple[int, Piece]]:
    """``(page number, piece)`` for the text of a PDF's pages (lines without blank lines
    between paragraphs, as PDF text comes): a paragraph ends at a short line that ends a
    sentence, before a heading or a bullet; one that runs on to the next page is joined."""
    pages = strip_running(pages)
    width = _width(pages)
    words = Words(line for lines in pages for line in lines)
    out: list[tuple[int, Piece]] = []
    para: list[str] = []
    para_page = 1
    kind = Kind.paragraph
    toc: list[str] = []

    def flush() -> None:
        nonlocal para, kind
        if para:
            short = sum(1 for line in para[:-1] if len(line) < width * 0.6)
            if kind is Kind.paragraph and len(para) >= 3 and short * 3 >= (len(para) - 1) * 2:
                out.append((para_page, Piece(Kind.pre, "\n".join(para))))
            else:
                text = join_lines(para, words)
                if kind is Kind.paragraph and _is_question([(0, text)]) and len(text) < 200:
                    kind = Kind.question
                out.append((para_page, Piece(kind, text)))
        para, kind = [], Kind.paragraph

    def flush_toc() -> None:
        nonlocal toc
        if toc:
            out.append((para_page, Piece(Kind.pre, "\n".join(squeeze(t) for t in toc))))
        toc = []

    for number, lines in enumerate(pages, start=1):
        lines = [squeeze(line) for line in lines if line.strip()]
        if para and lines and (_TERMINAL_END.search(para[-1]) or not lines[0][:1].islower()):
            flush()
        for i, line in enumerate(lines):
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if _LEADERS.search(line) and (toc or re.search(r"(?:\.\s?){4,}", line)):
                flush()
                if not toc:
                    para_page = number
                toc.append(line)
                continue
            flush_toc()
            ended = not para or bool(_TERMINAL_END.search(para[-1]))
            level = _heading_level([(0, line)], nxt) if len(line) < width * 0.75 else None
            if level is not None and (ended or len(para[-1]) < width * 0.75):
                flush()
                out.append((number, Piece(Kind.heading, line, level)))
                continue
            heading = out[-1][1] if out and not para else None
            if (
                heading is not None
                and heading.kind is Kind.heading
                and heading.text.count("(") > heading.text.count(")")
                and len(line) < width * 0.5
            ):  # a heading wrapped onto a second line
                out[-1] = (out[-1][0], Piece(Kind.heading, f"{heading.text} {line}", heading.level))
                continue
            if (
                ended
                and len(line) < width * 0.5
                and len(line.split()) <= 6
                and line[:1].isupper()
                and not _TERMINAL_END.search(line)
                and len(nxt) >= width * 0.6
            ):
                flush()
                out.append((number, Piece(Kind.heading, line, 9)))
                continue
            if _BULLET.match(line):
                flush()
                kind = Kind.item
            if not para:
                para_page = number
            para.append(line)
            if len(line) < width * 0.8 and _TERMINAL_END.search(line):
                flush()
        flush_toc()
    flush()
    return out
