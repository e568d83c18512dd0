"""Browser sessions: the access token in an HttpOnly cookie, plus a signed CSRF token.

The session cookie holds the same JWT the API hands to bearer clients, so one validation path
serves both. The CSRF token is a signed double-submit value: a random nonce and its HMAC under
the server secret *and the session token's* ``jti``, kept in its own HttpOnly cookie and echoed
by pages (hidden form field or ``X-CSRF-Token`` header). A forged request cannot read it, a
cookie planted by a sibling domain cannot carry a valid signature, and a token issued to
another session (another user's, or the anonymous sign-in page's) does not fit this one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from charterflow.security import token_jti
from charterflow.services.api_keys import PREFIX as API_KEY_PREFIX
from charterflow.settings import Settings

SESSION_COOKIE = "cf_session"
CSRF_COOKIE = "cf_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Pages load only this origin's own files: no inline script or style, no framing.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)


def _binding(settings: Settings, session_token: str | None) -> str:
    """What a CSRF token is bound to: the session token's ``jti``, or no session at all."""
    return token_jti(settings, session_token) or "anonymous"


def _signature(settings: Settings, nonce: str, binding: str) -> str:
    key = hashlib.sha256(b"charterflow-csrf:" + settings.jwt_secret.get_secret_value().encode())
    return hmac.new(key.digest(), f"{nonce}|{binding}".encode(), hashlib.sha256).hexdigest()


def new_csrf_token(settings: Settings, session_token: str | None) -> str:
    """A token valid only alongside ``session_token`` (or alongside no session)."""
    nonce = secrets.token_urlsafe(24)
    return f"{nonce}.{_signature(settings, nonce, _binding(settings, session_token))}"


def csrf_token_valid(settings: Settings, token: str | None, session_token: str | None) -> bool:
    """True for a token this server signed for this session: another user's token, or an
    anonymous one from the sign-in page, is refused alongside a victim's session cookie."""
    if not token or token.count(".") != 1:
        return False
    nonce, signature = token.split(".")
    expected = _signature(settings, nonce, _binding(settings, session_token))
    return hmac.compare_digest(signature, expected)


def csrf_ok(
    settings: Settings, cookie: str | None, submitted: str | None, session_token: str | None
) -> bool:
    """The submitted token equals the cookie's, and the cookie's is ours, for this session."""
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(cookie, submitted) and csrf_token_valid(
        settings, cookie, session_token
    )


def secure_cookies(settings: Settings) -> bool:
    return settings.is_production or settings.app_url.startswith("https://")


def set_csrf_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(settings),
        path="/",
    )


def start_session(response: Response, settings: Settings, access_token: str) -> None:
    """Set the session cookie, and a fresh CSRF token so none from before sign-in survives."""
    set_session_cookie(response, settings, access_token)
    set_csrf_cookie(response, settings, new_csrf_token(settings, access_token))


def set_session_cookie(response: Response, settings: Settings, access_token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        access_token,
        max_age=settings.jwt_ttl_seconds,
        httponly=True,
        samesite="lax",  # a link into the app from elsewhere still arrives signed in
        secure=secure_cookies(settings),
        path="/",
    )


def end_session(response: Response, settings: Settings) -> None:
    secure = secure_cookies(settings)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
    response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, httponly=True, samesite="strict")


class CookieSessionMiddleware:
    """Let the UI's scripts call ``/api/v1`` with the session cookie.

    A request without an ``Authorization`` header but with the session cookie is treated as a
    bearer request with that token; if it changes state it must also carry ``X-CSRF-Token``
    matching the CSRF cookie (403 otherwise). Bearer clients are untouched.
    """

    def __init__(self, app: ASGIApp, settings: Settings, prefix: str = "/api/") -> None:
        self.app = app
        self.settings = settings
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookies = cookie_parser(headers.get("cookie", ""))
        token = cookies.get(SESSION_COOKIE)
        # An API key is never a session: as a cookie it is ignored (the request is anonymous).
        if "authorization" in headers or not token or token.startswith(API_KEY_PREFIX):
            await self.app(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS and not csrf_ok(
            self.settings, cookies.get(CSRF_COOKIE), headers.get(CSRF_HEADER), token
        ):
            body = json.dumps({"detail": "Missing or invalid CSRF token; reload the page"})
            response = Response(body, status_code=403, media_type="application/json")
            await response(scope, receive, send)
            return
        MutableHeaders(scope=scope)["authorization"] = f"Bearer {token}"
        await self.app(scope, receive, send)
