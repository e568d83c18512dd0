"""Question answering on real documents: are the answers right, cited and whole sentences?

The corpus (``bench/qa/corpus``, where each file comes from and its licence in SOURCES.md) is
documents that no one on the team wrote: a PDF specification, hard-wrapped plain-text FAQs,
HTML manuals and a Markdown guide, as Debian ships them. ``bench/qa/questions.yaml`` holds
questions written from those documents before the benchmark first ran, each with the key facts
an answer must state and the source (and, for a PDF, the page) it must cite, and one charter
subject per document.

Everything goes through the real HTTP API of a ``charterflow dev`` server (SQLite, in-process
ingestion, the default all-MiniLM-L6-v2 embedder): register, create a notebook, upload every
document, wait until each is ready, ask each question (``POST /notebooks/{id}/ask``), draft
each charter (``POST /notebooks/{id}/charters``). So the harness keeps measuring whatever
parsing, answering and drafting code is behind those endpoints. Extractive mode first; then
model mode against an OpenAI-compatible server (``model_endpoint``), or "not run" with the
reason.

Measures (the functions below are pure and unit-tested, tests/unit/test_bench_qa.py):

- key facts stated: every fact of the question appears in the answer text (case-insensitive,
  whitespace runs collapsed);
- right source: a citation is from the question's source; right page: one of those citations
  is on one of the question's pages;
- whole sentences: a quoted span (a citation's text) is whole when, located in the source's
  own text (extracted here independently of the app: raw text, HTML without tags, PDF pages
  with their running headers dropped; matched on letters and digits only, so whitespace,
  hyphenation and markup do not matter), it starts at a sentence start (the start of the text
  or of a block, a list item, or after sentence-final punctuation, a colon or a short heading
  line) and ends at sentence-final punctuation (. ! ? followed by a space and no lowercase
  word, so "e.g." is not an end) or at the end of a block. A span that cannot be found in the
  source counts as not whole (and is counted apart as "not found");
- latency: client wall time of each ask, p50 and p95;
- charters: share of all section citations that come from the charter's own subject
  document (on-subject), share of whole-sentence citations, sections left unsupported.

    python -m bench.qa [--limit N] [--charters N] [--llm-url URL --llm-model NAME]
                       [--model-limit N] [--model-charters N] [--model-seconds S]
    python -m bench.qa --rescore   # re-measure bench/results/qa.json's kept answers
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx
import yaml

from bench.common import JWT_SECRET, RESULTS, percentile, write_result
from tests.support.devserver import dev_server

QA = Path(__file__).parent / "qa"
CORPUS = QA / "corpus"
QUESTIONS = QA / "questions.yaml"
API = "/api/v1"
READY_TIMEOUT = 900  # seconds for every document of the corpus to be ready
#: Goals of issue 24 (shown in docs/benchmarks.md by bench/report.py).
GOAL_ANSWERS = 85.0  # extractive: key facts stated and right source cited, % of questions
GOAL_ON_SUBJECT = 80.0  # charters: % of citations from the subject document
GOAL_WHOLE = 95.0  # charters: % of citations that are whole sentences


@dataclass(frozen=True)
class Question:
    id: str
    source: str
    question: str
    facts: tuple[str, ...]
    pages: tuple[int, ...] = ()


@dataclass(frozen=True)
class CharterSubject:
    source: str
    template: str
    title: str


_Sourced = TypeVar("_Sourced", Question, CharterSubject)


def load(path: Path = QUESTIONS) -> tuple[list[Question], list[CharterSubject]]:
    """The questions and charter subjects of ``path``."""
    data = yaml.safe_load(path.read_text())
    questions = [
        Question(
            q["id"],
            q["source"],
            q["question"],
            tuple(q["facts"]),
            tuple(q.get("pages") or ()),
        )
        for q in data["questions"]
    ]
    charters = [CharterSubject(c["source"], c["template"], c["title"]) for c in data["charters"]]
    return questions, charters


# --- key facts and sources --------------------------------------------------------------


def flatten(text: str) -> str:
    """NFKC, no soft hyphens, whitespace runs as one space, lowercase: what facts match."""
    text = unicodedata.normalize("NFKC", text).replace("\u00ad", "")
    return re.sub(r"\s+", " ", text).strip().lower()


def fact_pattern(fact: str) -> re.Pattern[str]:
    """A fact as a pattern: ``re:...`` is a regular expression, anything else literal; a space
    in either matches any whitespace run."""
    if fact.startswith("re:"):
        return re.compile(fact[3:].replace(" ", r"\s+"), re.IGNORECASE)
    words = [re.escape(w) for w in flatten(fact).split(" ")]
    return re.compile(r"\s+".join(words), re.IGNORECASE)


def facts_stated(answer: str, facts: Sequence[str]) -> list[bool]:
    """For each fact, whether the answer states it."""
    flat = flatten(answer)
    return [bool(fact_pattern(f).search(flat)) for f in facts]


def same_source(title: str, source: str) -> bool:
    """A citation's document title names ``source`` (with or without its extension)."""
    a, b = title.strip().casefold(), source.strip().casefold()
    return a == b or a == Path(b).stem or Path(a).stem == Path(b).stem


