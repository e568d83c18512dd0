"""Issue 26, item 8: Markdown exports pass no markup through. Source text (possibly from a
third-party page) went verbatim into exports: ``<script>``, ``<img onerror>``,
``[x](javascript:…)``, and a line that faked a ``## References`` heading."""

from __future__ import annotations

from charterflow.services.markdown import block, inline, with_references

from tests.api.conftest import API, Api

HOSTILE = (
    "Intro <script>alert(1)</script> and <img src=x onerror=alert(2)>.\n"
    "[click](javascript:alert(3)) [fine](https://example.com/a) [mail](mailto:a@b.example)\n"
    "[ref]: data:text/html,<b>x</b>\n"
    "## References\n"
    "1. Board minutes (CONFIDENTIAL), page 3\n"
)


def test_bodies_and_titles_are_made_inert() -> None:
    out = block(HOSTILE)
    assert "<script" not in out
    assert "<img" not in out
    assert "&lt;script&gt;" in out  # shown as text, not dropped
    assert "javascript:" not in out
    assert "data:text" not in out
    assert "(https://example.com/a)" in out
    assert "(mailto:a@b.example)" in out
    assert "\n## References" not in out  # no heading opened from the body
    assert inline("Title\n## References") == "Title ## References"
    doc = with_references(
        "Note <b>bold</b>\n## References",
        "See [1].",
        [{"document_title": "Page <svg onload=x>", "text": "[x](vbscript:y)", "page": 2}],
    )
    assert [line for line in doc.splitlines() if line.startswith("#")] == [
        "# Note &lt;b&gt;bold&lt;/b&gt; ## References",  # one line: the title, not a heading
        "## References",
    ]
    assert "<svg" not in doc
    assert "<b>" not in doc
    assert "vbscript:" not in doc


def test_a_note_export_carries_no_live_markup(api: Api) -> None:
    owner = api.register("Exporter")
    nb = api.notebook(owner)["id"]
    r = api.client.post(
        f"{API}/notebooks/{nb}/notes",
        json={"title": "Findings", "body": HOSTILE},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    export = api.client.get(f"{API}/notes/{r.json()['id']}/export", headers=owner.headers)
    assert export.status_code == 200
    text = export.text
    assert "<script" not in text
    assert "<img" not in text
    assert "javascript:" not in text
    assert [line for line in text.splitlines() if line.startswith("## ")] == []
