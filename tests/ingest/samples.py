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
