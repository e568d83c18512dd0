"""Parsers read documents as structure, on real documents nobody here wrote (see
tests/ingest/documents/README.md): hard-wrapped lines joined into paragraphs, hyphens at line
ends handled, a PDF's running headers and page numbers dropped, heading paths, FAQ pairs,
sentences by a segmentation library, and passages that follow the blocks."""

from __future__ import annotations

import re
from pathlib import Path

from charterflow.ingest.blocks import HEADING_SEPARATOR, Kind, Words, join_lines
from charterflow.ingest.chunking import chunk
from charterflow.ingest.parsers import parse
from charterflow.retrieval.text import sentences
from charterflow.services import filetypes

DOCUMENTS = Path(__file__).parent / "documents"


def _read(name: str, media_type: str):  # type: ignore[no-untyped-def]
    return parse(media_type, (DOCUMENTS / name).read_bytes())


def _block(extracted, start: str):  # type: ignore[no-untyped-def]
    return next(b for b in extracted.blocks if b.text.startswith(start))


def _laid_out(extracted) -> None:  # type: ignore[no-untyped-def]
    """The text is the blocks separated by blank lines, and each block's offsets index it."""
    assert extracted.text.split("\n\n") == [b.text for b in extracted.blocks]
    for b in extracted.blocks:
        assert extracted.text[b.start : b.end] == b.text
        if b.kind not in (Kind.pre, Kind.row):
            assert "\n" not in b.text


def test_a_hard_wrapped_faq_keeps_each_question_with_its_answer() -> None:
    faq = _read("screen-FAQ-excerpt.txt", filetypes.TXT)
    _laid_out(faq)
    questions = [b for b in faq.blocks if b.kind is Kind.question]
    assert len(questions) == 4
    assert questions[0].text == (
        "Q: Why is it impossible to download a file with Kermit/sz/rz when screen is running? "
        "Do I need to set some special variables?"
    )
    answer = faq.blocks[faq.blocks.index(questions[0]) + 1]
    assert answer.text.startswith("A: Screen always interprets control-sequences sent by the ")
    assert answer.text.endswith(
        "start the transfer program only from the shell where you started screen."
    )
    # "set-" ends a line and the document writes "set-uid": the hyphen is the word's.
    assert "should be installed set-uid root." in faq.text
    # The line set deeper after a colon (a command to type) is a block of its own.
    assert _block(faq, "startup_message off").text == "startup_message off"
    for piece in chunk(faq):
        if piece.text.startswith("Q:"):
            assert "\n\nA: " in piece.text  # the answer is in the question's passage
            assert piece.heading is not None
            assert piece.heading.endswith(piece.text.split("\n")[0])


def test_a_numbered_faq_gets_heading_paths_items_and_whole_urls() -> None:
    faq = _read("debian-faq-excerpt.txt", filetypes.TXT)
    _laid_out(faq)
    para = _block(faq, "This document gives frequently asked questions")
    assert para.heading == ("Chapter 1. Definitions and overview", "1.1. What is this FAQ?")
    assert para.text.endswith("answers to general beginners questions will be kept simple.")
    item = _block(faq, "* full featured:")
    assert item.kind is Kind.item
    assert item.heading[-1] == "1.2. What is Debian GNU/Linux?"
    # A URL the file wraps at "//" is one word again.
    assert "(https://www.debian.org/distrib/ftplist)" in item.text
    assert "non-free" in faq.text  # a hyphen written in the word stays
    pieces = chunk(faq)
    assert any(
        p.heading
        == "Chapter 1. Definitions and overview"
        + HEADING_SEPARATOR
        + "1.2. What is Debian GNU/Linux?"
        for p in pieces
    )


def test_a_pdf_loses_its_running_headers_and_page_numbers_and_keeps_its_paragraphs() -> None:
    pdf = _read("fhs-3.0-pages-2-7.pdf", filetypes.PDF)
    _laid_out(pdf)
    texts = [b.text for b in pdf.blocks]
    assert "The Root Filesystem" not in texts  # the running header of pages 4-7
    assert not any(re.fullmatch(r"[0-9]+", t) for t in texts)  # page numbers
    boot = _block(pdf, "• To boot a system, enough software")
    assert boot.kind is Kind.item
    # "start-" ends a line; the document writes "startup" elsewhere, so the word is rejoined.
    assert "boot loader information, and other essential startup data." in boot.text
    assert boot.heading == ("Chapter 3. The Root Filesystem", "3.1. Purpose")
    # A heading wrapped onto two lines is one heading.
    bin_options = _block(pdf, "The following programs, or symbolic links to programs")
    assert (
        bin_options.heading[1]
        == "3.4. /bin : Essential user command binaries (for use by all users)"
    )
    assert bin_options.heading[2] == "3.4.3. Specific Options"
    # A paragraph running on to the next page is one block, on the page it starts on.
    runs_on = _block(pdf, "Conversely, if no restoration from the root partition")
    assert (
        "If restoration of a system is planned through the network, then ftp or tftp"
        in runs_on.text
    )
    assert runs_on.page == 5
    assert pdf.page_at(runs_on.end - 1) == 5
    # A two-column table keeps its rows.
    table = _block(pdf, "Directory Description\nbin Essential command binaries")
    assert table.kind is Kind.pre
    for piece in chunk(pdf):
        assert pdf.page_at(piece.start) == piece.page
        assert pdf.page_at(piece.end - 1) == piece.page  # a passage never spans two pages


