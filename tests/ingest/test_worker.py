"""Production path: the real API on PostgreSQL (pgvector), real Redis, and `charterflow worker`
subprocesses consuming the Dramatiq queue."""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from charterflow.models import Chunk, Document
from charterflow.settings import Settings
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.api.conftest import API, BASE, Api, migrated, serve
from tests.ingest.conftest import wait_settled
from tests.ingest.samples import CORRUPT_PDF, TEXT, all_samples
from tests.support.processes import ManagedProcess, free_port, wait_until

pytestmark = pytest.mark.services


@pytest.fixture
def settings(postgres_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return migrated(
        Settings(
            _env_file=None,
            database_url=postgres_url,
            redis_url=redis_url,
            upload_path=tmp_path / "uploads",
            worker_heartbeat_timeout_seconds=2,
            ingest_lease_seconds=6,
            sweep_interval_seconds=1,
            **BASE,
        )
    )


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with serve("postgres", settings) as running:
        yield running


class WorkerProcess(ManagedProcess):
    health_url: str


def start_worker(settings: Settings, log: Path, **extra_env: str) -> WorkerProcess:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url or "",
            "UPLOAD_PATH": str(settings.upload_path),
            "WORKER_HEALTH_PORT": str(port),
            "WORKER_HEARTBEAT_TIMEOUT_SECONDS": str(settings.worker_heartbeat_timeout_seconds),
            "INGEST_LEASE_SECONDS": str(settings.ingest_lease_seconds),
            "SWEEP_INTERVAL_SECONDS": str(settings.sweep_interval_seconds),
            "LOG_FORMAT": "json",
            **extra_env,
        }
    )
    proc = WorkerProcess(
        "worker", [sys.executable, "-m", "charterflow", "worker", "--threads", "2"], log, env=env
    )
    proc.health_url = f"http://127.0.0.1:{port}"
    proc.start()
    proc.wait_ready(lambda: httpx.get(f"{proc.health_url}/health/live").status_code == 200)
    return proc


def test_every_type_is_ingested_and_answers_cite_document_and_page(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        owner = api.register("Ops")
        notebook = api.notebook(owner)["id"]
        ids = {}
        for name, data in {"broken.pdf": CORRUPT_PDF, **all_samples()}.items():
            r = api.upload(owner, notebook, name, data)
            assert r.status_code == 202, r.text
            ids[name] = r.json()["id"]
        docs = wait_settled(api, owner, list(ids.values()))

        broken = docs.pop(ids["broken.pdf"])
        assert broken["status"] == "failed"
        assert broken["error"] == "the PDF is damaged or not a PDF and cannot be read"
        assert all(d["status"] == "ready" and d["chunk_count"] > 0 for d in docs.values()), docs
        with Session(api.engine) as db:
            attempts = db.scalar(select(Document.attempts).where(Document.id == ids["broken.pdf"]))
            models = set(db.scalars(select(Chunk.embedding_model).distinct()))
        assert attempts == 1  # a bad document is not retried
        assert models == {"hashing-v1"}

        r = api.client.get(
            f"{API}/notebooks/{notebook}/search",
            params={"q": "telemetry sensors delivery risk"},
            headers=owner.headers,
        )
        top = r.json()["items"][0]
        assert (top["document_id"], top["page"]) == (ids["falcon-plan.pdf"], 3)
        assert top["lexical_rank"] == 1  # PostgreSQL full-text search took part
        assert top["vector_rank"] == 1  # and so did pgvector

        r = api.client.post(
            f"{API}/notebooks/{notebook}/ask",
            json={"question": "What is the Falcon pilot budget?"},
            headers=owner.headers,
        )
        body = r.json()
        assert body["mode"] == "extractive"
        cite = body["citations"][0]
        assert (cite["document_id"], cite["page"]) == (ids["falcon-plan.pdf"], 2)
        assert "forty-eight thousand euros" in body["answer"]

        r = api.client.post(
            f"{API}/notebooks/{notebook}/ask",
            json={"question": "How do production deploys work?"},
            headers=owner.headers,
        )
        assert r.json()["citations"][0]["document_id"] == ids["deploy.md"]

        # Each ready document's follow-up (store_sentences, same queue, lower priority)
        # then stores its chunks' sentence vectors; answers above did not wait for it.
        def sentence_vectors_stored() -> bool:
            with Session(api.engine) as db:
                return not db.scalar(
                    select(func.count())
                    .select_from(Chunk)
                    .where(Chunk.sentence_embeddings.is_(None))
                )

        wait_until(sentence_vectors_stored, 120, "the follow-ups' sentence vectors")
        wait_until(
            lambda: (
                "charterflow_ingest_queue_depth 0.0"
                in httpx.get(f"{worker.health_url}/metrics").text
            ),
            30,
            "an empty queue",
        )
        metrics = httpx.get(f"{worker.health_url}/metrics").text
        assert 'charterflow_ingest_documents_total{outcome="ready"} 5.0' in metrics
        assert 'charterflow_ingest_documents_total{outcome="failed"} 1.0' in metrics
        assert "charterflow_ingest_queue_depth 0.0" in metrics
        # The worker's database: pool gauges and statement durations (appmetrics.py).
        assert "charterflow_db_pool_checked_out " in metrics
        assert "charterflow_ingest_oldest_pending_seconds 0.0" in metrics  # all ingested
        assert 'charterflow_db_query_duration_seconds_count{statement="update"}' in metrics
        assert 'charterflow_embedder_info{model="hashing-v1",provider="hashing"} 1.0' in metrics
        embedded = re.search(r"^charterflow_ingest_chunks_embedded_total (\S+)$", metrics, re.M)
        assert embedded is not None
        assert float(embedded.group(1)) >= 5  # at least one chunk per ready document
        live = httpx.get(f"{worker.health_url}/health/live").json()
        assert live == {"status": "ok", "checks": {"workers": "ok"}}
        ready = httpx.get(f"{worker.health_url}/health/ready").json()
        assert ready == {"status": "ok", "checks": {"workers": "ok", "broker": "ok"}}
    finally:
        worker.stop()


def test_a_worker_killed_mid_document_is_recovered_without_duplicate_chunks(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    owner = api.register("Crash")
    notebook = api.notebook(owner)["id"]
    paused = start_worker(
        settings, tmp_path / "paused.log", CHARTERFLOW_TEST_INGEST_PAUSE_SECONDS="300"
    )
    try:
        doc_id = api.upload(owner, notebook, "espresso.txt", TEXT * 40).json()["id"]

        def processing() -> bool:
            r = api.client.get(f"{API}/documents/{doc_id}", headers=owner.headers)
            return bool(r.json()["status"] == "processing")

        wait_until(processing, 60, "the paused worker to claim the document")
        assert paused.proc is not None
        os.killpg(paused.proc.pid, signal.SIGKILL)  # no clean shutdown, no ack
        paused.proc.wait(10)
    finally:
        paused.stop()

    rescuer = start_worker(settings, tmp_path / "rescuer.log")
    try:
        doc = wait_settled(api, owner, [doc_id])[doc_id]
    finally:
        rescuer.stop()
    assert doc["status"] == "ready", doc
    with Session(api.engine) as db:
        rows = db.execute(
            select(func.count(), func.count(func.distinct(Chunk.ordinal))).where(
                Chunk.document_id == doc_id
            )
        ).one()
        attempts = db.scalar(select(Document.attempts).where(Document.id == doc_id))
    assert rows[0] == rows[1] == doc["chunk_count"] > 1
    assert attempts >= 2  # the killed attempt counted, then another one finished
