"""Hostile files through the real ingestion pipeline: time and peak memory per file.

Each file is ingested in a fresh process (SQLite, local files, default bounds, hashing
embedder), after a small warm-up document so that every parser is already imported. The
process's peak RSS is reset (``/proc/self/clear_refs``) after the warm-up, so the figure is
the extra memory the hostile file cost, over the idle worker. The same pipeline runs in
``charterflow worker`` and in the development server, so this is both their cost.

    python -m bench.hostile [--only name,...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from charterflow.services import filetypes

from tests.hostile import files

#: Goal from issue 20: a hostile file costs at most this much over the idle process.
RSS_BOUND_MB = 300
MiB = 1024 * 1024

CASES: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "docx bomb 105 MB": (filetypes.DOCX, lambda: files.docx_bomb(105 * 1000 * 1000), "review"),
    "docx empty paragraphs 11.5 MB": (
        filetypes.DOCX,
        lambda: files.docx([("<w:p/>", 11_500_000 // 6)]),
        "review",
    ),
    "pdf page tree 300x300": (filetypes.PDF, lambda: files.pdf_page_tree_bomb(300), "review"),
    "pdf nested 50,000 deep": (filetypes.PDF, lambda: files.pdf_nested(50_000), "review"),
    "pdf 2,500 real pages": (filetypes.PDF, lambda: files.pdf_pages(2_500), "over pages"),
    "html nested 100,000 deep": (filetypes.HTML, lambda: files.html_nested(100_000), "bound"),
    "txt one 40 MB line": (filetypes.TXT, lambda: files.huge_line(40 * MiB), "bound"),
    "txt NFKC x18 expansion": (filetypes.TXT, lambda: files.nfkc_expansion(1_000_000), "bound"),
    "docx 3.2 M characters (allowed)": (
        filetypes.DOCX,
        lambda: files.docx_text(30_000),
        "largest allowed",
    ),
    "txt 4.9 M characters (allowed)": (
        filetypes.TXT,
        lambda: (b"word " * 199 + b"end.\n") * 4_900,
        "largest allowed",
    ),
}


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure_one(media_type: str, path: Path) -> dict[str, Any]:
    """In this (fresh) process: warm up, reset the peak, ingest ``path``, report."""
    from charterflow.db import migrate_database
    from charterflow.ingest.pipeline import IngestContext, ingest
    from charterflow.models import Document
    from charterflow.settings import Settings

    from tests.ingest.test_pipeline import add_document

    root = path.parent
    settings = migrate_database(
        Settings(
            _env_file=None,
            database_url=f"sqlite:{root}/app.db",
            upload_path=root / "uploads",
            log_level="ERROR",
        )
    )
    ctx = IngestContext.from_settings(settings)

    for kind, data in (
        (filetypes.PDF, files.pdf_pages(2)),
        (filetypes.DOCX, files.docx_text(5)),
        (filetypes.HTML, b"<p>warm</p>"),
        (filetypes.TXT, b"warm up"),
    ):
        ingest(ctx, add_document(ctx, data, kind))
    doc_id = add_document(ctx, path.read_bytes(), media_type)
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    idle = _rss_mb("VmRSS")
    started = time.perf_counter()
    outcome = ingest(ctx, doc_id)
    seconds = time.perf_counter() - started
    peak = _rss_mb("VmHWM")
    with ctx.session_factory() as db:
        doc = db.get(Document, doc_id)
        assert doc is not None
        error, chunks = doc.error, doc.chunk_count
    return {
        "outcome": str(outcome),
        "error": error,
        "chunks": chunks,
        "seconds": round(seconds, 3),
        "idle_rss_mb": round(idle, 1),
        "peak_rss_mb": round(peak, 1),
        "peak_over_idle_mb": round(peak - idle, 1),
    }


def run(only: list[str] | None = None) -> dict[str, Any]:
    rows = []
    for name, (media_type, make, why) in CASES.items():
        if only and name not in only:
            continue
        with tempfile.TemporaryDirectory(prefix="cf-hostile-") as tmp:
            path = Path(tmp) / "input"
            data = make()
            size = len(data)
            path.write_bytes(data)
            del data
            out = subprocess.run(
                [sys.executable, "-m", "bench.hostile", "--measure", media_type, str(path)],
                capture_output=True,
                text=True,
                check=True,
                timeout=900,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append({"file": name, "kind": why, "bytes": size, **result})
        print(
            f"  {name}: {result['outcome']} in {result['seconds']:.2f} s, "
            f"+{result['peak_over_idle_mb']:.0f} MB",
            flush=True,
        )
    worst = max((r["peak_over_idle_mb"] for r in rows), default=None)
    return {"rows": rows, "rss_bound_mb": RSS_BOUND_MB, "worst_peak_over_idle_mb": worst}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__)
    parser.add_argument("--measure", nargs=2, metavar=("MEDIA_TYPE", "PATH"), help="internal")
    parser.add_argument("--only", default="", help="comma list of file names")
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure_one(args.measure[0], Path(args.measure[1]))))
        return 0
    from bench.common import write_result

    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or None
    write_result("hostile", run(chosen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
