"""Content sniffing and file-name sanitising, on bytes the HTTP clients would not send."""

from __future__ import annotations

import io

import pytest
from charterflow.services.filetypes import UnsupportedType, sanitize_filename
from charterflow.services.uploads import UploadTooLarge, inspect


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("C:\\Users\\ada\\report.pdf", "report.pdf"),
        ("../../x/\x00evil\x07.txt", "evil.txt"),
        ("\u202etxt.exe", "txt.exe"),  # a right-to-left override cannot disguise the name
        ("...", "upload"),
        ("", "upload"),
        ("a" * 300 + ".md", "a" * 197 + ".md"),
    ],
)
def test_sanitize_filename(raw: str, clean: str) -> None:
    assert sanitize_filename(raw) == clean


@pytest.mark.parametrize(
    ("data", "name", "media_type"),
    [
        (b"a,b,c\n1,2,3\n4,5,6\n", "data.txt", "text/plain"),  # the name picks among texts
        (b"a,b,c\n1,2,3\n4,5,6\n", "data", "text/csv"),
        (b"Just a sentence, with a comma.\nAnother, with two, commas.\n", "x.csv", "text/plain"),
        (b"\xef\xbb\xbf<html><p>x</p></html>", "x.txt", "text/html"),  # BOM, then HTML
        (b"%PDF-1.7\n...", "x.txt", "application/pdf"),
    ],
)
def test_inspect_decides_from_content(data: bytes, name: str, media_type: str) -> None:
    assert inspect(io.BytesIO(data), name, 10_000).media_type == media_type


@pytest.mark.parametrize(
    "data", [b"text\x00with a NUL", b"\x1b[31mterminal escapes", b"\xff\xfe\x00\x00"]
)
def test_control_characters_and_non_utf8_are_not_text(data: bytes) -> None:
    with pytest.raises(UnsupportedType):
        inspect(io.BytesIO(data), "x.txt", 10_000)


def test_inspect_stops_reading_past_the_limit() -> None:
    class Endless(io.RawIOBase):
        reads = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            self.reads += 1
            buffer[:] = b"a" * len(buffer)
            return len(buffer)

    stream = Endless()
    with pytest.raises(UploadTooLarge):
        inspect(io.BufferedReader(stream), "x.txt", 3 * 1024 * 1024)
    assert stream.reads < 10
