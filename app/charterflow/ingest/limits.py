"""Bounds on the work one document may cause: sizes, counts and a time budget.

Every bound is checked *while* the work happens (bytes counted as they are decompressed,
characters as they are produced, pages before any is extracted), so a hostile file fails
after a bounded amount of memory and time, not after it has done the damage. Going over a
bound raises ``OverLimit``, a ``BadDocument`` whose message names the setting.
"""

from __future__ import annotations

import ctypes
import struct
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from charterflow.ingest.errors import BadDocument
from charterflow.settings import Settings

#: Decompressed bytes below this never count as a suspicious ratio (small, repetitive XML).
RATIO_FLOOR_BYTES = 1024 * 1024
#: A zip entry's local header: 26 fixed bytes, then the name and extra-field lengths.
_LOCAL_HEADER = struct.Struct("<26sHH")


class OverLimit(BadDocument):
    """The document is larger or slower than a configured bound; retrying cannot help."""


class OverBudget(OverLimit):
    """Raised asynchronously in the ingesting thread when its time budget has run out."""

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message or "processing took longer than allowed (INGEST_TIME_BUDGET_SECONDS)"
        )


@dataclass(frozen=True)
class Limits:
    """The ``INGEST_MAX_*`` settings, as the parsers and the chunker use them."""

    max_chars: int
    max_pages: int
    max_chunks: int
    max_elements: int
    max_unpacked_bytes: int
    max_unpack_ratio: int
    time_budget_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_chars=settings.ingest_max_chars,
            max_pages=settings.ingest_max_pages,
            max_chunks=settings.ingest_max_chunks,
            max_elements=settings.ingest_max_elements,
            max_unpacked_bytes=settings.ingest_max_unpacked_bytes,
            max_unpack_ratio=settings.ingest_max_unpack_ratio,
            time_budget_seconds=settings.ingest_time_budget_seconds,
        )

    def chars(self, count: int) -> None:
        if count > self.max_chars:
            raise OverLimit(
                f"the document has more than {self.max_chars:,} characters of text "
                "(INGEST_MAX_CHARS)"
            )

    def pages(self, count: int) -> None:
        if count > self.max_pages:
            raise OverLimit(
                f"the document has more than {self.max_pages:,} pages (INGEST_MAX_PAGES)"
            )

    def chunks(self, count: int) -> None:
        if count > self.max_chunks:
            raise OverLimit(
                f"the document makes more than {self.max_chunks:,} passages (INGEST_MAX_CHUNKS)"
            )

    def elements(self, count: int) -> None:
        if count > self.max_elements:
            raise OverLimit(
                f"the document has more than {self.max_elements:,} paragraphs or elements "
                "(INGEST_MAX_ELEMENTS)"
            )


#: Generous bounds for callers that parse trusted input (tests, tools).
UNBOUNDED = Limits(
    max_chars=10**12,
    max_pages=10**9,
    max_chunks=10**9,
    max_elements=10**12,
    max_unpacked_bytes=10**15,
    max_unpack_ratio=10**9,
    time_budget_seconds=10**9,
)


class BoundedReader:
    """A read-only stream of one zip member's decompressed bytes that stops at the size and
    ratio bounds as the bytes come out, before they can pile up anywhere.

    It inflates the member itself, a few kilobytes of input at a time, so the ratio compares
    the bytes produced with the compressed bytes consumed *so far*: a bomb stops once it has
    produced ``RATIO_FLOOR_BYTES``."""

    STEP = 16 * 1024

    def __init__(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits) -> None:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BadDocument("the document uses a zip compression method that is not supported")
        if info.flag_bits & 0x1:
            raise BadDocument("the document is encrypted")
        fp = archive.fp
        if fp is None:
            raise BadDocument("the document is damaged and cannot be read")
        fp.seek(info.header_offset)
        header = fp.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise BadDocument("the document is damaged and cannot be read")
        _, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        fp.seek(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
        self._raw = fp.read(info.compress_size)
        self._inflate = (
            zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
        )
        self._limits = limits
        self._name = f"the document's part {info.filename}"
        self._pos = 0
        self._pending = b""
        self.count = 0

    def _next_block(self, size: int) -> bytes:
        if self._inflate is None:
            block = self._raw[self._pos : self._pos + size]
            self._pos += len(block)
            return block
        while True:
            if self._pending:
                data, self._pending = self._pending, b""
            else:
                data = self._raw[self._pos : self._pos + self.STEP]
                self._pos += len(data)
            block = self._inflate.decompress(data, size)
            self._pending = self._inflate.unconsumed_tail
            if block or (not data and not self._pending) or self._inflate.eof:
                return block

    def consumed(self) -> int:
        return max(self._pos - len(self._pending), 1)

    def read(self, size: int = -1) -> bytes:
        block = self._next_block(64 * 1024 if size is None or size < 0 else min(size, 1 << 20))
        self.count += len(block)
        limits = self._limits
        if self.count > limits.max_unpacked_bytes:
            raise OverLimit(
                f"{self._name} unpacks to more than {limits.max_unpacked_bytes:,} bytes "
                "(INGEST_MAX_UNPACKED_BYTES); it may be a zip bomb"
            )
        if (
            self.count > RATIO_FLOOR_BYTES
            and self.count > limits.max_unpack_ratio * self.consumed()
        ):
            raise OverLimit(
                f"{self._name} unpacks to more than {limits.max_unpack_ratio} times its packed "
                "size (INGEST_MAX_UNPACK_RATIO); it may be a zip bomb"
            )
        return block


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else ctypes.c_void_p(0)
    )


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Cut the calling thread's work off after ``seconds``: ``OverBudget`` is raised in it at
    its next Python instruction (as Dramatiq's time limit does), so a slow parser stops even
    between our own checks. The budget ends cleanly when the block leaves first."""
    thread_id = threading.get_ident()
    lock = threading.Lock()
    state = {"active": True, "fired": False}

    def fire() -> None:
        with lock:
            if state["active"]:
                state["fired"] = True
                _raise_in(thread_id, OverBudget)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    started = time.monotonic()
    timer.start()
    try:
        yield
    except OverBudget:
        raise OverBudget(
            f"processing took longer than {seconds:g} seconds (INGEST_TIME_BUDGET_SECONDS); "
            f"stopped after {time.monotonic() - started:.0f} s"
        ) from None
    finally:
        with lock:
            state["active"] = False
            timer.cancel()
            if state["fired"]:
                _raise_in(thread_id, None)  # clear an exception not yet delivered
