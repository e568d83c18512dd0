"""Text as query-time code sees it: the sentences of a passage.

Ingestion stores one vector per sentence of each chunk (``embedders.sentence_vectors``) and
answers quote whole sentences, so both must split a chunk the same way: here, and only here.
"""

from __future__ import annotations

import re

_BOUNDARY = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)|\n")


def sentences(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` spans of the sentences (or lines) of ``text``, whitespace trimmed."""
    spans: list[tuple[int, int]] = []
    bounds = [m.end() for m in _BOUNDARY.finditer(text)]
    start = 0
    for end in [*bounds, len(text)]:
        s, e = start, end
        start = end
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e - s >= 3:
            spans.append((s, e))
    return spans
