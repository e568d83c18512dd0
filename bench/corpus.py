"""Realistic text that every Python installation ships: the standard library's docstrings.

Paragraphs of module, class and function docstrings are recombined (deterministically) into
as many distinct passages as a benchmark needs; queries are the summary lines of functions,
as in ``bench.retrieval``. Documents for ingestion are rendered in every supported format.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import io
import random
import re
import sys
import warnings
from functools import lru_cache

from charterflow.ingest.chunking import CHUNK_CHARS

SEED = 20240601
_SKIP = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "pydoc_data"}
_SPACES = re.compile(r"[ \t]+")


@lru_cache(maxsize=1)
def _docstrings() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Distinct docstring paragraphs, and distinct function summary lines (the queries)."""
    paragraphs: dict[str, None] = {}
    summaries: dict[str, None] = {}
    with warnings.catch_warnings():  # deprecated modules still document themselves
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in sorted(sys.stdlib_module_names - _SKIP):
            if name.startswith("_"):
                continue
            try:
                module = importlib.import_module(name)
            except Exception:  # noqa: S112 - platform-specific modules are simply absent
                continue
            for obj in [module, *vars(module).values()]:
                # Not the submodules a package has as attributes: which of them are there
                # depends on what this process imported before, and the passages must not.
                if not (obj is module or inspect.isclass(obj) or inspect.isfunction(obj)):
                    continue
                doc = inspect.getdoc(obj) or ""
                for para in doc.split("\n\n"):
                    para = _SPACES.sub(" ", para.replace("\n", " ")).strip()
                    if len(para.split()) >= 8 and not para.startswith((">>>", "...")):
                        paragraphs[para] = None
                summary = doc.split("\n", 1)[0].strip()
                if inspect.isfunction(obj) and 4 <= len(summary.split()) <= 20:
                    summaries[summary] = None
    return tuple(paragraphs), tuple(summaries)


def paragraphs() -> tuple[str, ...]:
    return _docstrings()[0]


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """A short digest of the paragraphs and the passage length: what cached vectors of
    ``passages`` are valid for (the standard library differs between Python versions)."""
    digest = hashlib.sha256(str(CHUNK_CHARS).encode())
    for para in paragraphs():
        digest.update(para.encode() + b"\0")
    return digest.hexdigest()[:12]


def queries(count: int) -> list[str]:
    """``count`` questions people could ask: function summary lines, in a fixed order."""
    found = list(_docstrings()[1])
    random.Random(SEED).shuffle(found)
    return found[:count]


def passages(count: int, offset: int = 0) -> list[str]:
    """``count`` distinct passages of about ``CHUNK_CHARS`` characters, like real chunks.

    Passage ``i`` is always the same text, so ``passages(n, offset=m)`` extends ``passages(m)``.
    """
    paras = paragraphs()
    out = []
    for i in range(offset, offset + count):
        rng = random.Random(SEED * 1_000_003 + i)
        picked = [paras[rng.randrange(len(paras))] for _ in range(2)]
        while sum(map(len, picked)) < CHUNK_CHARS * 1.2:
            picked.append(paras[rng.randrange(len(paras))])
        text = "\n\n".join(picked)
        start = text.find(" ", rng.randrange(min(200, len(picked[0])))) + 1  # on a word
        out.append(text[start : start + rng.randrange(CHUNK_CHARS * 6 // 10, CHUNK_CHARS)])
    return out


def document_text(index: int, chars: int) -> list[str]:
    """Paragraphs of a document of about ``chars`` characters (document ``index``, stable)."""
    paras = paragraphs()
    rng = random.Random(SEED + 7919 * index)
    out: list[str] = []
    while sum(len(p) for p in out) < chars:
        out.append(paras[rng.randrange(len(paras))])
    return out


def render(kind: str, paras: list[str]) -> bytes:
    """The paragraphs as a file of ``kind`` (pdf, docx, html, md, txt)."""
    if kind == "pdf":
        from fpdf import FPDF

        pdf = FPDF()
        pdf.set_font("helvetica", size=10)
        for start in range(0, len(paras), 4):  # a few paragraphs per page
            pdf.add_page()
            text = "\n\n".join(paras[start : start + 4])
            pdf.multi_cell(0, 5, text.encode("latin-1", "replace").decode("latin-1"))
        return bytes(pdf.output())
    if kind == "docx":
        import docx

        document = docx.Document()
        for para in paras:
            document.add_paragraph(para)
        out = io.BytesIO()
        document.save(out)
        return out.getvalue()
    if kind == "html":
        from html import escape

        body = "".join(f"<p>{escape(p)}</p>" for p in paras)
        page = f"<!DOCTYPE html><html><head><title>Notes</title></head><body>{body}</body></html>"
        return page.encode()
    if kind == "md":
        return "\n\n".join(f"## Part {i}\n\n{p}" for i, p in enumerate(paras)).encode()
    return "\n\n".join(paras).encode()


KINDS = ("pdf", "docx", "html", "md", "txt")


def documents(count: int) -> list[tuple[str, bytes]]:
    """``count`` mixed documents ``(filename, bytes)``: every format in turn, 2-12 KB of text."""
    out = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        size = 2_000 + (i * 3_001) % 10_000
        out.append((f"doc-{i:04d}.{kind}", render(kind, document_text(i, size))))
    return out
