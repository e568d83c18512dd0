"""The API's metrics beyond HTTP: business counters from committed events, the database pool and
statement durations, and ``/metrics`` moved off the public port by ``METRICS_PORT``."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from charterflow.appmetrics import statement_kind
from charterflow.db import session_scope
from charterflow.ingest.metrics import PendingAgeCollector
from charterflow.models import Document, utcnow
from sqlalchemy import update

from tests.api.conftest import API, Api
from tests.ingest.conftest import wait_settled
from tests.support.processes import free_port


def value(text: str, sample: str) -> float:
    """The value of one exposition line (0 when the series is absent)."""
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def scrape(api: Api) -> str:
    return api.client.get("/metrics").text


def test_business_counters_count_what_users_did(api: Api) -> None:
    before = scrape(api)
    owner = api.register("Metra")
    nb = api.notebook(owner)
    assert api.upload(owner, nb["id"], "plan.txt", b"The launch is on Friday.").status_code == 202
    # Refused registration (same e-mail again): rolled back, so not counted.
    again = api.client.post(
        f"{API}/auth/register",
        json={"email": owner.email, "password": owner.password, "name": "Twice"},
    )
    assert again.status_code == 409
    conversation = api.client.post(
        f"{API}/notebooks/{nb['id']}/conversations", json={}, headers=owner.headers
    ).json()
    asked = api.client.post(
        f"{API}/conversations/{conversation['id']}/messages",
        json={"question": "When is the launch?"},
        headers=owner.headers,
    )
    assert asked.status_code == 200, asked.text
    mode = asked.json()["mode"]
    one_shot = api.client.post(
        f"{API}/notebooks/{nb['id']}/ask", json={"question": "Launch?"}, headers=owner.headers
    )
    assert one_shot.status_code == 200, one_shot.text
    after = scrape(api)
    for sample, grew in {
        "charterflow_registrations_total": 1,
        "charterflow_uploads_total": 1,
        "charterflow_questions_total": 2,
        f'charterflow_answers_total{{mode="{mode}",status="complete"}}': 2,
    }.items():
        assert value(after, sample) - value(before, sample) == grew, sample


def test_database_pool_and_statement_metrics(api: Api) -> None:
    api.register("Poole")
    text = scrape(api)
    assert value(text, 'charterflow_db_query_duration_seconds_count{statement="insert"}') >= 1
    assert value(text, 'charterflow_db_query_duration_seconds_count{statement="select"}') >= 1
    assert "charterflow_db_pool_checked_out " in text
    if api.backend == "postgres":  # a QueuePool: size and overflow too
        assert value(text, "charterflow_db_pool_size") == 10
        assert "charterflow_db_pool_overflow " in text


def test_metrics_port_takes_metrics_off_the_public_port(api: Api) -> None:
    port = free_port()
    with api.variant(metrics_port=port) as other:
        assert other.client.get("/metrics").status_code == 404
        own = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert own.status_code == 200
        assert "charterflow_http_requests_total" in own.text
        assert "charterflow_db_pool_checked_out" in own.text


def test_statement_kinds_stay_bounded() -> None:
    assert statement_kind("  SELECT 1") == "select"
    assert statement_kind("with x as (select 1) select * from x") == "with"
    assert statement_kind("VACUUM") == "other"
    assert statement_kind("") == "other"


def test_the_queue_age_is_the_oldest_pending_documents(api: Api) -> None:
    owner = api.register("Penny")
    nb = api.notebook(owner)
    r = api.upload(owner, nb["id"], "late.txt", b"Waiting for a worker.")
    assert r.status_code == 202, r.text
    doc_id = r.json()["id"]
    wait_settled(api, owner, [doc_id])
    factory = api.app.state.session_factory
    collector = PendingAgeCollector(factory)

    def age() -> float:
        (family,) = collector.collect()
        return float(family.samples[0].value)

    assert age() == 0.0  # nothing waits
    with session_scope(factory) as db:
        db.execute(
            update(Document)
            .where(Document.id == doc_id)
            .values(status="pending", created_at=utcnow() - timedelta(hours=1))
        )
    try:
        assert 3600 <= age() < 3600 + 600
    finally:
        with session_scope(factory) as db:
            db.execute(update(Document).where(Document.id == doc_id).values(status="ready"))
