"""The OpenAPI document as client generators need it.

- operationIds are ``<tag>.<function>`` (``notebooks.upload_document``): stable, readable
  method names instead of FastAPI's path-derived ones (``login_api_v1_auth_login_post``).
- File fields: FastAPI describes an ``UploadFile`` for OpenAPI 3.1 with ``contentMediaType``
  alone, which generators such as openapi-python-client read as a plain string (and the
  upload then fails with 422); ``format: binary`` makes them send the bytes as a file part.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute


def operation_id(route: APIRoute) -> str:
    """``<first tag>.<endpoint function name>``; every API route has a tag."""
    return f"{route.tags[0]}.{route.name}" if route.tags else route.name


def _binary_files(schema: dict[str, Any]) -> None:
    for component in schema.get("components", {}).get("schemas", {}).values():
        for prop in component.get("properties", {}).values():
            if prop.get("type") == "string" and "contentMediaType" in prop:
                prop.setdefault("format", "binary")


def install(app: FastAPI) -> None:
    """Post-process the app's generated document once, when it is first built."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = build()
        if fresh:
            _binary_files(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