def cites_source(citations: Sequence[dict[str, Any]], source: str) -> bool:
    return any(same_source(c.get("document_title") or "", source) for c in citations)


def cites_page(citations: Sequence[dict[str, Any]], source: str, pages: Sequence[int]) -> bool:
    return any(
        same_source(c.get("document_title") or "", source) and c.get("page") in pages
        for c in citations
    )


# --- whole sentences ----------------------------------------------------------------------

#: What a sentence may open or close with: quotes, brackets, bullets, Markdown marks; a path.
_OPENERS = set("\"'\u201c\u2018«([{`*_>#-\u2013\u2014•·+/~$<\\ \t")
_CLOSERS = set("\"'\u201d\u2019»)]}`*_")
_FINAL = set(".!?…")
_BULLET = re.compile(r"(?:[-*+•·]|\d+[.)]|[a-zA-Z][.)])")
_HEADING_LINE = re.compile(r"^\s*(?:#+\s|[=\-~^*]{3,}\s*$|.*¶\s*$)")


@dataclass(frozen=True)
class SourceText:
    """A source's own text, and its letters and digits alone (lowercase) with where each
    one is in the text: spans are found whatever their whitespace, hyphenation or markup."""

    text: str
    folded: str
    index: tuple[int, ...]
    #: The same document extracted another way (a PDF with its running headers kept): spans
    #: are looked for there too, as the app may keep what ``text`` drops.
    alternate: SourceText | None = None

    @classmethod
    def of(cls, text: str, alternate: str | None = None) -> SourceText:
        text = unicodedata.normalize("NFKC", text).replace("\u00ad", "")
        folded: list[str] = []
        index: list[int] = []
        for i, ch in enumerate(text):
            if ch.isalnum():
                for low in ch.lower():
                    folded.append(low)
                    index.append(i)
        other = cls.of(alternate) if alternate is not None else None
        return cls(text, "".join(folded), tuple(index), other)


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\u00ad", "")
    return "".join(ch.lower() for ch in text if ch.isalnum())


def _line_before(text: str, at: int) -> str:
    """The line that ends at the newline just before ``at``."""
    end = text.rfind("\n", 0, at)
    return text[text.rfind("\n", 0, end) + 1 : end] if end >= 0 else ""


def starts_sentence(text: str, at: int) -> bool:
    """Whether a sentence can start at ``text[at]`` (a letter or digit)."""
    j = at
    while j > 0 and text[j - 1] in _OPENERS:
        j -= 1
    if j == 0 or not text[:j].strip():
        return True
    k = j
    while k > 0 and text[k - 1].isspace():
        k -= 1
    gap = text[k:j]
    if gap.count("\n") >= 2:
        return True  # a new paragraph
    if text[j - 1] == "\n" and text[j:at].strip() and _BULLET.fullmatch(text[j:at].strip()):
        return True  # a list item
    prev = text[:k]
    p = len(prev)
    while p > 0 and prev[p - 1] in _CLOSERS:
        p -= 1
    if p > 0 and prev[p - 1] in _FINAL | {":"}:
        return True
    if "\n" in gap or "\n" in text[k:at]:
        line = _line_before(text, j if text[j - 1] == "\n" else at)
        if _HEADING_LINE.match(line):
            return True  # after a Markdown or Sphinx heading, or an underline
        short = len(line.split()) <= 8 and not line.rstrip().endswith((",", "-", "\u2013", ";"))
        first = text[j : at + 1].lstrip()[:1]
        if short and (first.isupper() or first.isdigit() or first in "/~$<"):
            return True  # after a heading line such as "3.18.1. Purpose"
    return False


