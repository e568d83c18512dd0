"""Documents of every supported type, each stating facts that no other sample states."""

from __future__ import annotations

import io

import docx
from fpdf import FPDF

FILler = (
    "This section restates general background about the team, its weekly meetings, the shared "
    "calendar and the way decisions are written down so that newcomers can follow them. "
)


def pdf(pages: list[str]) -> bytes:
    """A PDF with one page per string (real text objects, extractable by pypdf)."""
    doc = FPDF()
    doc.set_font("helvetica", size=11)
    for text in pages:
        doc.add_page()
        doc.multi_cell(0, 6, text)
    return bytes(doc.output())


def docx_bytes(paragraphs: list[str]) -> bytes:
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


PDF_PAGE_1 = (
    "Falcon launch plan. The Falcon kickoff meeting is scheduled for the third of March. "
    + (FILler * 3)
)
PDF_PAGE_2 = (
    "Budget. The Falcon pilot budget is capped at forty-eight thousand euros, approved by the "
    "finance committee. " + FILler * 2
)
PDF_PAGE_3 = "Risks. The main risk is the delayed delivery of the telemetry sensors. " + FILler

HTML = b"""<!DOCTYPE html><html><head><title>On-call handbook</title>
<style>.x { color: red }</style><script>var trackingPixelZebra = 1;</script></head>
<body><h1>On-call</h1><p>The on-call rotation changes every Tuesday at noon.</p>
<div hidden>invisible quokka paragraph</div><p style="display:none">another quokka</p>
<noscript>enable javascript quokka</noscript></body></html>"""

MARKDOWN = b"""# Deployment guide

Production deploys go through the **blue-green** pipeline, see [the runbook](https://x.example).

- Rollbacks take under five minutes.
"""

TEXT = b"The espresso machine on floor four is descaled every Friday morning by facilities.\n"

DOCX_PARAGRAPHS = [
    "Refund policy",
    "Customers may request a refund within thirty days of purchase.",
    "Refunds are paid back to the original payment method.",
]


def all_samples() -> dict[str, bytes]:
    return {
        "falcon-plan.pdf": pdf([PDF_PAGE_1, PDF_PAGE_2, PDF_PAGE_3]),
        "refunds.docx": docx_bytes(DOCX_PARAGRAPHS),
        "oncall.html": HTML,
        "deploy.md": MARKDOWN,
        "espresso.txt": TEXT,
    }


CORRUPT_PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nthis is not a real pdf\n%%EOF"


def pptx_bytes(slides: list[list[str]]) -> bytes:
    """A presentation written by python-pptx: one slide per list, one text box per string."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for texts in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[6])  # blank
        for i, text in enumerate(texts):
            box = slide.shapes.add_textbox(Inches(1), Inches(1 + i), Inches(8), Inches(1))
            box.text_frame.text = text
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def xlsx_bytes(sheets: dict[str, list[list[object]]]) -> bytes:
    """A workbook written by openpyxl: one sheet per entry, rows as given."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def epub_bytes(chapters: list[tuple[str, str]]) -> bytes:
    """A book written by EbookLib: ``(title, XHTML body)`` chapters in reading order."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("charterflow-sample")
    book.set_title("Sample book")
    book.set_language("en")
    items = []
    for n, (title, body) in enumerate(chapters, start=1):
        chapter = epub.EpubHtml(title=title, file_name=f"chapter{n}.xhtml", lang="en")
        chapter.content = f"<html><body><h1>{title}</h1>{body}</body></html>"
        book.add_item(chapter)
        items.append(chapter)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    out = io.BytesIO()
    epub.write_epub(out, book)
    return out.getvalue()


def scanned_pdf(pages: int = 2) -> bytes:
    """A PDF whose pages are images only, as a scanner makes them: no text layer."""
    from PIL import Image

    doc = FPDF()
    for _ in range(pages):
        doc.add_page()
        doc.image(Image.new("L", (200, 280), color=235), x=10, y=10, w=190)
    return bytes(doc.output())
