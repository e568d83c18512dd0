"""Documented error responses, so that the OpenAPI schema lists every status a route returns."""

from __future__ import annotations

from typing import Any

from charterflow.schemas.common import ErrorOut

_WHY = {
    400: "Bad request",
    401: "Missing, invalid or expired bearer token",
    403: "Your role in this workspace does not allow it",
    404: "Not found, or not in one of your workspaces",
    409: "Conflicts with the current state",
    413: "Upload larger than MAX_UPLOAD_BYTES",
    415: "Not a PDF, DOCX, text, Markdown, HTML or CSV file",
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