def test_markdown_headings_items_and_fenced_code() -> None:
    md = _read("zstd-CONTRIBUTING-excerpt.md", filetypes.MARKDOWN)
    _laid_out(md)
    item = _block(md, "Fork the repo and create your branch from dev.")
    assert item.kind is Kind.item
    assert item.heading == ("Contributing to Zstandard", "Pull Requests")
    joined = _block(md, 'New versions are being developed in the "dev" branch, or in their own')
    assert joined.text.endswith(
        'When they are deemed ready for a release, they are merged into "release".'
    )
    code = _block(md, "git checkout https://github.com/<username>/zstd")
    assert code.kind is Kind.pre
    assert code.text.endswith("\ncd zstd")


def test_html_pre_is_read_as_plain_text_and_headings_make_the_path() -> None:
    faq = (DOCUMENTS / "screen-FAQ-excerpt.txt").read_text()
    page = (
        "<html><head><title>Screen FAQ</title></head><body><h1>Screen</h1>"
        f"<h2>Known problems</h2><pre>{faq}</pre></body></html>"
    )
    html = parse(filetypes.HTML, page.encode())
    _laid_out(html)
    question = _block(html, "Q: Why is it impossible to download a file")
    assert question.kind is Kind.question
    assert question.heading[:2] == ("Screen", "Known problems")
    assert _block(html, "A: Screen always interprets").text.endswith("where you started screen.")


def test_a_hyphen_that_breaks_a_word_is_dropped_when_the_document_writes_it_whole() -> None:
    lines = [
        "The configuration of the system is kept in /etc, and a configu-",
        "ration file is a local file.",
    ]
    assert join_lines(lines, Words(lines)) == (
        "The configuration of the system is kept in /etc, and a configuration file is a local file."
    )
    assert (
        join_lines(["a non-", "free package"], Words(["a non-", "free package"]))
        == "a non-free package"
    )


def test_sentences_are_whole_and_never_cross_a_block() -> None:
    faq = _read("screen-FAQ-excerpt.txt", filetypes.TXT)
    spans = sentences(faq.text)
    texts = [faq.text[s:e] for s, e in spans]
    assert (
        "A: Screen always interprets control-sequences sent by the applications and "
        "translates/optimizes them for the current terminal type." in texts
    )
    assert (
        "(it is -CHILD on some systems)." not in texts
    )  # an abbreviation-free clause stays in its sentence
    for s, e in spans:
        assert "\n" not in faq.text[s:e]
    text = (
        "GNU sed exits with 0 on success, e.g. after a clean run. "
        "An exit status of 1 means an invalid command."
    )
    assert [text[s:e] for s, e in sentences(text)] == [
        "GNU sed exits with 0 on success, e.g. after a clean run.",
        "An exit status of 1 means an invalid command.",
    ]


def test_passages_start_at_a_block() -> None:
    for name, media_type in [
        ("debian-faq-excerpt.txt", filetypes.TXT),
        ("fhs-3.0-pages-2-7.pdf", filetypes.PDF),
        ("zstd-CONTRIBUTING-excerpt.md", filetypes.MARKDOWN),
    ]:
        extracted = _read(name, media_type)
        starts = {b.start for b in extracted.blocks}
        long_blocks = [b for b in extracted.blocks if b.end - b.start > 1000]
        for piece in chunk(extracted):
            assert extracted.text[piece.start : piece.end] == piece.text
            inside_long = any(b.start < piece.start < b.end for b in long_blocks)
            assert piece.start in starts or inside_long, (name, piece.text[:80])


def test_word_heading_styles_make_the_heading_path() -> None:
    import io

    import docx

    document = docx.Document()
    document.add_heading("Refund policy", 1)
    document.add_paragraph("Refunds are paid within 14 days.")
    document.add_heading("Exceptions", 2)
    document.add_paragraph("Gift cards are\nnot refunded.")  # a line break inside a paragraph
    out = io.BytesIO()
    document.save(out)
    extracted = parse(filetypes.DOCX, out.getvalue())
    _laid_out(extracted)
    gift = _block(extracted, "Gift cards")
    assert gift.text == "Gift cards are not refunded."
    assert gift.heading == ("Refund policy", "Exceptions")
    assert chunk(extracted)[0].heading == "Refund policy"


def test_a_command_and_its_output_keep_their_lines_in_hard_wrapped_text() -> None:
    faq = _read("debian-faq-lsb-excerpt.txt", filetypes.TXT)
    _laid_out(faq)
    output = _block(faq, "$ lsb_release -a")
    assert output.kind is Kind.pre
    assert output.text.splitlines()[:3] == [
        "$ lsb_release -a",
        "No LSB modules are available.",
        "Distributor ID: Debian",
    ]
    prose = _block(faq, "command. It will display the name of the distribution")
    assert prose.text.endswith("The following is an example run in a Debian system:")
    assert prose.heading == (
        "5.8. How can I check that I am using a Debian system, and what version it is?",
    )


def test_markdown_code_spans_keep_their_angle_brackets() -> None:
    """zstd's CONTRIBUTING.md names headers as code (`` `<stdlib.h>` ``): they are text, not
    HTML tags to strip, or the sentence reads "the dependencies allowed are , , ."."""
    line = (
        "The only external dependencies allowed are `<assert.h>`, `<stdlib.h>`, "
        "`<string.h>`, and **nothing** <em>else</em>, see [the guide](https://example.org).\n"
    )
    md = parse(filetypes.MARKDOWN, line.encode())
    assert md.text == (
        "The only external dependencies allowed are <assert.h>, <stdlib.h>, <string.h>, "
        "and nothing else, see the guide."
    )
