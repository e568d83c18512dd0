"""The OpenAPI document as client generators read it: stable names, uploads as files, and
every endpoint listed in docs/api.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from charterflow.main import create_app
from charterflow.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = tmp_path_factory.mktemp("openapi") / "app.db"
    settings = Settings(_env_file=None, database_url=f"sqlite:{db}", jwt_secret="k" * 40)
    return create_app(settings).openapi()


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
    ]


def test_every_operation_has_one_tag_and_a_stable_id_named_after_it(
    schema: dict[str, Any],
) -> None:
    ids = []
    for method, path, op in _operations(schema):
        assert len(op["tags"]) == 1, (method, path)
        tag = op["tags"][0]
        assert re.fullmatch(rf"{tag}\.[a-z][a-z_]*", op["operationId"]), (method, path, op)
        ids.append(op["operationId"])
    assert len(ids) == len(set(ids))
    assert "notebooks.upload_document" in ids
    assert "auth.login" in ids


def test_uploads_are_described_as_binary(schema: dict[str, Any]) -> None:
    op = schema["paths"]["/api/v1/notebooks/{notebook_id}/documents"]["post"]
    ref = op["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    body = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert body["properties"]["file"]["format"] == "binary"


def test_docs_api_lists_every_endpoint(schema: dict[str, Any]) -> None:
    """docs/api.md names each path (ids written ``{id}``, sub-resources as in the table)."""
    docs = DOCS.read_text()
    for method, path, _op in _operations(schema):
        if not path.startswith("/api/v1/"):
            continue
        short = re.sub(r"\{(?!user_id)[a-z_]*id\}", "{id}", path.removeprefix("/api/v1"))
        short = short.replace("{number}", "{n}").split("?")[0]
        assert short in docs, f"{method} {path} is not in docs/api.md"