def ends_sentence(text: str, end: int) -> bool:
    """Whether a sentence can end right after ``text[end - 1]`` (a letter or digit)."""
    n = len(text)
    k = end
    while k < n and text[k] in _CLOSERS:
        k += 1
    m = k
    while m < n and text[m] in _FINAL:
        m += 1
    if m > k:
        while m < n and text[m] in _CLOSERS:
            m += 1
        if m == n:
            return True
        if not text[m].isspace():
            return False  # "2.0", "i.e.,"
        after = text[m:]
        following = after.lstrip()[:1]
        if after[: len(after) - len(after.lstrip())].count("\n") >= 2:
            return True  # a paragraph break follows
        return not following or not following.islower()  # "e.g. elvis" is no end
    rest = text[k:]
    if not rest.strip():
        return True
    if re.match(r"[ \t]*\n[ \t]*\n", rest):
        return True  # the end of a paragraph (a heading, a list item, a table cell)
    nxt = rest.split("\n", 1)
    if len(nxt) == 2 and not nxt[0].strip():
        following = nxt[1].strip()
        return bool(_BULLET.fullmatch(following.split(" ", 1)[0] if following else ""))
    return False


def locate(span: str, source: SourceText) -> list[tuple[int, int]]:
    """Where ``span`` is in the source text, as ``(start, end)`` character offsets from its
    first letter or digit to just after its last one; every occurrence."""
    key = fold(span)
    found: list[tuple[int, int]] = []
    if not key:
        return found
    at = source.folded.find(key)
    while at >= 0:
        found.append((source.index[at], source.index[at + len(key) - 1] + 1))
        at = source.folded.find(key, at + 1)
    return found


def whole_sentence(span: str, source: SourceText) -> bool | None:
    """Whether the quoted ``span`` is made of whole sentences of ``source``; None when it is
    not in the source at all."""
    verdicts = [
        any(starts_sentence(s.text, a) and ends_sentence(s.text, b) for a, b in places)
        for s in (source, source.alternate)
        if s is not None and (places := locate(span, s))
    ]
    return any(verdicts) if verdicts else None


# --- the sources' own text ------------------------------------------------------------------


class _Text(HTMLParser):
    """An HTML page's text: blocks apart by a blank line, ``<pre>`` kept as is."""

    BLOCKS: ClassVar[set[str]] = {
        "p", "div", "section", "article", "li", "ul", "ol", "dl", "dt", "dd", "table", "tr",
        "td", "th", "pre", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "title", "header",
        "footer", "nav", "aside", "main", "body", "figure", "figcaption", "caption",
    }  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")
        elif tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_text(data: bytes) -> str:
    parser = _Text()
    parser.feed(data.decode("utf-8", errors="replace"))
    parser.close()
    return html.unescape("".join(parser.parts))


def pdf_text(data: bytes, edges: bool = False) -> str:
    """The PDF's pages, apart by a blank line, without running headers and footers (a line
    among a page's first or last two that recurs on three pages or more, or a page number)
    unless ``edges``."""
    import io

    from pypdf import PdfReader

    pages = [(p.extract_text() or "").splitlines() for p in PdfReader(io.BytesIO(data)).pages]
    if edges:
        return "\n\n".join("\n".join(lines) for lines in pages)
    edge: dict[str, int] = {}
    for lines in pages:
        for line in {*lines[:2], *lines[-2:]}:
            edge[line.strip()] = edge.get(line.strip(), 0) + 1
    number = re.compile(r"^(?:\d+|[ivxlcdm]+)$", re.IGNORECASE)
    kept = []
    for lines in pages:
        ends = set(range(min(2, len(lines)))) | set(range(max(0, len(lines) - 2), len(lines)))
        kept.append(
            "\n".join(
                line
                for i, line in enumerate(lines)
                if not (
                    i in ends and (edge.get(line.strip(), 0) >= 3 or number.match(line.strip()))
                )
            )
        )
    return "\n\n".join(kept)


