"""Text as query-time code sees it: the sentences of a passage.

Ingestion stores one vector per sentence of each chunk (``embedders.sentence_vectors``) and
answers quote whole sentences, so both must split a chunk the same way: here, and only here.

Sentences are found by sentencex (Wikimedia's segmenter: rules and abbreviation lists for
~300 languages, offsets kept; chosen on ``bench/segmentation.py``, see bench/analysis.md)
within each line: parsers lay a paragraph out on one line and separate blocks by a blank
line, so a sentence never crosses a block, and a line of a table or of code is its own unit.
"""

from __future__ import annotations

import re

from sentencex import get_sentence_boundaries

#: Bumped whenever ``sentences`` may split a text differently: stored per-sentence vectors
#: (``chunks.sentence_embeddings``) are valid only with the version they were made by
#: (``chunks.sentence_version``).
SEGMENTER_VERSION = 2
DEFAULT_LANGUAGE = "en"
_LINE = re.compile(r"[^\n]+")
#: A list item's bullet: sentencex finds no boundary in a text that starts with one.
_BULLET = re.compile("[•◦▪‣·*\\-\u2013]\\s+")


def sentences(text: str, language: str = DEFAULT_LANGUAGE) -> list[tuple[int, int]]:
    """``(start, end)`` spans of the sentences of ``text``, whitespace trimmed; no span
    crosses a line break."""
    spans: list[tuple[int, int]] = []
    for line in _LINE.finditer(text):
        bullet = _BULLET.match(line.group())
        skip = bullet.end() if bullet else 0
        base = line.start() + skip
        for i, bound in enumerate(get_sentence_boundaries(language, line.group()[skip:])):
            s, e = base + bound["start_index"], base + bound["end_index"]
            if i == 0:
                s = line.start()  # the bullet belongs to the item's first sentence
            while s < e and text[s].isspace():
                s += 1
            while e > s and text[e - 1].isspace():
                e -= 1
            if e - s >= 3:
                spans.append((s, e))
    return spans
