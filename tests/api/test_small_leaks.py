"""Issue 26, item 13: small leaks. The invitation token is no path segment (a trailing-slash
redirect logged it); ``/metrics``, the API's map (``/docs``, ``/redoc``, ``/openapi.json``)
and the readiness details are not published in production by default; authenticated JSON is
never cached; no ``server`` header; a request head must arrive in time; one user holds a
bounded number of answer streams."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from charterflow.db import migrate_database as migrated

from tests.api.conftest import API, Api, backend_settings, serve, verify_email
from tests.api.test_conversations import BOREALIS
from tests.ingest.conftest import wait_settled
from tests.support.llm import OpenAICompatible, Reply, StreamReply
from tests.support.processes import wait_until
from tests.support.services import PostgresServer, S3Server

SSE = {"Accept": "text/event-stream"}


def test_an_invitation_token_in_a_path_is_never_logged(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    token = "secret-invitation-token-" + "s" * 20
    who = api.register("Invitee")
    for path in (f"{API}/invitations/{token}/accept/", f"{API}/invitations/{token}/accept"):
        r = api.client.post(path, headers=who.headers, follow_redirects=False)
        assert r.status_code == 404, (path, r.status_code)  # no redirect to follow
    logged = "\n".join(
        f"{r.getMessage()} {r.__dict__}"
        for r in caplog.records
        if not r.name.startswith(("httpx", "httpcore"))
    )
    assert "/invitations/" in logged
    assert token not in logged


def test_authenticated_json_is_not_cached_and_no_server_header(api: Api) -> None:
    who = api.register("Private")
    for r in (
        api.client.get(f"{API}/auth/me", headers=who.headers),
        api.client.get(f"{API}/notebooks", headers=who.headers),
        api.client.post(f"{API}/auth/login", json={"email": who.email, "password": who.password}),
    ):
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store", r.url
        assert "server" not in r.headers, r.url


@pytest.mark.services
def test_production_publishes_no_metrics_docs_or_readiness_details(
    pg_server: PostgresServer | None, s3_server: S3Server, tmp_path: Path
) -> None:
    """Production needs PostgreSQL, so this runs once, on PostgreSQL + S3."""
    base = migrated(backend_settings("postgres", tmp_path, pg_server, s3_server))
    prod = base.model_copy(update={"charterflow_env": "production"})
    with serve("postgres", prod) as app:
        for path in ("/metrics", "/docs", "/redoc", "/openapi.json"):
            assert app.client.get(path).status_code == 404, path
        ready = app.client.get("/health/ready").json()
        assert ready["checks"]["storage"] == {"status": "ok"}  # no backend name
        assert set(ready["checks"]["embeddings"]) == {"status"}  # no model name
        # A user who is no admin, a key and a bad token see the statuses only.
        who = app.register("Operator")
        made = app.client.post(f"{API}/auth/tokens", json={"name": "ops"}, headers=who.headers)
        assert made.status_code == 201, made.text
        key = made.json()["token"]
        for token in (who.token, key, "not-a-token"):
            seen = app.client.get("/health/ready", headers={"Authorization": f"Bearer {token}"})
            assert seen.json()["checks"]["storage"] == {"status": "ok"}, token[:4]
    admins = prod.model_copy(update={"admin_emails": [who.email]})
    verify_email(app, who.user["id"])  # ADMIN_EMAILS counts for a verified email only
    with serve("postgres", admins) as app:
        seen = app.client.get("/health/ready", headers=who.headers).json()["checks"]
        assert seen["storage"]["backend"] == "s3"
        assert "latency_ms" in seen["database"]
        assert {"status"} < set(seen["embeddings"])  # which embedder answers searches
        key_seen = app.client.get("/health/ready", headers={"Authorization": f"Bearer {key}"})
        assert key_seen.json()["checks"]["storage"] == {"status": "ok"}  # keys: no details
    opened = prod.model_copy(update={"metrics_public": True, "api_docs": True})
    with serve("postgres", opened) as app:
        for path in ("/metrics", "/docs", "/openapi.json"):
            assert app.client.get(path).status_code == 200, path


def test_a_request_head_that_trickles_in_is_cut_off(api: Api) -> None:
    with api.variant(header_timeout_seconds=1.0) as app:
        host, port = app.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as conn:
            conn.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
            assert conn.recv(1024) == b""  # closed by the server, well before 30 s
        # A whole head in time is served as before, also the next one on the same connection.
        with socket.create_connection((host, int(port)), timeout=30) as conn:
            for _ in range(2):
                conn.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                assert conn.recv(4096).startswith(b"HTTP/1.1 200")


def test_one_user_holds_a_bounded_number_of_answer_streams(
    api: Api, with_model: Callable[[Reply], tuple[OpenAICompatible, Api]]
) -> None:
    owner = api.register("Streamer")
    nb = api.notebook(owner)["id"]
    doc = api.upload(owner, nb, "borealis.txt", BOREALIS).json()
    assert wait_settled(api, owner, [doc["id"]])[doc["id"]]["status"] == "ready"
    gate = threading.Event()
    server, app = with_model(lambda _p, _b: StreamReply(["The Borealis ", "answer."], gate=gate))
    other = app.register("Neighbour")
    other_nb = app.notebook(other)["id"]
    limit = app.settings.max_streams_per_user

    def conversation(who: Any, notebook: str) -> str:
        r = app.client.post(f"{API}/notebooks/{notebook}/conversations", json={}, headers=who)
        return str(r.json()["id"])

    def ask(who: Any, conv: str) -> Any:
        return app.client.stream(
            "POST",
            f"{API}/conversations/{conv}/messages",
            json={"question": "When is the Borealis application due?"},
            headers={**who, **SSE},
        )

    held = [ask(owner.headers, conversation(owner.headers, nb)) for _ in range(limit)]
    opened = [stream.__enter__() for stream in held]
    try:
        assert [response.status_code for response in opened] == [200] * limit
        # Each stream is running, held open by the gate (iterators kept: dropping one would
        # close its connection, and so end its stream).
        lines = [response.iter_lines() for response in opened]
        assert all(next(line).startswith("event:") for line in lines)
        over = app.client.post(
            f"{API}/conversations/{conversation(owner.headers, nb)}/messages",
            json={"question": "And the budget?"},
            headers={**owner.headers, **SSE},
        )
        assert over.status_code == 429, over.text
        assert over.headers["retry-after"]
        # Another user is not affected.
        with ask(other.headers, conversation(other.headers, other_nb)) as theirs:
            assert theirs.status_code == 200
            gate.set()
            list(theirs.iter_lines())
    finally:
        gate.set()
        for stream in held:
            stream.__exit__(None, None, None)
    # Once the streams end, their slots are free again.
    slots = app.app.state.stream_slots
    wait_until(lambda: slots.open_count(owner.id) == 0, 30, "the streams' slots to be freed")
    with ask(owner.headers, conversation(owner.headers, nb)) as again:
        assert again.status_code == 200
        list(again.iter_lines())
    assert server.requests
