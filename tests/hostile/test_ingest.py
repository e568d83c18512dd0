"""Hostile files through ingestion: the document ends ``failed`` at once (no retries), the
error names the bound, nothing of it is kept, and other people's documents still get done."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from charterflow.ingest import pipeline
from charterflow.ingest.actors import QUEUE, declare_ingest_actor
from charterflow.ingest.errors import Deferred
from charterflow.ingest.limits import Limits
from charterflow.ingest.pipeline import (
    PAUSE_ENV,
    IngestContext,
    Outcome,
    claim,
    ingest,
    request_reingest,
)
from charterflow.models import Document
from charterflow.services import filetypes
from charterflow.settings import Settings
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import update

from tests.api.conftest import API, BASE, Api, migrated, serve
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


def add_sibling(ctx: IngestContext, doc_id: str, data: bytes) -> str:
    """Another document by the same uploader, in the same notebook."""
    sibling = add_document(ctx, data, filetypes.TXT)
    with ctx.session_factory() as db:
        first = db.get(Document, doc_id)
        assert first is not None
        db.execute(
            update(Document)
            .where(Document.id == sibling)
            .values(
                created_by=first.created_by,
                workspace_id=first.workspace_id,
                notebook_id=first.notebook_id,
            )
        )
        db.commit()
    return sibling


def test_one_uploader_gets_a_bounded_share_of_the_workers(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, ingest_user_concurrency=1)
    first = add_document(ctx, b"First of many.", filetypes.TXT)
    second = add_sibling(ctx, first, b"Second of many.")
    assert claim(ctx, first) == 1  # the uploader's one document in progress
    with pytest.raises(Deferred):
        ingest(ctx, second)
    assert (document(ctx, second).status, document(ctx, second).attempts) == ("pending", 0)
    other = add_document(ctx, b"Someone else's note.", filetypes.TXT)  # another uploader
    assert ingest(ctx, other) is Outcome.ready
    with ctx.session_factory() as db:  # the first finishes (its lease ends): the second goes
        db.execute(update(Document).where(Document.id == first).values(status="ready"))
        db.commit()
    assert ingest(ctx, second) is Outcome.ready


def test_a_deferred_message_goes_back_to_the_queue_without_a_retry() -> None:
    broker = StubBroker()
    settings = Settings(_env_file=None)

    def handler(_doc_id: str) -> None:
        raise Deferred("busy uploader")

    actor = declare_ingest_actor(broker, settings, handler)
    actor.fn("doc-1")
    delayed = broker.queues[f"{QUEUE}.DQ"]
    message = delayed.get_nowait()
    assert b"doc-1" in message


def test_a_large_slow_upload_does_not_hold_up_a_small_one(
    dev_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_parse = pipeline.parse

    def slow_for_large(media_type: str, data: bytes, limits: Limits, **kwargs: Any) -> Any:
        if len(data) > 2 * 1024 * 1024:
            release.wait(120)
        return real_parse(media_type, data, limits, **kwargs)

    monkeypatch.setattr(pipeline, "parse", slow_for_large)
    big, small = dev_api.register("Big"), dev_api.register("Small")
    r = dev_api.upload(big, dev_api.notebook(big)["id"], "big.txt", b"word " * 600_000)
    assert r.status_code == 202, r.text
    big_id = r.json()["id"]
    r = dev_api.upload(small, dev_api.notebook(small)["id"], "small.txt", b"Tiny note.")
    small_id = r.json()["id"]
    try:
        assert wait_settled(dev_api, small, [small_id])[small_id]["status"] == "ready"
        still = dev_api.client.get(f"{API}/documents/{big_id}", headers=big.headers).json()
        assert still["status"] in {"pending", "processing"}  # the large one is still at it
    finally:
        release.set()
    assert wait_settled(dev_api, big, [big_id])[big_id]["status"] == "ready"
