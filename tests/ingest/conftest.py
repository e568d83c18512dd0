"""Helpers for the ingestion tests: a tiny OpenAI-compatible HTTP server and status polling."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.api.conftest import API, Account, Api
from tests.support.processes import wait_until

Reply = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]]


class OpenAICompatible:
    """A real HTTP server speaking the OpenAI embeddings / chat shapes; ``reply`` decides."""

    def __init__(self, reply: Reply) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body))
                status, payload = reply(self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> OpenAICompatible:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def openai_server() -> Iterator[Callable[[Reply], OpenAICompatible]]:
    servers: list[OpenAICompatible] = []

    def start(reply: Reply) -> OpenAICompatible:
        server = OpenAICompatible(reply).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


def wait_settled(api: Api, account: Account, doc_ids: list[str], timeout: float = 120) -> dict:
    """Poll the API until every document is ``ready`` or ``failed``; returns them by id."""
    docs: dict[str, dict[str, Any]] = {}

    def settled() -> bool:
        for doc_id in doc_ids:
            r = api.client.get(f"{API}/documents/{doc_id}", headers=account.headers)
            docs[doc_id] = r.json()
        return all(d["status"] in {"ready", "failed"} for d in docs.values())

    wait_until(settled, timeout, f"documents settled ({docs})", interval=0.25)
    return docs
