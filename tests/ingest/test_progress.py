"""Documents report their real stage and progress through the API (issue 24, item 7):
queued, reading (pages read of a paged document), chunking, embedding (passages embedded),
then ready or failed; ``status`` is unchanged. Real API, real SQLite, in-process queue, a
real PDF (tests/ingest/documents)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from charterflow.ingest.parsers import parse
from charterflow.ingest.pipeline import PAUSE_ENV, Outcome, Progress, claim, ingest
from charterflow.models import DocumentStage
from charterflow.schemas.notebooks import DocumentOut
from charterflow.services import filetypes
from charterflow.settings import Settings

from tests.api.conftest import API, BASE, Api, migrated, serve
from tests.ingest.conftest import wait_settled
from tests.ingest.samples import CORRUPT_PDF
from tests.ingest.test_pipeline import add_document, document, make_ctx
from tests.support.processes import wait_until

PDF = (Path(__file__).parent / "documents" / "fhs-3.0-pages-2-7.pdf").read_bytes()


def test_reading_a_pdf_counts_its_pages() -> None:
    seen: list[tuple[int, int]] = []
    parse(filetypes.PDF, PDF, on_page=lambda done, total: seen.append((done, total)))
    assert seen == [(n, 7) for n in range(1, 8)]


def test_each_stage_is_written_while_the_attempt_owns_the_document(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    doc_id = add_document(ctx, PDF, filetypes.PDF)
    assert DocumentOut.model_validate(document(ctx, doc_id)).stage is DocumentStage.queued
    attempt = claim(ctx, doc_id)
    assert attempt is not None
    out = DocumentOut.model_validate(document(ctx, doc_id))
    assert (out.status, out.stage, out.progress) == ("processing", "reading", None)
    progress = Progress(ctx, doc_id, attempt)
    progress.page(7, 7)
    out = DocumentOut.model_validate(document(ctx, doc_id))
    assert out.progress is not None
    assert (out.stage, out.progress.done, out.progress.total) == ("reading", 7, 7)
    progress.stage(DocumentStage.embedding, 64, 100)
    out = DocumentOut.model_validate(document(ctx, doc_id))
    assert out.progress is not None
    assert (out.stage, out.progress.done, out.progress.total) == ("embedding", 64, 100)
    Progress(ctx, doc_id, attempt + 1).stage(DocumentStage.chunking)  # a stale attempt
    assert document(ctx, doc_id).stage == "embedding"


def test_a_document_ingested_ends_ready_with_nothing_to_count(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    doc_id = add_document(ctx, PDF, filetypes.PDF)
    assert ingest(ctx, doc_id) is Outcome.ready
    out = DocumentOut.model_validate(document(ctx, doc_id))
    assert (out.status, out.stage, out.progress) == ("ready", "ready", None)


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setenv(PAUSE_ENV, "2")  # after reading, before chunking: a stage to see
    settings = migrated(
        Settings(
            _env_file=None,
            database_url=f"sqlite:{tmp_path}/app.db",
            upload_path=tmp_path / "up",
            **BASE,
        )
    )
    with serve("sqlite", settings) as running:
        yield running


def test_the_api_reports_the_stage_while_ingesting_and_after(api: Api) -> None:
    owner = api.register("Stage")
    notebook = api.notebook(owner)
    r = api.upload(owner, notebook["id"], "fhs.pdf", PDF)
    assert r.status_code == 202, r.text
    created = r.json()
    assert created["stage"] in {"queued", "reading"}
    seen: dict[str, Any] = {}

    def chunking() -> bool:
        got = api.client.get(f"{API}/documents/{created['id']}", headers=owner.headers).json()
        seen.update(got)
        return got["stage"] == "chunking"

    wait_until(chunking, 60, f"the chunking stage ({seen})", interval=0.1)
    assert seen["status"] == "processing"
    broken = api.upload(owner, notebook["id"], "broken.pdf", CORRUPT_PDF).json()
    docs = wait_settled(api, owner, [created["id"], broken["id"]])
    assert (docs[created["id"]]["stage"], docs[created["id"]]["progress"]) == ("ready", None)
    assert docs[broken["id"]]["stage"] == "failed"
    assert docs[broken["id"]]["error"] == "the PDF is damaged or not a PDF and cannot be read"
    listed = api.client.get(
        f"{API}/notebooks/{notebook['id']}/documents", headers=owner.headers
    ).json()
    assert {d["id"]: d["stage"] for d in listed["items"]} == {
        created["id"]: "ready",
        broken["id"]: "failed",
    }
