"""Hostile files against the parsers: each bound stops the work early and names its setting.

The files are the review's attacks (issue 20), generated small; the bounds are set low here so
that each test does little work. Times are measured in `make bench`, never asserted here.
"""

from __future__ import annotations

import io
import time
import zipfile
from typing import Any

import pytest
from charterflow.ingest.chunking import chunk
from charterflow.ingest.errors import BadDocument
from charterflow.ingest.limits import (
    RATIO_FLOOR_BYTES,
    BoundedReader,
    Limits,
    OverBudget,
    OverLimit,
    time_budget,
)
from charterflow.ingest.parsers import parse
from charterflow.services import filetypes
from charterflow.settings import Settings

from tests.hostile import files


def limits(**overrides: Any) -> Limits:
    return Limits.from_settings(Settings(_env_file=None, **overrides))


def drain(reader: BoundedReader) -> None:
    while reader.read(65536):
        pass


def spin_forever(counter: list[int]) -> None:
    """A parser stuck in pure Python, never checking any bound."""
    with time_budget(0.2):
        while True:
            counter[0] += 1


def test_docx_zip_bomb_stops_while_unpacking_on_the_ratio() -> None:
    bomb = files.docx_bomb(100 * 1024 * 1024)  # 100 MiB of empty paragraphs, ~150 KB packed
    bounds = limits(ingest_max_elements=10**9)
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive:
        reader = BoundedReader(archive, archive.getinfo("word/document.xml"), bounds)
        with pytest.raises(OverLimit, match="INGEST_MAX_UNPACK_RATIO"):
            drain(reader)
    assert reader.count <= RATIO_FLOOR_BYTES + 65536  # stopped as the bytes came out
    with pytest.raises(OverLimit, match=r"100 times .*INGEST_MAX_UNPACK_RATIO.*zip bomb"):
        parse(filetypes.DOCX, bomb, bounds)


def test_docx_unpacked_size_is_bounded_even_at_an_innocent_ratio() -> None:
    plain = files.docx_text(3000)  # about 250 KB of XML, packed ~3:1
    assert parse(filetypes.DOCX, plain, limits()).text.startswith("w0x0 w0x1")
    with pytest.raises(OverLimit, match=r"more than 100,000 bytes \(INGEST_MAX_UNPACKED_BYTES\)"):
        parse(filetypes.DOCX, plain, limits(ingest_max_unpacked_bytes=100_000))


def test_docx_characters_and_paragraphs_are_bounded() -> None:
    plain = files.docx_text(3000)
    with pytest.raises(OverLimit, match=r"more than 50,000 characters .*INGEST_MAX_CHARS"):
        parse(filetypes.DOCX, plain, limits(ingest_max_chars=50_000))
    empty = files.docx([("<w:p/>", 5000)])  # tiny and within the ratio, but many elements
    with pytest.raises(OverLimit, match=r"more than 1,000 paragraphs .*INGEST_MAX_ELEMENTS"):
        parse(filetypes.DOCX, empty, limits(ingest_max_elements=1000))


def test_docx_keeps_paragraphs_and_tables_in_order() -> None:
    row = "<w:tr><w:tc><w:p><w:r><w:t>a</w:t></w:r></w:p></w:tc><w:tc><w:p/></w:tc></w:tr>"
    data = files.docx([(files.paragraph("Before"), 1), (f"<w:tbl>{row}</w:tbl>", 1)])
    assert parse(filetypes.DOCX, data, limits()).text == "Before\n\na |"


def test_deeply_nested_docx_is_a_readable_permanent_error() -> None:
    with pytest.raises(BadDocument, match="nested too deeply"):
        parse(filetypes.DOCX, files.docx_nested(5000), limits())


def test_pdf_page_tree_repeating_one_node_is_refused_before_extracting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pypdf import PageObject

    extracted: list[int] = []
    original = PageObject.extract_text
    monkeypatch.setattr(
        PageObject,
        "extract_text",
        lambda self, *a, **k: extracted.append(1) or original(self, *a, **k),
    )
    with pytest.raises(BadDocument, match="page tree repeats a node"):
        parse(filetypes.PDF, files.pdf_page_tree_bomb(300), limits())
    with pytest.raises(OverLimit, match=r"more than 20 pages \(INGEST_MAX_PAGES\)"):
        parse(filetypes.PDF, files.pdf_pages(30), limits(ingest_max_pages=20))
    assert extracted == []  # counted first: no page's text was extracted
    assert parse(filetypes.PDF, files.pdf_pages(3), limits()).page_at(0) == 1


def test_deeply_nested_pdf_is_a_readable_permanent_error() -> None:
    with pytest.raises(BadDocument, match="PDF nests its structure too deeply"):
        parse(filetypes.PDF, files.pdf_nested(50_000), limits())


def test_html_tags_are_counted_before_the_tree_is_built() -> None:
    with pytest.raises(OverLimit, match="INGEST_MAX_ELEMENTS"):
        parse(filetypes.HTML, files.html_nested(20_000), limits(ingest_max_elements=10_000))


def test_huge_single_line_is_bounded_and_chunked_when_allowed() -> None:
    with pytest.raises(OverLimit, match=r"more than 100,000 characters .*INGEST_MAX_CHARS"):
        parse(filetypes.TXT, files.huge_line(150_000), limits(ingest_max_chars=100_000))
    extracted = parse(filetypes.TXT, files.huge_line(90_000), limits(ingest_max_chars=100_000))
    pieces = chunk(extracted, limits=limits())
    assert all(len(p.text) <= 1000 for p in pieces)
    assert pieces[-1].end == 90_000
    with pytest.raises(OverLimit, match=r"more than 50 passages \(INGEST_MAX_CHUNKS\)"):
        chunk(extracted, limits=limits(ingest_max_chunks=50))


def test_normalisation_that_expands_text_is_bounded_as_it_grows() -> None:
    data = files.nfkc_expansion(10_000)  # 30 KB of UTF-8, 180,000 characters after NFKC
    with pytest.raises(OverLimit, match="INGEST_MAX_CHARS"):
        parse(filetypes.TXT, data, limits(ingest_max_chars=100_000))


def test_csv_labels_repeated_on_every_row_are_bounded() -> None:
    header = ",".join(f"a_rather_long_column_name_{i}" for i in range(20))
    data = (header + "\n" + "\n".join(",".join("x" * 20) for _ in range(500))).encode()
    assert len(data) < 30_000
    with pytest.raises(OverLimit, match="INGEST_MAX_CHARS"):
        parse(filetypes.CSV, data, limits(ingest_max_chars=100_000))


def test_time_budget_cuts_off_work_that_never_checks() -> None:
    spins = [0]
    with pytest.raises(
        OverBudget, match=r"longer than 0\.2 seconds \(INGEST_TIME_BUDGET_SECONDS\)"
    ):
        spin_forever(spins)
    assert spins[0] > 0


def test_time_budget_that_ends_first_leaves_nothing_behind() -> None:
    with time_budget(0.2):
        total = sum(range(1000))
    time.sleep(0.4)  # an exception left pending would be raised here, failing the test
    assert total == 499_500
