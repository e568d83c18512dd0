"""How uvicorn serves the app: the options of ``charterflow serve`` (and of the tests' live
servers), in one place.

Uvicorn times out idle keep-alive connections but not a request head that trickles in (a
"slowloris" client holds a connection, and a slot of ``--limit-concurrency``, for as long as
it likes). ``HeaderTimeoutProtocol`` closes a connection whose request head is not complete
within ``HEADER_TIMEOUT_SECONDS`` of its first byte or of the previous response.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from charterflow.settings import Settings


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """Uvicorn's httptools HTTP/1.1 protocol (uvicorn[standard], what "auto" picks) with a
    deadline for each request head."""

    header_timeout: float = 10.0  # set per server by ``protocol_for``

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _disarm(self) -> None:
        deadline = getattr(self, "_head_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def on_headers_complete(self) -> None:  # httptools: the head is in
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's head (the keep-alive timeout also applies)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def protocol_for(settings: Settings) -> type[asyncio.Protocol]:
    """``HeaderTimeoutProtocol`` with ``HEADER_TIMEOUT_SECONDS``."""
    return type(
        "HeaderTimeoutProtocol",
        (HeaderTimeoutProtocol,),
        {"header_timeout": settings.header_timeout_seconds},
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Options shared by every way the app is served: no ``server`` header (it names the
    software and its version to scanners), the head deadline, our own logging and proxies."""
    return {
        "http": protocol_for(settings),
        "server_header": False,
        "log_config": None,  # our logging configuration, not uvicorn's
        "access_log": False,  # RequestContextMiddleware logs each request once, with its id
        "proxy_headers": False,  # the app trusts FORWARDED_ALLOW_IPS itself (main.create_app)
    }
