"""Development path: SQLite, local files, no Redis — uploads are ingested in-process and
search and ask work through the real API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from charterflow.ingest_queue import InProcessJobQueue
from charterflow.settings import Settings

from tests.api.conftest import API, BASE, Api, migrated, serve
from tests.ingest.conftest import wait_settled
from tests.ingest.samples import CORRUPT_PDF, all_samples
from tests.support.llm import OpenAICompatible


@pytest.fixture(scope="module")
def dev_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp = tmp_path_factory.mktemp("ingest-sqlite")
    return migrated(
        Settings(
            _env_file=None, database_url=f"sqlite:{tmp}/app.db", upload_path=tmp / "up", **BASE
        )
    )


@pytest.fixture(scope="module")
def api(dev_settings: Settings) -> Iterator[Api]:
    with serve("sqlite", dev_settings) as running:
        assert isinstance(running.app.state.jobs, InProcessJobQueue)
        yield running


@pytest.fixture(scope="module")
def loaded(api: Api) -> dict[str, Any]:
    """A notebook with every sample type and a corrupt PDF, all settled."""
    owner = api.register("Dev")
    notebook = api.notebook(owner)
    ids: dict[str, str] = {}
    for name, data in {**all_samples(), "broken.pdf": CORRUPT_PDF}.items():
        r = api.upload(owner, notebook["id"], name, data)
        assert r.status_code == 202, r.text
        ids[name] = r.json()["id"]
    docs = wait_settled(api, owner, list(ids.values()))
    return {"owner": owner, "notebook": notebook["id"], "ids": ids, "docs": docs}


def test_uploads_reach_ready_and_a_corrupt_pdf_fails_readably(loaded: dict[str, Any]) -> None:
    docs, ids = loaded["docs"], loaded["ids"]
    for name in all_samples():
        assert docs[ids[name]]["status"] == "ready", docs[ids[name]]
        assert docs[ids[name]]["chunk_count"] >= 1
        assert docs[ids[name]]["error"] is None
    broken = docs[ids["broken.pdf"]]
    assert broken["status"] == "failed"
    assert broken["error"] == "the PDF is damaged or not a PDF and cannot be read"


def test_search_ranks_the_right_document_and_page_first(api: Api, loaded: dict[str, Any]) -> None:
    r = api.client.get(
        f"{API}/notebooks/{loaded['notebook']}/search",
        params={"q": "Falcon pilot budget", "limit": 5},
        headers=loaded["owner"].headers,
    )
    assert r.status_code == 200, r.text
    top = r.json()["items"][0]
    assert top["document_id"] == loaded["ids"]["falcon-plan.pdf"]
    assert top["page"] == 2
    assert "forty-eight thousand euros" in top["text"]
    assert top["lexical_rank"] == 1


def test_hidden_html_text_is_not_indexed(api: Api, loaded: dict[str, Any]) -> None:
    r = api.client.get(
        f"{API}/notebooks/{loaded['notebook']}/search",
        params={"q": "quokka trackingPixelZebra"},
        headers=loaded["owner"].headers,
    )
    assert all("quokka" not in hit["text"] for hit in r.json()["items"])


def test_ask_answers_extractively_with_exact_citations(api: Api, loaded: dict[str, Any]) -> None:
    r = api.client.post(
        f"{API}/notebooks/{loaded['notebook']}/ask",
        json={"question": "How many days do customers have to request a refund?"},
        headers=loaded["owner"].headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mode"] == "extractive"
    first = body["citations"][0]
    assert first["document_id"] == loaded["ids"]["refunds.docx"]
    assert first["text"] == "Customers may request a refund within thirty days of purchase."
    assert f"{first['text']} [1]" in body["answer"]
    assert first["end"] - first["start"] == len(first["text"])


def test_ask_says_so_when_nothing_is_relevant(api: Api, loaded: dict[str, Any]) -> None:
    r = api.client.post(
        f"{API}/notebooks/{loaded['notebook']}/ask",
        json={"question": "What is the capital city of Peru?"},
        headers=loaded["owner"].headers,
    )
    body = r.json()
    assert body["citations"] == []
    assert body["answer"] == "The sources don't answer this."


def test_other_users_cannot_search_or_ask(api: Api, loaded: dict[str, Any]) -> None:
    stranger = api.register("Stranger")
    nb = loaded["notebook"]
    assert (
        api.client.get(
            f"{API}/notebooks/{nb}/search", params={"q": "refund"}, headers=stranger.headers
        ).status_code
        == 404
    )
    assert (
        api.client.post(
            f"{API}/notebooks/{nb}/ask", json={"question": "refund?"}, headers=stranger.headers
        ).status_code
        == 404
    )


def test_llm_answers_cite_only_the_passages_it_names(
    api: Api, loaded: dict[str, Any], openai_server: Any
) -> None:
    def reply(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        assert path == "/v1/chat/completions"
        prompt = body["messages"][1]["content"]
        assert "Falcon pilot budget" in prompt  # the relevant passage was given as context
        # [1] is the budget passage; [7] names no passage and must be dropped.
        return 200, {"choices": [{"message": {"content": "It is 48,000 euros [1] [7]."}}]}

    server: OpenAICompatible = openai_server(reply)
    with api.variant(llm_url=server.url, llm_model="test-model") as llm_api:
        r = llm_api.client.post(
            f"{API}/notebooks/{loaded['notebook']}/ask",
            json={"question": "What is the Falcon pilot budget?", "top_k": 3},
            headers=loaded["owner"].headers,
        )
    body = r.json()
    assert body["mode"] == "llm"
    assert (body["quoted"], body["model"]) == (False, "test-model")
    assert body["answer"] == "It is 48,000 euros [1]."
    assert len(body["citations"]) == 1
    assert body["citations"][0]["document_id"] == loaded["ids"]["falcon-plan.pdf"]
    assert body["citations"][0]["page"] == 2


def test_llm_failure_falls_back_to_extractive_with_a_warning(
    api: Api, loaded: dict[str, Any], openai_server: Any
) -> None:
    server: OpenAICompatible = openai_server(lambda _p, _b: (500, {"error": "boom"}))
    with api.variant(llm_url=server.url, llm_model="test-model") as llm_api:
        r = llm_api.client.post(
            f"{API}/notebooks/{loaded['notebook']}/ask",
            json={"question": "When does the on-call rotation change?"},
            headers=loaded["owner"].headers,
        )
    body = r.json()
    assert body["mode"] == "extractive"
    assert (body["quoted"], body["model"]) == (True, None)  # the extracts stood in
    assert "unavailable" in body["warning"]
    assert body["citations"][0]["document_id"] == loaded["ids"]["oncall.html"]
    assert "every Tuesday at noon" in body["answer"]
