"""Hostile files through ingestion: the document ends ``failed`` at once (no retries), the
error names the bound, nothing of it is kept, and other people's documents still get done."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from charterflow.ingest.pipeline import PAUSE_ENV, Outcome, ingest, request_reingest
from charterflow.models import Document
from charterflow.services import filetypes
from charterflow.settings import Settings

from tests.api.conftest import BASE, Api, migrated, serve
from tests.hostile import files
from tests.ingest.conftest import wait_settled
from tests.ingest.test_pipeline import add_document, chunk_ids, document, make_ctx


def test_bomb_fails_once_naming_the_bound_and_keeps_no_chunks(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, ingest_max_elements=10**9)
    doc_id = add_document(ctx, b"An earlier, harmless version.", filetypes.TXT)
    assert ingest(ctx, doc_id) is Outcome.ready
    assert chunk_ids(ctx, doc_id)
    bomb = files.docx_bomb(50 * 1024 * 1024)
    ctx.storage.put(
        document(ctx, doc_id).storage_key, io.BytesIO(bomb), content_type=filetypes.DOCX
    )
    with ctx.session_factory() as db:
        doc = db.get(Document, doc_id)
        assert doc is not None
        doc.media_type = filetypes.DOCX
        request_reingest(db, doc)
        db.commit()
    assert ingest(ctx, doc_id) is Outcome.failed
    doc = document(ctx, doc_id)
    assert (doc.status, doc.attempts, doc.chunk_count) == ("failed", 1, 0)
    assert doc.error is not None
    assert "INGEST_MAX_UNPACK_RATIO" in doc.error
    assert chunk_ids(ctx, doc_id) == []  # not even the earlier version's passages


def test_deep_nesting_is_permanent_not_retried(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    doc_id = add_document(ctx, files.pdf_nested(50_000), filetypes.PDF)
    assert ingest(ctx, doc_id) is Outcome.failed  # not TransientError: no retry
    doc = document(ctx, doc_id)
    assert (doc.status, doc.attempts) == ("failed", 1)
    assert doc.error == (
        "the PDF nests its structure too deeply to be read (a damaged or hostile file)"
    )


def test_a_document_over_its_time_budget_fails_readably(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(tmp_path, ingest_time_budget_seconds=0.3)
    monkeypatch.setenv(PAUSE_ENV, "1")  # parsing "takes" a second
    doc_id = add_document(ctx, b"Slow to read.", filetypes.TXT)
    assert ingest(ctx, doc_id) is Outcome.failed
    doc = document(ctx, doc_id)
    assert (doc.status, doc.attempts, doc.chunk_count) == ("failed", 1, 0)
    assert doc.error is not None
    assert "(INGEST_TIME_BUDGET_SECONDS)" in doc.error
    assert chunk_ids(ctx, doc_id) == []


@pytest.fixture(scope="module")
def dev_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The development server: SQLite and the in-process ingest queue."""
    tmp = tmp_path_factory.mktemp("hostile-dev")
    settings = Settings(
        _env_file=None, database_url=f"sqlite:{tmp}/app.db", upload_path=tmp / "up", **BASE
    )
    with serve("sqlite", migrated(settings)) as running:
        yield running


HOSTILE = {
    "bomb.docx": (files.docx_bomb(100 * 1024 * 1024), "zip bomb"),
    "pages.pdf": (files.pdf_page_tree_bomb(300), "page tree repeats a node"),
    "nested.pdf": (files.pdf_nested(50_000), "too deeply"),
    "line.txt": (files.huge_line(6_000_000), "INGEST_MAX_CHARS"),
}


def test_hostile_uploads_fail_and_another_users_upload_is_ready(dev_api: Api) -> None:
    attacker, victim = dev_api.register("Mallory"), dev_api.register("Victor")
    hostile_nb, victim_nb = dev_api.notebook(attacker), dev_api.notebook(victim)
    hostile_ids = {}
    for name, (data, _) in HOSTILE.items():
        r = dev_api.upload(attacker, hostile_nb["id"], name, data)
        assert r.status_code == 202, r.text
        hostile_ids[name] = r.json()["id"]
    r = dev_api.upload(victim, victim_nb["id"], "note.txt", b"Small and harmless.")
    assert r.status_code == 202, r.text
    small = r.json()["id"]
    mine = wait_settled(dev_api, victim, [small])
    assert mine[small]["status"] == "ready"
    theirs = wait_settled(dev_api, attacker, list(hostile_ids.values()))
    for name, (_, reason) in HOSTILE.items():
        doc = theirs[hostile_ids[name]]
        assert (doc["status"], doc["chunk_count"]) == ("failed", 0), (name, doc)
        assert reason in doc["error"], (name, doc["error"])
