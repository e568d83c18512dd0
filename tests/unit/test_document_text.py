"""Stitching a document's text from overlapping chunks, and finding a citation's paragraph."""

from __future__ import annotations

from charterflow.services.document_text import Piece, enclosing_blocks, stitch

TEXT = "First block one.\n\nSecond block, sentence one. Sentence two.\n\nThird."


def _pieces(spans: list[tuple[int, int]]) -> list[Piece]:
    return [Piece(s, e, TEXT[s:e]) for s, e in spans]


def test_overlapping_pieces_give_the_text_back_and_gaps_become_newlines() -> None:
    assert stitch(_pieces([(0, 30), (20, 50), (45, len(TEXT))]), 0, len(TEXT)) == TEXT
    # Nothing covers the blank lines between blocks (chunks are stripped): they are newlines.
    gapped = _pieces([(0, 16), (18, 59), (61, len(TEXT))])
    assert stitch(gapped, 0, len(TEXT)) == TEXT
    assert stitch(gapped, 5, 25) == TEXT[5:25]
    assert stitch([Piece(0, 3, "ab c")], 0, 3) == "ab "  # past a piece's end is never read
    assert stitch([Piece(2, 4, "xy")], 0, 5) == "\n\nxy "


def test_the_paragraph_around_a_span_and_clipping() -> None:
    start = TEXT.index("Sentence two.")
    found = enclosing_blocks(TEXT, 0, start, start + 13, len(TEXT))
    assert found.text == "Second block, sentence one. Sentence two."
    assert found.offset == TEXT.index("Second")
    assert not found.clipped_start
    assert not found.clipped_end
    both = enclosing_blocks(TEXT, 0, 3, TEXT.index("sentence one"), len(TEXT))
    assert both.text == TEXT[: TEXT.index("\n\nThird")]
    # A window that begins inside a block: clipped at a word, and said to be.
    window = TEXT[22:]
    clipped = enclosing_blocks(window, 22, start, start + 13, 10_000)
    assert clipped.clipped_start
    assert clipped.text.startswith("block, sentence one.")
    assert not clipped.clipped_end