def source_text(name: str, data: bytes) -> str:
    """The document's own text, extracted here, not by the app under test."""
    suffix = Path(name).suffix.lower()
    if suffix == ".pdf":
        return pdf_text(data)
    if suffix in (".html", ".htm"):
        return html_text(data)
    return data.decode("utf-8", errors="replace")


def corpus_sources(corpus: Path = CORPUS) -> dict[str, SourceText]:
    """Each corpus document's own text (a PDF's also with its running headers)."""
    found = {}
    for p in sorted(corpus.iterdir()):
        if p.is_file() and p.name != "SOURCES.md":
            data = p.read_bytes()
            raw = pdf_text(data, edges=True) if p.suffix.lower() == ".pdf" else None
            found[p.name] = SourceText.of(source_text(p.name, data), raw)
    return found


# --- scoring ------------------------------------------------------------------------------


def spans_whole(
    citations: Sequence[dict[str, Any]], sources: dict[str, SourceText]
) -> list[bool | None]:
    """For each citation, whether its text is whole sentences of its source (None: not
    found there, or from no corpus document)."""
    out: list[bool | None] = []
    for c in citations:
        title = c.get("document_title") or ""
        name = next((n for n in sources if same_source(title, n)), None)
        out.append(whole_sentence(c.get("text") or "", sources[name]) if name else None)
    return out


def score_answer(
    question: Question, reply: dict[str, Any], sources: dict[str, SourceText]
) -> dict[str, Any]:
    """One answer measured against its question."""
    citations = reply.get("citations") or []
    stated = facts_stated(reply.get("answer") or "", question.facts)
    whole = spans_whole(citations, sources)
    right = cites_source(citations, question.source)
    return {
        "id": question.id,
        "source": question.source,
        "mode": reply.get("mode"),
        "warning": reply.get("warning"),  # why a model's answer fell back to the extracts
        "facts": stated,
        "stated": all(stated),
        "right_source": right,
        "right_page": cites_page(citations, question.source, question.pages)
        if question.pages
        else None,
        "first_source": (citations[0].get("document_title") if citations else None),
        "spans": len(whole),
        "whole": sum(1 for w in whole if w),
        "not_found": sum(1 for w in whole if w is None),
        "answer": reply.get("answer") or "",
        "citations": [_kept(c) for c in citations],
    }


def _kept(citation: dict[str, Any]) -> dict[str, Any]:
    """What a citation is scored on, kept in the results so they can be re-scored."""
    return {k: citation.get(k) for k in ("document_title", "page", "text")}


