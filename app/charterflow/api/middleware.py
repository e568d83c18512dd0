"""Pure ASGI middleware (streamed responses untouched): security headers on every response,
and the request guard that refuses unauthenticated uploads and oversized bodies early."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from charterflow.settings import Settings

# A JSON API loads nothing and may be framed by no one.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# FastAPI's /docs and /redoc pages load Swagger UI / ReDoc from jsDelivr with inline bootstraps.
DOCS_CSP = (
    "default-src 'self'; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'"
)
DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeadersMiddleware:
    """Add nosniff, DENY framing, a referrer policy and a CSP; HSTS in production.

    A response that sets one of these headers itself (a future HTML page with its own CSP,
    say) keeps its own value.
    """

    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts
        self._api = self._defaults(API_CSP)
        self._docs = self._defaults(DOCS_CSP)
        # /api/v1 answers carry the caller's data (and sign-in answers their tokens): no
        # shared or browser cache keeps them, unless a route says otherwise.
        self._private = [*self._api, (b"cache-control", b"no-store")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith(DOCS_PATHS):
            defaults = self._docs
        elif path.startswith("/api/"):
            defaults = self._private
        else:
            defaults = self._api

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Raw header pairs, added unless the response set them: cheaper per request
                # than MutableHeaders.setdefault, which rescans the list for each one.
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [pair for pair in defaults if pair[0] not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _defaults(self, csp: str) -> list[tuple[bytes, bytes]]:
        pairs = {
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
            "referrer-policy": "strict-origin-when-cross-origin",
            "content-security-policy": csp,
            "cross-origin-opener-policy": "same-origin",
        }
        if self.hsts:
            pairs["strict-transport-security"] = "max-age=63072000; includeSubDomains"
        return [(k.encode(), v.encode("latin-1")) for k, v in pairs.items()]


class _TooLarge(Exception):
    """The request body passed the limit while the app was reading it."""


#: Uploads: the only requests whose bodies are large enough to be worth refusing unread.
UPLOAD_PATH = re.compile(r"^/api/v1/notebooks/[^/]+/documents/?$")
#: Pasted text (``TextSourceIn``: up to a million characters, six bytes each as JSON escapes
#: at worst): the one JSON body allowed past MAX_JSON_BYTES.
TEXT_SOURCE_PATH = re.compile(r"^/api/v1/notebooks/[^/]+/documents/text/?$")
TEXT_SOURCE_BYTES = 6 * 1_000_000 + 64 * 1024
#: Past the limit, at most this much more is read (and discarded) so that a client that
#: sends its whole body before reading (urllib, requests) gets the 413, not a reset.
DRAIN_BYTES = 64 * 1024 * 1024
DRAIN_SECONDS = 10.0


def _json(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class RequestGuardMiddleware:
    """Bound what a request body can cost before the app sees it.

    - An upload without a valid access token or API key (header or session cookie) is
      answered 401 before any of its body is read (a client that waits for ``100 Continue``
      never sends it); a read-only key 403.
    - Only uploads may send up to ``max_upload`` bytes; every other body (JSON, forms) is
      capped at ``max_body`` (``MAX_JSON_BYTES``), so nothing parses a large JSON document
      on the event loop before the rate limits run.
    - A body over its cap (by its ``Content-Length``, or counted as it arrives) is answered
      413 as JSON, after reading and discarding a bounded remainder of it.
    """

    def __init__(self, app: ASGIApp, settings: Settings, max_body: int, max_upload: int) -> None:
        self.app = app
        self.settings = settings
        self.max_body = max_body
        self.max_upload = max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        upload = bool(UPLOAD_PATH.match(scope["path"]))
        if upload:
            refused = await self._upload_refusal(scope, headers)
            if refused is not None:
                await refused(scope, receive, send)
                return
        limit = self.max_upload if upload else self.max_body
        if TEXT_SOURCE_PATH.match(scope["path"]):
            limit = max(limit, TEXT_SOURCE_BYTES)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse_too_large(scope, receive, send, 0, limit)
            return
        received = 0
        over = started = False

        async def counting_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise _TooLarge
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # the app's answer to a cut-off body (a 400, say) is replaced
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except Exception:
            if not over or started:
                raise
        if over and not started:
            await self._refuse_too_large(scope, receive, send, received, limit)

    async def _upload_refusal(self, scope: Scope, headers: Headers) -> Response | None:
        """None when the upload may send its body: a validly signed access token (revocation
        and the user are checked by the route, as for any request), or a live API key that
        may write (looked up, on a worker thread: a key has no signature to check)."""
        from charterflow.security import InvalidToken, decode_claims
        from charterflow.services import api_keys
        from charterflow.web.session import SESSION_COOKIE

        scheme, _, token = headers.get("authorization", "").partition(" ")
        token, from_header = token.strip(), True
        if scheme.lower() != "bearer" or not token:
            token = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE, "")
            from_header = False
        unauthenticated = _json(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
        if not token:
            return unauthenticated
        if api_keys.is_api_key(token):
            if not from_header:  # a key is never a session cookie (web.session)
                return unauthenticated
            read_only = await run_in_threadpool(_key_read_only, scope["app"], token)
            if read_only is None:
                return unauthenticated
            return _json(403, "This API key is read-only") if read_only else None
        try:
            decode_claims(self.settings, token)
        except InvalidToken:
            return unauthenticated
        return None

    async def _refuse_too_large(
        self, scope: Scope, receive: Receive, send: Send, already: int, limit: int
    ) -> None:
        """Discard the rest of the body (bounded in bytes and time), then answer 413."""
        drained = already
        deadline = time.monotonic() + DRAIN_SECONDS
        with contextlib.suppress(TimeoutError):
            while drained < limit + DRAIN_BYTES:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                message = await asyncio.wait_for(receive(), left)
                if message["type"] != "http.request":
                    return  # the client went away
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        what = "MAX_UPLOAD_BYTES and form fields" if limit == self.max_upload else "MAX_JSON_BYTES"
        response = _json(
            413, f"Request body larger than {limit} bytes ({what})", {"Connection": "close"}
        )
        await response(scope, receive, send)


def _key_read_only(app: ASGIApp, key: str) -> bool | None:
    """Whether the live API key ``key`` is read-only; None for no such live key."""
    from charterflow.services import api_keys

    with app.state.session_factory() as db:  # type: ignore[attr-defined]
        found = api_keys.authenticate(db, key)
        return None if found is None else found[0].read_only
