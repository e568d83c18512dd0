"""A STAND-IN for a model server: a tiny OpenAI-compatible HTTP server (embeddings and chat,
streamed or not) whose replies each test writes, for what a real model cannot be made to do on
cue (an exact cited reply, an error status, a stream cut after n pieces, a pause on a gate).
The real model server is ``tests/support/llamacpp.py``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class StreamReply:
    """A chat answer sent as ``stream: true`` chunks, ``delay`` seconds apart.

    ``cut_after``: the connection drops after that many chunks (no ``[DONE]``), as when the
    model's server dies mid-answer. ``gate``: after the first chunk, wait until it is set, so
    a test can prove the first piece reached its client before the rest was generated.
    """

    pieces: list[str]
    delay: float = 0.0
    cut_after: int | None = None
    gate: threading.Event | None = None


Reply = Callable[[str, dict[str, Any]], "tuple[int, dict[str, Any]] | StreamReply"]


class OpenAICompatible:
    """A real HTTP server speaking the OpenAI embeddings / chat shapes; ``reply`` decides.

    ``aborted`` counts streams whose client went away before the last chunk was written.
    """

    def __init__(self, reply: Reply) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.aborted = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body))
                answer = reply(self.path, body)
                if isinstance(answer, StreamReply):
                    self._stream(answer)
                    return
                status, payload = answer
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, answer: StreamReply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                try:
                    for n, piece in enumerate(answer.pieces):
                        if answer.cut_after is not None and n == answer.cut_after:
                            return  # the connection closes without [DONE]
                        chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(answer.delay)
                        if n == 0 and answer.gate is not None and not answer.gate.wait(30):
                            return
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    outer.aborted += 1

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
