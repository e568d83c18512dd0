"""Sentence segmenters compared on real text: accuracy on a gold set, and speed.

The gold set (bench/data/segmentation_gold.json) is 59 paragraphs of the QA corpus's
Debian-shipped documents as the parsers lay them out (hard-wrapped lines joined), with their
sentences. Candidates: sentencex (the one ``retrieval.text.sentences`` uses, through it, so
the bullet handling counts too), pysbd, syntok, blingfire, and the regular expression
CharterFlow used before (issue 24), each scored on exact paragraphs (every sentence right)
and on boundary precision/recall; speed is characters per second over the set, repeated.
A candidate that is not installed is reported as such (only sentencex is a dependency).

    python -m bench.segmentation [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import write_result

GOLD = Path(__file__).parent / "data" / "segmentation_gold.json"
_OLD_BOUNDARY = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)|\n")


def _old_regex(text: str) -> list[str]:
    """The splitter before issue 24 (``_BOUNDARY`` of retrieval/text.py)."""
    out, start = [], 0
    for end in [m.end() for m in _OLD_BOUNDARY.finditer(text)] + [len(text)]:
        piece = text[start:end].strip()
        start = end
        if len(piece) >= 3:
            out.append(piece)
    return out


def _charterflow(text: str) -> list[str]:
    from charterflow.retrieval.text import sentences

    return [text[s:e] for s, e in sentences(text)]


def _pysbd() -> Callable[[str], list[str]]:
    import pysbd

    seg = pysbd.Segmenter(language="en", clean=False)
    return lambda text: [s.strip() for s in seg.segment(text) if s.strip()]


def _syntok() -> Callable[[str], list[str]]:
    import syntok.segmenter as segmenter

    def split(text: str) -> list[str]:
        return [
            "".join(t.spacing + t.value for t in sentence).strip()
            for paragraph in segmenter.analyze(text)
            for sentence in paragraph
        ]

    return split


def _blingfire() -> Callable[[str], list[str]]:
    import blingfire

    return lambda text: [s for s in blingfire.text_to_sentences(text).split("\n") if s.strip()]


CANDIDATES: dict[str, Callable[[], Callable[[str], list[str]]]] = {
    "sentencex (charterflow)": lambda: _charterflow,
    "pysbd": _pysbd,
    "syntok": _syntok,
    "blingfire": _blingfire,
    "regex (before)": lambda: _old_regex,
}


def _ends(text: str, pieces: list[str]) -> set[int]:
    """Where each sentence but the last ends, as offsets into ``text`` (spacing ignored)."""
    ends, at = set(), 0
    for piece in pieces[:-1]:
        found = text.find(piece, at)
        if found < 0:
            found = at
        at = found + len(piece)
        ends.add(len(re.sub(r"\s", "", text[:at])))
    return ends


def _score(split: Callable[[str], list[str]], gold: list[dict[str, Any]]) -> dict[str, float]:
    exact = tp = fp = fn = 0
    for entry in gold:
        got = [s.strip() for s in split(entry["text"]) if s.strip()]
        exact += got == entry["sentences"]
        want, have = _ends(entry["text"], entry["sentences"]), _ends(entry["text"], got)
        tp, fp, fn = tp + len(want & have), fp + len(have - want), fn + len(want - have)
    return {
        "exact_paragraphs": round(exact / len(gold), 3),
        "boundary_precision": round(tp / (tp + fp), 3) if tp + fp else 1.0,
        "boundary_recall": round(tp / (tp + fn), 3) if tp + fn else 1.0,
    }


def run(repeats: int = 20) -> dict[str, Any]:
    gold = json.loads(GOLD.read_text())["paragraphs"]
    chars = sum(len(p["text"]) for p in gold)
    rows = []
    for name, make in CANDIDATES.items():
        try:
            split = make()
        except ImportError:
            rows.append({"name": name, "installed": False})
            continue
        split(gold[0]["text"])  # warm-up (rule tables, caches)
        started = time.perf_counter()
        for _ in range(repeats):
            for entry in gold:
                split(entry["text"])
        seconds = time.perf_counter() - started
        rows.append(
            {
                "name": name,
                "installed": True,
                **_score(split, gold),
                "chars_per_second": round(chars * repeats / seconds),
            }
        )
    return {
        "paragraphs": len(gold),
        "sentences": sum(len(p["sentences"]) for p in gold),
        "repeats": repeats,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    result = run(args.repeats)
    write_result("segmentation", result)
    print(json.dumps(result["rows"], indent=1))


if __name__ == "__main__":
    main()
