"""Error responses: documented (so the OpenAPI schema lists every status a route returns),
and the 422 handler that never echoes secrets or unencodable input."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from charterflow.schemas.common import ErrorOut

_WHY = {
    400: "Bad request",
    401: "Missing, invalid or expired bearer token",
    403: "Your role in this workspace does not allow it",
    404: "Not found, or not in one of your workspaces",
    409: "Conflicts with the current state",
    413: "Upload larger than MAX_UPLOAD_BYTES",
    415: "Not a PDF, DOCX, PPTX, XLSX, EPUB, text, Markdown, HTML or CSV file",
    429: "Rate limited; retry after the `Retry-After` seconds",
    503: "Storage is unavailable",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for ``codes`` (429 always included: every route is limited)."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in sorted({*codes, 429}):
        entry: dict[str, Any] = {"model": ErrorOut, "description": _WHY[code]}
        if code == 429:
            entry["headers"] = _RETRY_AFTER
        out[code] = entry
    return out


AUTHED = (401, 404)


def _encodable(value: Any) -> bool:
    try:
        json.dumps(jsonable_encoder(value), ensure_ascii=False).encode()
    except (UnicodeEncodeError, TypeError, ValueError):
        return False
    return True


def _safe_error(error: dict[str, Any]) -> dict[str, Any]:
    """One validation error without what must not be echoed: secrets (any ``password``
    field) and input that is not valid Unicode (a lone surrogate cannot be encoded)."""
    safe = dict(error)
    secret = any("password" in str(part).lower() for part in safe.get("loc", ()))
    if "input" in safe and (secret or not _encodable(safe["input"])):
        del safe["input"]
    if "ctx" in safe and not _encodable(safe["ctx"]):
        del safe["ctx"]
    return safe


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """The 422 of FastAPI, minus secrets and unencodable input (which used to become a 500
    whose traceback logged the request body, password included)."""
    assert isinstance(exc, RequestValidationError)
    errors = [_safe_error(e) for e in exc.errors()]
    if not _encodable(errors):  # something unforeseen: keep only where and what
        errors = [{"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)
