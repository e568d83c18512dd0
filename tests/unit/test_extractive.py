"""Extractive answers as a pure function of the passages found (retrieval/answer.py), on real
documents nobody here wrote, chunked as ingestion chunks them (overlapping passages)."""

from __future__ import annotations

from pathlib import Path

from charterflow.ingest.chunking import Extracted, chunk
from charterflow.retrieval.answer import NOT_FOUND, extractive
from charterflow.retrieval.embedders import HashingEmbedder
from charterflow.retrieval.search import Hit

CORPUS = Path(__file__).parent.parent / "fixtures" / "corpus"
EMBEDDER = HashingEmbedder()


def _passages(name: str, *containing: str) -> list[Hit]:
    """The document's chunks holding ``containing`` (each one), as search would return them."""
    text = (CORPUS / name).read_text()
    hits = []
    for n, c in enumerate(chunk(Extracted(text))):
        if any(s in c.text for s in containing):
            hits.append(Hit(f"c{n}", name, name, c.text, c.start, c.end, None, 1.0, 0.5, n, n))
    return hits


def test_overlapping_passages_quote_a_sentence_once_in_reading_order() -> None:
    hits = _passages("screen-FAQ.txt", "GNU  sed  version 2.03")
    assert len(hits) >= 1
    twice = hits + hits  # the same passages found twice (by both rankings, say)
    result = extractive(EMBEDDER, "Why does GNU sed not work with the configure script?", twice)
    texts = [" ".join(c.text.split()) for c in result.citations]
    assert len(texts) == len(set(texts))
    assert any("GNU sed version 2.03 dumps core" in t for t in texts)
    assert all(not t.startswith("Q:") for t in texts)
    starts = [c.start for c in result.citations]
    assert starts == sorted(starts)  # one document: in the order it says them
    for c in result.citations:  # each citation is the exact span of the document's text
        assert (CORPUS / "screen-FAQ.txt").read_text()[c.start : c.end] == c.text


def test_a_sentence_ending_with_a_colon_brings_its_list() -> None:
    hits = _passages("zstd-CONTRIBUTING.md", "three main stages")
    result = extractive(EMBEDDER, "What are the main stages of the contribution process?", hits)
    first = result.citations[0].text
    assert first.startswith("Our contribution process works in three main stages:")
    assert "Local development" in first


def test_no_whole_sentence_no_answer() -> None:
    hits = [Hit("c", "d", "t", "Getting and installing Debian GNU/Linux", 0, 39, None, 1, 1, 1, 1)]
    assert extractive(EMBEDDER, "installing Debian", hits).answer == NOT_FOUND
