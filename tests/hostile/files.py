"""Hostile files, generated small and deterministic (nothing large is committed).

Each reproduces an attack from the security review (issue 20): zip bombs, a page tree that
repeats one node, nesting deep enough to exhaust a recursive parser, huge single lines.
The benchmarks (bench/hostile.py) time the same files at their full size.
"""

from __future__ import annotations

import io
import zipfile

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)


def docx(body_parts: list[tuple[str, int]]) -> bytes:
    """A minimal .docx whose body is each ``(xml, times)`` repeated, streamed into the zip
    (so a bomb of hundreds of megabytes is written without ever being held in memory)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            part.write(f'<?xml version="1.0"?><w:document xmlns:w="{W_NS}"><w:body>'.encode())
            for xml, times in body_parts:
                if times >= 4096:
                    block = xml.encode() * 4096
                    for _ in range(times // 4096):
                        part.write(block)
                part.write(xml.encode() * (times % 4096))
            part.write(b"</w:body></w:document>")
    return out.getvalue()


def paragraph(text: str) -> str:
    return f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"


def docx_bomb(unpacked_bytes: int) -> bytes:
    """Empty paragraphs, compressed about a thousand to one (the review's 17 KB file)."""
    return docx([("<w:p/>", unpacked_bytes // 6)])


def docx_text(paragraphs: int, words: int = 12) -> bytes:
    """A plain, legitimate-looking document: ``paragraphs`` numbered sentences."""
    body = "".join(
        paragraph(" ".join(f"w{i}x{j}" for j in range(words))) for i in range(paragraphs)
    )
    return docx([(body, 1)])


def docx_nested(depth: int) -> bytes:
    """Elements nested ``depth`` deep inside one paragraph."""
    return docx([("<w:p><w:r>", 1), ("<w:x>", depth), ("</w:x>", depth), ("</w:r></w:p>", 1)])


def _pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF with a correct cross-reference table from numbered object bodies (1-based)."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        root,
        xref,
    )
    return bytes(out)


_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def _page(parent: int, contents: int, font: int) -> bytes:
    return (
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 200 200] /Contents %d 0 R "
        b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (parent, contents, font)
    )


def _stream(text: bytes) -> bytes:
    content = b"BT /F1 12 Tf 20 100 Td (" + text + b") Tj ET"
    return b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"


def pdf_page_tree_bomb(fanout: int) -> bytes:
    """The review's 4 KB file: a page tree whose two levels each list one node ``fanout``
    times, so a naive reader sees ``fanout``² pages."""
    kids_of_root = b" ".join([b"3 0 R"] * fanout)
    kids_of_mid = b" ".join([b"4 0 R"] * fanout)
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids_of_root, fanout * fanout),
            b"<< /Type /Pages /Parent 2 0 R /Kids [%s] /Count %d >>" % (kids_of_mid, fanout),
            _page(3, 5, 6),
            _stream(b"Repeated page"),
            _FONT,
        ]
    )


def pdf_pages(count: int) -> bytes:
    """A well-formed PDF of ``count`` distinct pages, each with a line of text."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", _FONT]
    kids = []
    for number in range(count):
        page_obj = len(objects) + 1
        objects.append(_page(2, page_obj + 1, 3))
        objects.append(_stream(b"Page %d says hello" % (number + 1)))
        kids.append(b"%d 0 R" % page_obj)
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), count)
    return _pdf(objects)


def pdf_nested(depth: int) -> bytes:
    """A catalog holding an array nested ``depth`` levels deep (the review's RecursionError)."""
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R /Junk " + b"[" * depth + b"]" * depth + b" >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            _page(2, 4, 5),
            _stream(b"Nested"),
            _FONT,
        ]
    )


def html_nested(depth: int) -> bytes:
    return b"<html><body>" + b"<div>" * depth + b"deep" + b"</div>" * depth + b"</body></html>"


def huge_line(chars: int) -> bytes:
    """One line with no space, newline or sentence end: nothing for the chunker to cut on."""
    return b"a" * chars


def nfkc_expansion(count: int) -> bytes:
    """U+FDFA is 3 bytes of UTF-8 and 18 characters after NFKC."""
    return "\ufdfa".encode() * count