def pct(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def summarize_answers(rows: Sequence[dict[str, Any]], ms: Sequence[float]) -> dict[str, Any]:
    """Shares over the questions (and over every quoted span, for whole sentences)."""
    n = len(rows)
    paged = [r for r in rows if r["right_page"] is not None]
    spans = sum(r["spans"] for r in rows)
    return {
        "questions": n,
        "key_facts_pct": pct(sum(r["stated"] for r in rows), n),
        "right_source_pct": pct(sum(r["right_source"] for r in rows), n),
        "facts_and_source_pct": pct(sum(r["stated"] and r["right_source"] for r in rows), n),
        "right_page_pct": pct(sum(bool(r["right_page"]) for r in paged), len(paged)),
        "paged_questions": len(paged),
        "whole_sentence_pct": pct(sum(r["whole"] for r in rows), spans),
        "answers_all_whole_pct": pct(
            sum(r["spans"] > 0 and r["whole"] == r["spans"] for r in rows), n
        ),
        "spans": spans,
        "spans_not_found": sum(r["not_found"] for r in rows),
        "uncited_answers": sum(r["spans"] == 0 for r in rows),
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
    }


def score_charter(
    subject: CharterSubject, charter: dict[str, Any], sources: dict[str, SourceText]
) -> dict[str, Any]:
    sections = charter.get("sections") or []
    citations = [c for s in sections for c in s.get("citations") or []]
    whole = spans_whole(citations, sources)
    return {
        "title": subject.title,
        "source": subject.source,
        "template": subject.template,
        "sections": len(sections),
        "unsupported": sum(s.get("status") == "unsupported" for s in sections),
        "citations": len(citations),
        "on_subject": sum(
            same_source(c.get("document_title") or "", subject.source) for c in citations
        ),
        "whole": sum(1 for w in whole if w),
        "not_found": sum(1 for w in whole if w is None),
        "cited_sources": sorted({c.get("document_title") or "" for c in citations}),
        "sections_drafted": [
            {
                "key": s.get("key"),
                "status": s.get("status"),
                "body": s.get("body", ""),
                "citations": [_kept(c) for c in s.get("citations") or []],
            }
            for s in sections
        ],
    }


def summarize_charters(rows: Sequence[dict[str, Any]], ms: Sequence[float]) -> dict[str, Any]:
    citations = sum(r["citations"] for r in rows)
    sections = sum(r["sections"] for r in rows)
    return {
        "charters": len(rows),
        "sections": sections,
        "unsupported": sum(r["unsupported"] for r in rows),
        "unsupported_pct": pct(sum(r["unsupported"] for r in rows), sections),
        "citations": citations,
        "on_subject_pct": pct(sum(r["on_subject"] for r in rows), citations),
        "whole_sentence_pct": pct(sum(r["whole"] for r in rows), citations),
        "citations_not_found": sum(r["not_found"] for r in rows),
        "p50_ms": round(percentile(ms, 50), 1),
    }


# --- driving the app ----------------------------------------------------------------------


@contextmanager
def _server(home: Path, **env: str) -> Iterator[str]:
    extra = {"JWT_SECRET": JWT_SECRET, "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json", **env}
    with dev_server(home, **extra) as (url, _proc):
        yield url


def _seed(
    client: httpx.Client, files: Sequence[Path]
) -> tuple[dict[str, str], str, list[dict[str, Any]], float]:
    """A user and a notebook holding every file, all ready; (headers, notebook id,
    documents, seconds from the first upload until all were ready)."""
    r = client.post(
        f"{API}/auth/register",
        json={"email": "qa-bench@example.com", "password": "correct horse battery", "name": "QA"},
    )
    r.raise_for_status()
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    notebook = client.post(f"{API}/notebooks", json={"title": "QA bench"}, headers=headers)
    notebook.raise_for_status()
    nb = notebook.json()["id"]
    started = time.monotonic()
    ids = []
    for path in files:
        r = client.post(
            f"{API}/notebooks/{nb}/documents",
            files={"file": (path.name, path.read_bytes(), "application/octet-stream")},
            headers=headers,
        )
        r.raise_for_status()
        ids.append(r.json()["id"])
    waiting = list(ids)
    docs: dict[str, dict[str, Any]] = {}
    while waiting and time.monotonic() - started < READY_TIMEOUT:
        for i in list(waiting):
            doc = client.get(f"{API}/documents/{i}", headers=headers).json()
            docs[i] = doc
            if doc["status"] == "failed":
                raise RuntimeError(f"{doc['filename']}: ingestion failed: {doc.get('error')}")
            if doc["status"] == "ready":
                waiting.remove(i)
        time.sleep(0.5)
    if waiting:
        raise RuntimeError(f"documents not ready after {READY_TIMEOUT} s: {waiting}")
    seconds = time.monotonic() - started
    documents = [
        {k: docs[i].get(k) for k in ("filename", "media_type", "size_bytes", "chunk_count")}
        for i in ids
    ]
    return headers, nb, documents, seconds


def _ask(
    client: httpx.Client,
    headers: dict[str, str],
    notebook: str,
    questions: Sequence[Question],
    sources: dict[str, SourceText],
    deadline: float | None = None,
) -> dict[str, Any]:
    """Every question in turn; none started after ``deadline`` (``time.monotonic()``)."""
    rows, ms = [], []
    client.post(f"{API}/notebooks/{notebook}/ask", json={"question": "warm-up"}, headers=headers)
    for q in questions:
        if deadline is not None and time.monotonic() > deadline:
            break
        started = time.perf_counter()
        r = client.post(
            f"{API}/notebooks/{notebook}/ask", json={"question": q.question}, headers=headers
        )
        ms.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()
        rows.append({**score_answer(q, r.json(), sources), "ms": round(ms[-1], 1)})
        _progress(f"{q.id}: {rows[-1]['mode']} {ms[-1] / 1000:.1f} s")
    return {
        **summarize_answers(rows, ms),
        "modes_seen": sorted({str(r["mode"]) for r in rows}),
        "rows": rows,
    }


def _draft(
    client: httpx.Client,
    headers: dict[str, str],
    notebook: str,
    subjects: Sequence[CharterSubject],
    sources: dict[str, SourceText],
    deadline: float | None = None,
) -> dict[str, Any]:
    rows, ms = [], []
    for s in subjects:
        if deadline is not None and time.monotonic() > deadline:
            break
        started = time.perf_counter()
        r = client.post(
            f"{API}/notebooks/{notebook}/charters",
            json={"template": s.template, "title": s.title},
            headers=headers,
        )
        ms.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()
        rows.append({**score_charter(s, r.json(), sources), "ms": round(ms[-1], 1)})
        _progress(f"charter {s.source}: {ms[-1] / 1000:.1f} s")
    return {**summarize_charters(rows, ms), "rows": rows}


def interleaved(items: Sequence[_Sourced]) -> list[_Sourced]:
    """``items`` taken one source at a time, round-robin (first of each source, then the
    second...): any prefix of it covers the documents evenly, where the file's order is
    grouped by document."""
    by_source: dict[str, list[_Sourced]] = {}
    for item in items:
        by_source.setdefault(item.source, []).append(item)
    out: list[_Sourced] = []
    for rank in range(max((len(v) for v in by_source.values()), default=0)):
        out += [v[rank] for v in by_source.values() if rank < len(v)]
    return out


def _progress(line: str) -> None:
    """One line per request on stderr: a long model-mode run shows how far it is."""
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ModelEndpoint:
    url: str
    model: str
    name: str  # what is reported: which server and model


@contextmanager
def model_endpoint(
    url: str | None = None, model: str | None = None
) -> Iterator[ModelEndpoint | str]:
    """The OpenAI-compatible server model mode is measured against, or why there is none.

    An explicit ``url``/``model`` (a server already running) wins. Otherwise the real
    llama.cpp fixture ``tests/support/llamacpp.py`` when it is there and offers
    ``server()`` (a context manager yielding an object with ``url`` and ``model``): the place
    to wire it in when it lands."""
    if url:
        yield ModelEndpoint(url, model or "default", f"{model or 'default'} at {url}")
        return
    try:
        from tests.support import llamacpp  # type: ignore[attr-defined]
    except ImportError:
        yield (
            "not run: tests/support/llamacpp.py (the real llama.cpp server fixture) is not in "
            "main yet; rerun with `python -m bench.qa --llm-url URL --llm-model NAME` or once "
            "it lands"
        )
        return
    server = getattr(llamacpp, "server", None)
    if server is None:
        yield "not run: tests/support/llamacpp.py has no server(); wire it in qa.model_endpoint"
        return
    with server() as running:
        yield ModelEndpoint(running.url, running.model, f"{running.model} (llama.cpp server)")


def run(
    limit: int | None = None,
    charters: int | None = None,
    llm_url: str | None = None,
    llm_model: str | None = None,
    path: Path = QUESTIONS,
    corpus: Path = CORPUS,
    model_limit: int | None = None,
    model_charters: int | None = None,
    model_seconds: float | None = None,
) -> dict[str, Any]:
    """Both modes. Model mode takes the questions and subjects round-robin over the
    documents (``interleaved``), the first ``model_limit`` / ``model_charters`` of them if
    given, and, given ``model_seconds``, starts no question after half of it and no charter
    after all of it: a small model on a busy machine takes seconds per answer."""
    questions, subjects = load(path)
    questions, subjects = questions[:limit], subjects[:charters]
    sources = corpus_sources(corpus)
    files = [corpus / name for name in sources]
    modes: dict[str, Any] = {}
    drafted: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-qa-") as tmp:
        home = Path(tmp)
        with _server(home) as url, httpx.Client(base_url=url, timeout=600) as client:
            headers, notebook, documents, ingest_s = _seed(client, files)
            modes["extractive"] = _ask(client, headers, notebook, questions, sources)
            drafted["extractive"] = _draft(client, headers, notebook, subjects, sources)
        with model_endpoint(llm_url, llm_model) as endpoint:
            if isinstance(endpoint, str):
                modes["model"] = drafted["model"] = {"status": endpoint}
            else:
                env = {"LLM_URL": endpoint.url, "LLM_MODEL": endpoint.model}
                with (
                    _server(home, **env) as url,
                    httpx.Client(base_url=url, timeout=600) as client,
                ):
                    began = time.monotonic()
                    ask_by = draft_by = None
                    if model_seconds is not None:
                        ask_by, draft_by = began + model_seconds / 2, began + model_seconds
                    asked = interleaved(questions)[:model_limit]
                    modes["model"] = {
                        "model": endpoint.name,
                        "order": "round-robin over the documents",
                        **_ask(client, headers, notebook, asked, sources, ask_by),
                    }
                    drafted["model"] = {
                        "model": endpoint.name,
                        **_draft(
                            client,
                            headers,
                            notebook,
                            interleaved(subjects)[:model_charters],
                            sources,
                            draft_by,
                        ),
                    }
    return {
        "benchmark": "question answering and charters on real documents, through the HTTP API",
        "server": "charterflow dev (SQLite, in-process ingestion, all-MiniLM-L6-v2)",
        "documents": documents,
        "ingest_seconds": round(ingest_s, 1),
        "questions": len(questions),
        "goals": {
            "facts_and_source_pct": GOAL_ANSWERS,
            "charter_on_subject_pct": GOAL_ON_SUBJECT,
            "charter_whole_sentence_pct": GOAL_WHOLE,
        },
        "answers": modes,
        "charters": drafted,
    }


def rescore(
    result: dict[str, Any], path: Path = QUESTIONS, corpus: Path = CORPUS
) -> dict[str, Any]:
    """``result`` (a ``run``'s) measured again from the answers and charters it kept, with
    the current questions and measures: no server, no new answers."""
    questions, subjects = load(path)
    by_id = {q.id: q for q in questions}
    by_title = {s.title: s for s in subjects}
    sources = corpus_sources(corpus)
    for mode, section in result["answers"].items():
        if "rows" not in section:
            continue
        rows = [
            {**score_answer(by_id[r["id"]], r, sources), "ms": r["ms"]}
            for r in section["rows"]
            if r["id"] in by_id
        ]
        rest = {k: v for k, v in section.items() if k in ("model", "order", "modes_seen")}
        result["answers"][mode] = {
            **rest,
            **summarize_answers(rows, [r["ms"] for r in rows]),
            "rows": rows,
        }
    for mode, section in result["charters"].items():
        if "rows" not in section:
            continue
        rows = [
            {
                **score_charter(by_title[r["title"]], {"sections": r["sections_drafted"]}, sources),
                "ms": r["ms"],
            }
            for r in section["rows"]
            if r["title"] in by_title
        ]
        result["charters"][mode] = {
            **({"model": section["model"]} if "model" in section else {}),
            **summarize_charters(rows, [r["ms"] for r in rows]),
            "rows": rows,
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--charters", type=int, help="only the first N charter subjects")
    parser.add_argument("--llm-url", help="an OpenAI-compatible server for model mode")
    parser.add_argument("--llm-model", help="its model name")
    parser.add_argument("--model-limit", type=int, help="model mode: only the first N questions")
    parser.add_argument(
        "--model-charters", type=int, help="model mode: only the first N charter subjects"
    )
    parser.add_argument(
        "--model-seconds",
        type=float,
        help="model mode: start no question after half of S seconds, no charter after S",
    )
    parser.add_argument(
        "--rescore", action="store_true", help="re-measure bench/results/qa.json, ask nothing"
    )
    args = parser.parse_args(argv)
    if args.rescore:
        kept = json.loads((RESULTS / "qa.json").read_text())
        result = rescore(
            {k: v for k, v in kept.items() if k not in ("machine", "load_average_after")}
        )
        result = {**result, "rescored": True}
        (RESULTS / "qa.json").write_text(json.dumps({**kept, **result}, indent=2) + "\n")
    else:
        result = run(
            args.limit,
            args.charters,
            args.llm_url,
            args.llm_model,
            model_limit=args.model_limit,
            model_charters=args.model_charters,
            model_seconds=args.model_seconds,
        )
        write_result("qa", result)
    for mode, summary in result["answers"].items():
        print(mode, json.dumps({k: v for k, v in summary.items() if k != "rows"}))
    for mode, summary in result["charters"].items():
        print("charters", mode, json.dumps({k: v for k, v in summary.items() if k != "rows"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
