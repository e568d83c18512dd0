"""Helpers for the ingestion tests: status polling (the OpenAI-compatible test server is in
tests/support/llm.py, its fixture ``openai_server`` in tests/conftest.py)."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import API, Account, Api
from tests.support.processes import wait_until


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
