"""Charters: drafted from the notebook's sources with every sentence cited, edited section by
section, redrafted, versioned and restored, exported as Markdown with numbered references."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import API, Account, Api
from tests.ingest.conftest import wait_settled

BRIEF = (
    b"Harbor intake brief.\n"
    b"The problem is that volunteers lose track of donated food because intake is recorded on "
    b"paper.\n"
    b"Our users are the pantry volunteers and the warehouse coordinators.\n"
    b"The goal is to record every donation within one minute of arrival.\n"
    b"Barcode scanning of donations is in scope for the first release.\n"
    b"Payroll and volunteer scheduling are out of scope.\n"
    b"The main risk is unreliable network coverage in the warehouse.\n"
)
METRICS = (
    b"Harbor measures.\n"
    b"Success is measured by the share of donations recorded on the day they arrive, with a "
    b"target of ninety percent.\n"
)
UNSUPPORTED = "No passage in this notebook's sources supports this section."
_MARK = re.compile(r"\[(\d+)\]")


@pytest.fixture(scope="module")
def sources(api: Api) -> dict[str, Any]:
    owner = api.register("Charlotte")
    nb = api.notebook(owner)
    ids = [
        api.upload(owner, nb["id"], name, data).json()["id"]
        for name, data in {"brief.txt": BRIEF, "measures.txt": METRICS}.items()
    ]
    docs = wait_settled(api, owner, ids)
    assert all(d["status"] == "ready" for d in docs.values()), docs
    return {"owner": owner, "nb": nb["id"], "ws": nb["workspace_id"]}


def _draft(api: Api, who: Account, nb: str, **body: Any) -> dict[str, Any]:
    body = {"template": "product-charter", "title": "Harbor intake", **body}
    r = api.client.post(f"{API}/notebooks/{nb}/charters", json=body, headers=who.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _sentences(body: str) -> list[str]:
    return [s for s in re.split(r"(?<=\])\s+", body.strip()) if s]


def test_a_product_charter_is_drafted_with_every_sentence_cited(
    api: Api, sources: dict[str, Any]
) -> None:
    charter = _draft(api, sources["owner"], sources["nb"])
    keys = [s["key"] for s in charter["sections"]]
    assert keys == [
        "problem",
        "users",
        "goals",
        "scope",
        "out-of-scope",
        "risks",
        "success-measures",
    ]
    assert charter["version"] == 1
    by_key = {s["key"]: s for s in charter["sections"]}
    for section in charter["sections"]:
        assert section["status"] == "drafted", section
        assert section["mode"] == "extractive"
        assert section["citations"]
        for sentence in _sentences(section["body"]):
            numbers = [int(n) for n in _MARK.findall(sentence)]
            assert numbers, f"uncited sentence in {section['key']}: {sentence!r}"
            for n in numbers:  # the sentence is the cited passage's own text
                assert section["citations"][n - 1]["text"] in sentence
    # A sentence naming the section's subject keeps out mere neighbours in meaning (the
    # success measure is close to "goals and objectives" but is not one).
    assert by_key["goals"]["body"] == (
        "The goal is to record every donation within one minute of arrival. [1]"
    )
    assert by_key["scope"]["body"] == (
        "Barcode scanning of donations is in scope for the first release. [1]"
    )
    assert "paper" in by_key["problem"]["body"]
    assert "volunteers" in by_key["users"]["body"]
    assert "ninety percent" in by_key["success-measures"]["body"]
    measures = by_key["success-measures"]["citations"][0]
    assert measures["document_title"] == "measures"


def test_a_section_without_support_says_so(api: Api, sources: dict[str, Any]) -> None:
    charter = _draft(api, sources["owner"], sources["nb"], template="sop", title="Harbor SOP")
    assert [s["key"] for s in charter["sections"]] == [
        "purpose",
        "scope",
        "roles",
        "steps",
        "checks",
    ]
    checks = next(s for s in charter["sections"] if s["key"] == "checks")
    assert checks["status"] == "unsupported"
    assert checks["body"] == UNSUPPORTED
    assert checks["citations"] == []
    scope = next(s for s in charter["sections"] if s["key"] == "scope")
    assert scope["status"] == "drafted"  # "in scope" is in the brief
    md = api.client.get(
        f"{API}/charters/{charter['id']}/export", headers=sources["owner"].headers
    ).text
    assert f"## Checks\n\n_{UNSUPPORTED}_\n" in md


def test_edits_redrafts_versions_restore_and_export(api: Api, sources: dict[str, Any]) -> None:
    owner = sources["owner"]
    charter = _draft(api, owner, sources["nb"])
    cid = charter["id"]
    problem = charter["sections"][0]
    assert len(problem["citations"]) == 1

    # Keep: the edited text must only cite what the section has.
    r = api.client.patch(
        f"{API}/charters/{cid}/sections/problem",
        json={"body": "Intake is on paper [1]. See also [2].", "citations": "keep"},
        headers=owner.headers,
    )
    assert r.status_code == 400, r.text
    assert "[2]" in r.json()["detail"]
    r = api.client.patch(
        f"{API}/charters/{cid}/sections/problem",
        json={"body": "Donations are recorded on paper [1].", "citations": "keep"},
        headers=owner.headers,
    )
    assert r.status_code == 200, r.text
    edited = r.json()
    assert edited["version"] == 2
    assert edited["sections"][0]["status"] == "edited"
    assert edited["sections"][0]["citations"] == problem["citations"]

    # Drop: no citations, and the marks go with them.
    r = api.client.patch(
        f"{API}/charters/{cid}/sections/users",
        json={"body": "Volunteers [1] and coordinators.", "citations": "drop"},
        headers=owner.headers,
    )
    users = r.json()["sections"][1]
    assert (users["body"], users["citations"]) == ("Volunteers and coordinators.", [])

    # Redraft one section with another question.
    r = api.client.post(
        f"{API}/charters/{cid}/sections/users/regenerate",
        json={"query": "Who are the warehouse coordinators?"},
        headers=owner.headers,
    )
    assert r.status_code == 200, r.text
    users = r.json()["sections"][1]
    assert users["status"] == "drafted"
    assert "coordinators" in users["body"]
    assert users["query"] == "Who are the warehouse coordinators?"
    assert r.json()["version"] == 4

    r = api.client.patch(f"{API}/charters/{cid}", json={"title": "Harbor"}, headers=owner.headers)
    assert r.json()["title"] == "Harbor"

    versions = api.client.get(f"{API}/charters/{cid}/versions", headers=owner.headers).json()
    assert versions["total"] == 5
    assert [v["change"] for v in versions["items"]] == [
        "draft",
        "edit:problem",
        "edit:users",
        "regenerate:users",
        "title",
    ]
    first = api.client.get(f"{API}/charters/{cid}/versions/1", headers=owner.headers).json()
    assert first["sections"] == charter["sections"]
    assert first["title"] == "Harbor intake"

    restored = api.client.post(
        f"{API}/charters/{cid}/versions/1/restore", headers=owner.headers
    ).json()
    assert restored["version"] == 6
    assert restored["sections"] == charter["sections"]
    assert restored["title"] == "Harbor intake"
    assert (
        api.client.get(f"{API}/charters/{cid}/versions/99", headers=owner.headers).status_code
        == 404
    )

    export = api.client.get(f"{API}/charters/{cid}/export", headers=owner.headers)
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/markdown")
    assert 'filename="Harbor-intake.md"' in export.headers["content-disposition"]
    md = export.text
    assert md.startswith("# Harbor intake\n\n_Product charter · version 6_\n\n## Problem\n\n")
    body, refs = md.split("\n## References\n\n")
    lines = refs.strip().splitlines()
    # References are numbered 1..n, each marker in the body names one, each one is used.
    assert [line.split(". ", 1)[0] for line in lines] == [str(n) for n in range(1, len(lines) + 1)]
    assert {int(n) for n in _MARK.findall(body)} == set(range(1, len(lines) + 1))
    assert any(line.startswith(f'{n}. measures — "') for n, line in enumerate(lines, 1))
    assert all(re.match(r"\d+\. (brief|measures) — \"", line) for line in lines)


def test_charters_are_listed_deleted_and_audited(api: Api, sources: dict[str, Any]) -> None:
    owner = api.register("Chase")
    nb = api.notebook(owner)
    made = [_draft(api, owner, nb["id"], title=f"C{n}") for n in range(3)]
    # A notebook without sources: every section says so.
    assert {s["status"] for s in made[0]["sections"]} == {"unsupported"}
    page = api.client.get(
        f"{API}/notebooks/{nb['id']}/charters", params={"limit": 2}, headers=owner.headers
    ).json()
    assert page["total"] == 3
    assert [c["id"] for c in page["items"]] == [made[0]["id"], made[1]["id"]]
    cid = made[0]["id"]
    api.client.post(f"{API}/charters/{cid}/sections/goals/regenerate", headers=owner.headers)
    assert api.client.delete(f"{API}/charters/{cid}", headers=owner.headers).status_code == 204
    assert api.client.get(f"{API}/charters/{cid}", headers=owner.headers).status_code == 404
    assert (
        api.client.post(
            f"{API}/charters/{made[1]['id']}/sections/nope/regenerate", headers=owner.headers
        ).status_code
        == 404
    )
    audit = api.client.get(
        f"{API}/workspaces/{nb['workspace_id']}/audit", params={"limit": 100}, headers=owner.headers
    ).json()
    actions = [e["action"] for e in audit["items"] if e["target_type"] == "charter"]
    assert actions == ["charter.create"] * 3 + ["charter.section.regenerate", "charter.delete"]


def test_a_model_drafts_sections_and_uncited_sentences_are_dropped(
    with_model: Any, sources: dict[str, Any]
) -> None:
    def reply(_path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        content = (
            "Intake happens on paper [1]. This is a pervasive industry-wide failure. "
            "Volunteers lose track of food [1][9]."
        )
        return 200, {"choices": [{"message": {"role": "assistant", "content": content}}]}

    server, api = with_model(reply)
    charter = _draft(api, sources["owner"], sources["nb"], template="sop", title="Harbor SOP")
    scope = charter["sections"][1]
    assert scope["mode"] == "llm"
    assert scope["model"] == "test-model"
    assert scope["body"] == "Intake happens on paper [1]. Volunteers lose track of food [1]."
    assert len(scope["citations"]) == 1
    asked = [b for path, b in server.requests if path.endswith("/chat/completions")]
    assert '"Scope" section of the standard operating procedure "Harbor SOP"' in str(asked)
    checks = charter["sections"][-1]  # nothing supports it: the model is not asked to invent
    assert checks["status"] == "unsupported"
    assert len(asked) == sum(1 for s in charter["sections"] if s["status"] != "unsupported")


def test_a_failing_model_leaves_an_extractive_draft_with_a_warning(
    with_model: Any, sources: dict[str, Any]
) -> None:
    _server, api = with_model(lambda _p, _b: (500, {"error": "boom"}))
    charter = _draft(api, sources["owner"], sources["nb"])
    problem = charter["sections"][0]
    assert problem["mode"] == "extractive"
    assert problem["status"] == "drafted"
    assert "language model is unavailable" in problem["warning"]


def test_an_edit_drops_the_citations_the_text_no_longer_uses_unless_kept(
    api: Api, sources: dict[str, Any]
) -> None:
    owner = sources["owner"]
    charter = _draft(api, owner, sources["nb"])
    cid = charter["id"]
    three = [
        {**c, "start": c["start"] + n, "end": c["end"] + n}  # three distinct citations
        for n, c in enumerate([charter["sections"][0]["citations"][0]] * 3)
    ]
    url = f"{API}/charters/{cid}/sections/problem"
    r = api.client.patch(
        url, json={"body": "A [1], b [2], c [3].", "citations": three}, headers=owner.headers
    )
    assert r.status_code == 200, r.text
    # Given citations are checked against the passage and their quotes rebuilt from it.
    resolved = r.json()["sections"][0]["citations"]
    assert [(c["start"], c["end"]) for c in resolved] == [(c["start"], c["end"]) for c in three]
    three = resolved

    # The default: only what the text still cites, renumbered as it cites them.
    r = api.client.patch(url, json={"body": "Only c [3], then a [1]."}, headers=owner.headers)
    assert r.status_code == 200, r.text
    problem = r.json()["sections"][0]
    assert problem["body"] == "Only c [1], then a [2]."
    assert problem["citations"] == [three[2], three[0]]
    md = api.client.get(f"{API}/charters/{cid}/export", headers=owner.headers).text
    assert "(see also" not in md.split("## Users")[0]  # nothing unused reaches the export

    r = api.client.patch(
        url, json={"body": "No citations now.", "citations_policy": "keep"}, headers=owner.headers
    )
    assert r.json()["sections"][0]["citations"] == [three[2], three[0]]
    r = api.client.patch(url, json={"body": "Cites [3]."}, headers=owner.headers)
    assert r.status_code == 400
    assert "[3]" in r.json()["detail"]
    r = api.client.patch(
        url, json={"body": "x", "citations_policy": "sometimes"}, headers=owner.headers
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "citations_policy"]
    r = api.client.patch(url, json={"body": "Plain."}, headers=owner.headers)
    assert r.json()["sections"][0]["citations"] == []


CORPUS = Path(__file__).parent.parent / "fixtures" / "corpus"


@pytest.fixture(scope="module")
def semantic(api: Api) -> Iterator[Api]:
    """The app with the default (production) embedder, all-MiniLM-L6-v2."""
    with api.variant(embeddings_provider="semantic") as running:
        yield running


@pytest.fixture(scope="module")
def corpus(semantic: Api) -> dict[str, Any]:
    """Real documents nobody here wrote (tests/fixtures/corpus/README.md)."""
    owner = semantic.register("Corin")
    nb = semantic.notebook(owner)
    ids = {
        name: semantic.upload(owner, nb["id"], name, (CORPUS / name).read_bytes()).json()["id"]
        for name in ("screen-FAQ.txt", "zstd-CONTRIBUTING.md", "debian-faq-ch1-2.txt")
    }
    docs = wait_settled(semantic, owner, list(ids.values()), timeout=300)
    assert all(d["status"] == "ready" for d in docs.values()), docs
    return {"owner": owner, "nb": nb["id"], "ids": ids}


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.\w")


@pytest.mark.parametrize("template", ["sop", "product-charter"])
def test_a_charter_cites_only_the_documents_about_its_subject(
    semantic: Api, corpus: dict[str, Any], template: str
) -> None:
    charter = _draft(
        semantic,
        corpus["owner"],
        corpus["nb"],
        template=template,
        title="Contributing to Zstandard",
    )
    cited = [c for s in charter["sections"] for c in s["citations"]]
    assert cited, charter["sections"]
    assert {c["document_id"] for c in cited} == {corpus["ids"]["zstd-CONTRIBUTING.md"]}
    # A sentence serves one section: no section repeats what another one quotes.
    quoted = [" ".join(c["text"].split()).casefold() for c in cited]
    assert len(quoted) == len(set(quoted)), quoted
    for section in charter["sections"]:
        if section["status"] == "unsupported":
            assert (section["body"], section["citations"]) == (UNSUPPORTED, [])
            continue
        for c in section["citations"]:
            text = c["text"].strip()
            # Whole sentences: one that ends, or one that introduces the list it brings.
            assert re.search(r"[.!?:][\"')\]`]*$", text) or ":\n" in text, text
            assert not _EMAIL.search(text)  # no contact lines
            assert "WITHOUT ANY WARRANTY" not in text
