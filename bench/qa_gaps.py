"""Why the QA benchmark's misses missed: each one sorted into a cause, from the kept results.

Reads ``bench/results/qa.json`` (no server, nothing asked again) and re-creates the passages
the app searched, with the app's own parser and chunker (``ingest.parsers.parse``,
``ingest.chunking.chunk``: the same code, only called here), so a miss can be placed:

- ``other document``: no citation from the question's source (retrieval chose passages of
  other documents);
- ``wrong passage``: the source is cited, but none of its quotes is from a passage that holds
  the key facts (the passage that states them was not retrieved or not quoted);
- ``key sentence not chosen``: a quote is from a passage that states every key fact, in one
  sentence of it, and that sentence is not in the answer;
- ``fact split across sentences``: the facts are in a quoted passage, but no one sentence
  holds them all (the answer needed two sentences and quoted fewer);
- ``fact not in one passage``: no passage holds all the facts (split across passages, or the
  source words it otherwise than the question's fact patterns: a question to re-read);
- ``facts stated, wrong source``.

Charter citations: from another document than the subject (counted by which document), and
the not-whole ones by which end is wrong (start, end, both, not found).

    python -m bench.qa_gaps [--mode extractive|model]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from charterflow.ingest.chunking import chunk
from charterflow.ingest.parsers import parse
from charterflow.retrieval.text import sentences

from bench.common import RESULTS
from bench.qa import (
    CORPUS,
    Question,
    SourceText,
    corpus_sources,
    ends_sentence,
    facts_stated,
    fold,
    load,
    locate,
    same_source,
    starts_sentence,
)

MEDIA = {
    ".pdf": "application/pdf",
    ".html": "text/html",
    ".txt": "text/plain",
    ".md": "text/markdown",
}


def passages(corpus: Path = CORPUS) -> dict[str, list[str]]:
    """Each document's passages as the app cuts them."""
    out = {}
    for p in sorted(corpus.iterdir()):
        if p.suffix.lower() in MEDIA:
            extracted = parse(MEDIA[p.suffix.lower()], p.read_bytes())
            out[p.name] = [c.text for c in chunk(extracted)]
    return out


def _holds(text: str, question: Question) -> bool:
    return all(facts_stated(text, question.facts))


def cause(question: Question, row: dict[str, Any], docs: dict[str, list[str]]) -> str | None:
    """Why ``row`` (a scored answer) is not a hit on key facts + right source; None if it is."""
    if row["stated"] and row["right_source"]:
        return None
    if row["stated"]:
        return "facts stated, wrong source"
    if not row["right_source"]:
        return "other document"
    mine = docs[question.source]
    keyed = [t for t in mine if _holds(t, question)]
    if not keyed:
        return "fact not in one passage"
    quotes = [
        fold(c["text"] or "")
        for c in row["citations"]
        if same_source(c.get("document_title") or "", question.source)
    ]
    quoted = [t for t in keyed if any(q and q in fold(t) for q in quotes)]
    if not quoted:
        return "wrong passage"
    for text in quoted:
        if any(_holds(text[a:b], question) for a, b in sentences(text)):
            return "key sentence not chosen"
    return "fact split across sentences"


def answer_gaps(result: dict[str, Any], mode: str) -> dict[str, Any]:
    questions, _ = load()
    by_id = {q.id: q for q in questions}
    docs = passages()
    rows = result["answers"][mode].get("rows", [])
    found: dict[str, list[str]] = {}
    for row in rows:
        why = cause(by_id[row["id"]], row, docs)
        if why:
            found.setdefault(why, []).append(row["id"])
    return {
        "questions": len(rows),
        "misses": sum(len(v) for v in found.values()),
        "by_cause": {k: {"count": len(v), "ids": v} for k, v in sorted(found.items())},
    }


def _ends(span: str, source: SourceText) -> str:
    places = [
        (s, a, b) for s in (source, source.alternate) if s is not None for a, b in locate(span, s)
    ]
    if not places:
        return "not found"
    if any(starts_sentence(s.text, a) and ends_sentence(s.text, b) for s, a, b in places):
        return "whole"
    start = any(starts_sentence(s.text, a) for s, a, _ in places)
    end = any(ends_sentence(s.text, b) for s, _, b in places)
    return "starts mid-sentence" if end else "ends mid-sentence" if start else "both ends"


def charter_gaps(result: dict[str, Any], mode: str) -> dict[str, Any]:
    sources = corpus_sources()
    off: Counter[str] = Counter()
    ends: Counter[str] = Counter()
    off_by_charter = {}
    for row in result["charters"][mode].get("rows", []):
        cited = [c for s in row["sections_drafted"] for c in s["citations"]]
        others = [c for c in cited if not same_source(c["document_title"] or "", row["source"])]
        off.update(c["document_title"] for c in others)
        off_by_charter[row["title"]] = f"{len(others)} of {len(cited)}"
        for c in cited:
            name = next((n for n in sources if same_source(c["document_title"] or "", n)), None)
            ends[_ends(c["text"] or "", sources[name]) if name else "not found"] += 1
    return {
        "off_subject_by_document": dict(off.most_common()),
        "off_subject_by_charter": off_by_charter,
        "citation_ends": dict(ends.most_common()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="extractive")
    args = parser.parse_args(argv)
    result = json.loads((RESULTS / "qa.json").read_text())
    out = {"answers": answer_gaps(result, args.mode), "charters": charter_gaps(result, args.mode)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
