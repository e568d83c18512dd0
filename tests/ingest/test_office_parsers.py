"""Slides, sheets and books, from files written by real writers (python-pptx, openpyxl,
EbookLib): their text in reading order, slide and sheet numbers as pages, bounded like every
other parser; and a scanned PDF that says why it has no text."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from charterflow.ingest.chunking import chunk
from charterflow.ingest.errors import BadDocument
from charterflow.ingest.limits import UNBOUNDED, OverLimit
from charterflow.ingest.parsers import parse
from charterflow.services import filetypes
from charterflow.services.uploads import inspect

from tests.ingest.samples import epub_bytes, pptx_bytes, scanned_pdf, xlsx_bytes

SLIDES = [
    ["Quarterly review", "Northwind logistics"],
    ["Warehouse throughput", "The Leeds warehouse shipped 14,200 parcels in March."],
    ["Next steps", "Hire two forklift drivers before the summer peak."],
]
SHEETS: dict[str, list[list[object]]] = {
    "Staff": [["name", "team", "start"], ["Ada", "Platform", 2021], ["Grace", "Data", 2019]],
    "Budget": [["item", "amount"], ["Sensors", 48000], ["Travel", 3500.5], ["Approved", True]],
}
CHAPTERS = [
    ("Arrival", "<p>The ferry reaches Stromness at dawn.</p><script>var zebra = 1;</script>"),
    ("Harbour", "<p>The harbour master keeps the tide tables.</p><p hidden>quokka</p>"),
]


def _kind(data: bytes, name: str) -> str:
    return inspect(io.BytesIO(data), name, 10_000_000).media_type


def test_each_package_is_recognised_by_its_content() -> None:
    assert _kind(pptx_bytes(SLIDES), "deck.bin") == filetypes.PPTX
    assert _kind(xlsx_bytes(SHEETS), "book.bin") == filetypes.XLSX
    assert _kind(epub_bytes(CHAPTERS), "story.zip") == filetypes.EPUB


def test_slides_keep_their_order_and_their_number_as_the_page() -> None:
    extracted = parse(filetypes.PPTX, pptx_bytes(SLIDES))
    assert extracted.text.splitlines() == [
        "Quarterly review",
        "Northwind logistics",
        "",
        "Warehouse throughput",
        "The Leeds warehouse shipped 14,200 parcels in March.",
        "",
        "Next steps",
        "Hire two forklift drivers before the summer peak.",
    ]
    at = extracted.text.index("The Leeds warehouse")
    assert extracted.page_at(at) == 2
    assert extracted.page_at(extracted.text.index("forklift")) == 3
    assert {p.page for p in chunk(extracted)} <= {1, 2, 3}


def test_sheets_read_as_labelled_rows_with_the_sheet_as_the_page() -> None:
    extracted = parse(filetypes.XLSX, xlsx_bytes(SHEETS))
    staff, budget = extracted.text.split("\n\n")
    assert staff.splitlines() == [
        "Staff",
        "name: Ada; team: Platform; start: 2021",
        "name: Grace; team: Data; start: 2019",
    ]
    assert budget.splitlines() == [
        "Budget",
        "item: Sensors; amount: 48000",
        "item: Travel; amount: 3500.5",
        "item: Approved; amount: TRUE",
    ]
    assert extracted.page_at(extracted.text.index("Sensors")) == 2
    assert extracted.page_at(extracted.text.index("Grace")) == 1


def test_a_book_reads_in_spine_order_with_visible_text_only() -> None:
    text = parse(filetypes.EPUB, epub_bytes(CHAPTERS)).text
    assert text.index("ferry reaches Stromness") < text.index("harbour master keeps")
    assert "zebra" not in text
    assert "quokka" not in text


def test_slides_sheets_and_elements_are_bounded() -> None:
    with pytest.raises(OverLimit, match="INGEST_MAX_PAGES"):
        parse(filetypes.PPTX, pptx_bytes(SLIDES), replace(UNBOUNDED, max_pages=2))
    with pytest.raises(OverLimit, match="INGEST_MAX_PAGES"):
        parse(filetypes.XLSX, xlsx_bytes(SHEETS), replace(UNBOUNDED, max_pages=1))
    many = {"Big": [[f"r{r}c{c}" for c in range(20)] for r in range(50)]}
    with pytest.raises(OverLimit, match="INGEST_MAX_ELEMENTS"):
        parse(filetypes.XLSX, xlsx_bytes(many), replace(UNBOUNDED, max_elements=500))
    # One cell far to the right on each row would pad every row to thousands of cells.
    far = {"Far": [[*([None] * 999), f"x{r}"] for r in range(5)]}
    with pytest.raises(OverLimit, match="INGEST_MAX_ELEMENTS"):
        parse(filetypes.XLSX, xlsx_bytes(far), replace(UNBOUNDED, max_elements=2_000))
    assert (
        "x4" in parse(filetypes.XLSX, xlsx_bytes(far), replace(UNBOUNDED, max_elements=6_000)).text
    )
    with pytest.raises(OverLimit, match="INGEST_MAX_CHARS"):
        parse(filetypes.EPUB, epub_bytes(CHAPTERS), replace(UNBOUNDED, max_chars=40))
    with pytest.raises(OverLimit, match="zip bomb"):
        parse(filetypes.PPTX, pptx_bytes(SLIDES), replace(UNBOUNDED, max_unpacked_bytes=500))


def test_a_damaged_package_is_a_readable_error() -> None:
    data = pptx_bytes(SLIDES)
    with pytest.raises(BadDocument, match="the PowerPoint presentation is damaged"):
        parse(filetypes.PPTX, data[: len(data) // 2])  # cut off, as an interrupted copy


def test_a_scanned_pdf_names_the_missing_text_layer() -> None:
    with pytest.raises(BadDocument, match=r"no text layer: its 2 page\(s\) are scanned images"):
        parse(filetypes.PDF, scanned_pdf(2))
