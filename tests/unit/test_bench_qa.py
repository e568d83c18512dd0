"""The real-document QA benchmark's questions are well-formed and its measures are right.

Nothing here runs the benchmark (``python -m bench --only qa`` does): the question file is
checked against the corpus, and the pure metric functions against hand-made cases.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from charterflow.services.charters import TEMPLATES
from pypdf import PdfReader

from bench import qa, qa_gaps, report

QUESTIONS, CHARTERS = qa.load()
SOURCES = qa.corpus_sources()


def test_at_least_30_questions_over_5_documents_of_3_formats() -> None:
    assert len(QUESTIONS) >= 30
    documents = {q.source for q in QUESTIONS}
    assert len(documents) >= 5
    assert len({Path(d).suffix for d in documents}) >= 3
    assert any(Path(d).suffix == ".pdf" for d in documents)
    ids = [q.id for q in QUESTIONS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: q.id)
def test_each_question_names_a_corpus_document_and_facts_that_document_states(
    question: qa.Question,
) -> None:
    assert question.source in SOURCES
    assert question.question.strip().endswith("?")
    assert question.facts
    assert all(f.strip() for f in question.facts)
    for fact in question.facts:
        qa.fact_pattern(fact)  # compiles
    # Answerable: every key fact is in the document's own text.
    assert all(qa.facts_stated(SOURCES[question.source].text, question.facts))


def test_pdf_questions_give_pages_of_the_pdf_that_hold_their_facts() -> None:
    pdfs = [q for q in QUESTIONS if q.source.endswith(".pdf")]
    assert pdfs
    assert all(q.pages for q in pdfs)
    assert not [q for q in QUESTIONS if q.pages and not q.source.endswith(".pdf")]
    for q in pdfs:
        reader = PdfReader(qa.CORPUS / q.source)
        pages = [reader.pages[n - 1].extract_text() for n in q.pages if 1 <= n <= len(reader.pages)]
        assert len(pages) == len(q.pages), q.id
        assert any(all(qa.facts_stated(p, q.facts)) for p in pages), q.id


def test_every_document_has_a_charter_subject_with_a_real_template() -> None:
    assert {c.source for c in CHARTERS} == set(SOURCES)
    assert all(c.template in TEMPLATES and c.title.strip() for c in CHARTERS)


def test_sources_md_records_every_corpus_file_with_its_licence() -> None:
    sources = (qa.CORPUS / "SOURCES.md").read_text()
    for name in SOURCES:
        (row,) = [line for line in sources.splitlines() if line.startswith(f"| {name} |")]
        cells = [c.strip() for c in row.strip("|").split("|")]
        # file, format, size, package, version, path in the package, licence
        assert len(cells) == 7, row
        assert all(cells), row
        assert int(cells[2]) == (qa.CORPUS / name).stat().st_size


# --- key facts and sources


def test_facts_match_whatever_the_case_and_whitespace() -> None:
    answer = (
        "Install the LIBPAPER1 package; the setting\n   is kept in the file /etc/papersize [1]."
    )
    assert qa.facts_stated(answer, ["libpaper1", "kept in the file /etc/papersize"]) == [True, True]
    assert qa.facts_stated(answer, ["libpaper2"]) == [False]


def test_a_plain_fact_is_literal_and_re_a_regular_expression() -> None:
    assert qa.facts_stated('a pattern like "foo?bar"', ["foo?bar"]) == [True]
    assert qa.facts_stated("foobar", ["foo?bar"]) == [False]  # ? is no wildcard in a plain fact
    assert qa.facts_stated("pronounced Deb'-ee-en", ["re:deb'?-ee-en"]) == [True]
    assert qa.facts_stated("Only the wildcards *\nand ? apply", [r"re:wildcards \* and \?"]) == [
        True
    ]


def test_the_right_source_and_page_are_read_from_the_citations() -> None:
    citations = [
        {"document_title": "debian-faq", "page": None},
        {"document_title": "fhs-3.0", "page": 24},
    ]
    assert qa.same_source("fhs-3.0", "fhs-3.0.pdf")
    assert qa.same_source("FHS-3.0.pdf", "fhs-3.0.pdf")
    assert not qa.same_source("fhs-2.3", "fhs-3.0.pdf")
    assert qa.cites_source(citations, "fhs-3.0.pdf")
    assert not qa.cites_source(citations, "screen-FAQ.txt")
    assert qa.cites_page(citations, "fhs-3.0.pdf", [23, 24])
    assert not qa.cites_page(citations, "fhs-3.0.pdf", [45])
    assert not qa.cites_page(citations, "debian-faq.txt", [24])  # a page of another document


# --- whole sentences

HARD_WRAPPED = qa.SourceText.of(
    "Q:   Mesg or biff cannot be turned on or off while running screen.\n"
    " \n"
    "A:   Screen failed to change the owner of the pty it uses. You need to\n"
    "     install screen setuid-root. See the file INSTALL for de-\n"
    "     tails, e.g. the\n"
    "     permissions.\n"
    "\n"
    "3.18.1. Purpose\n"
    "The /tmp directory must be made available for programs.\n"
    "5.14.1. Purpose\n"
    "/var/spool contains data which is awaiting some kind of later processing.\n"
    "* first item without a full stop\n"
    "* second item\n"
)


@pytest.mark.parametrize(
    ("span", "whole"),
    [
        ("Screen failed to change the owner of the pty it uses.", True),
        ("You need to install screen setuid-root.", True),  # across a line break
        ("You  need to\ninstall   screen setuid-root.", True),  # whitespace differs
        ("See the file INSTALL for details, e.g. the permissions.", True),  # hyphen rejoined
        ("Mesg or biff cannot be turned on or off while running screen.", True),  # after "Q:"
        ("The /tmp directory must be made available for programs.", True),  # after a heading
        ("/var/spool contains data which is awaiting some kind of later processing.", True),
        ("first item without a full stop", True),  # a whole list item
        ("the owner of the pty it uses.", False),  # starts mid-sentence
        ("Screen failed to change the owner", False),  # ends mid-sentence
        ("See the file INSTALL for details, e.g.", False),  # "e.g." then a lowercase word
        ("You need to", False),  # a line, not a sentence
    ],
)
def test_whole_sentences_are_judged_in_the_source_text(span: str, whole: bool) -> None:
    assert qa.whole_sentence(span, HARD_WRAPPED) is whole


def test_a_span_that_is_not_in_the_source_is_neither_whole_nor_cut() -> None:
    assert qa.whole_sentence("Screen is a window manager.", HARD_WRAPPED) is None
    assert qa.whole_sentence("…", HARD_WRAPPED) is None


def test_any_occurrence_of_a_repeated_span_may_be_the_whole_one() -> None:
    text = qa.SourceText.of("It is the purpose of the tool and more. Purpose of the tool.")
    assert qa.whole_sentence("Purpose of the tool.", text)


def test_a_span_across_a_pdf_page_break_is_found_with_its_running_header_or_without() -> None:
    pdf = SOURCES["fhs-3.0.pdf"]
    assert pdf.alternate is not None
    raw = pdf.alternate.text
    at = raw.index("\nThe Root Filesystem\n", raw.index("3.5. /boot"))  # a running header
    crossing = raw[at - 60 : at + 80]  # quoted by an app that keeps running headers
    assert qa.locate(crossing, qa.SourceText.of(pdf.text)) == []  # not in the cleaned text
    assert qa.whole_sentence(crossing, pdf) is not None
    without = re.sub(r"The Root Filesystem\n\d+\n", "", crossing)  # header, page number
    assert without != crossing
    assert qa.whole_sentence(without, pdf) is not None


def test_html_text_keeps_blocks_apart_and_drops_scripts() -> None:
    text = qa.html_text(
        b"<html><head><style>p{}</style><script>var x;</script></head><body>"
        b"<h2>3.2.3. Voting&para;</h2><p>Votes are not\nroutinely held.</p><ul><li>one</li></ul>"
    )
    assert "var x" not in text
    assert "p{}" not in text
    source = qa.SourceText.of(text)
    assert qa.whole_sentence("Votes are not routinely held.", source)
    assert qa.whole_sentence("one", source)
    assert re.search(r"Voting¶\s*\n\s*\n\s*Votes", text)


def test_pdf_text_drops_running_headers_and_page_numbers() -> None:
    pdf = (qa.CORPUS / "fhs-3.0.pdf").read_bytes()
    lines = [line.strip() for line in qa.pdf_text(pdf).splitlines()]
    assert "Filesystem Hierarchy Standard" not in lines[40:]  # the running header, past page 1
    assert not [line for line in lines if re.fullmatch(r"\d{2}", line)]  # pages 10-50
    assert "Programs must not assume that any files or directories in /tmp are preserved" in (
        " ".join(lines)
    )


# --- summaries and the report


def _row(source: str, stated: bool, right: bool, spans: int, whole: int, page: Any = None) -> dict:
    return {
        "source": source,
        "stated": stated,
        "right_source": right,
        "right_page": page,
        "spans": spans,
        "whole": whole,
        "not_found": 0,
    }


def test_answer_shares_count_questions_and_spans() -> None:
    rows = [
        _row("a.pdf", True, True, 2, 2, page=True),
        _row("a.pdf", True, False, 2, 1, page=False),
        _row("b.txt", False, True, 0, 0),
        _row("b.txt", True, True, 4, 1),
    ]
    summary = qa.summarize_answers(rows, [100.0, 200.0, 300.0, 400.0])
    assert summary["key_facts_pct"] == 75.0
    assert summary["right_source_pct"] == 75.0
    assert summary["facts_and_source_pct"] == 50.0
    assert summary["right_page_pct"] == 50.0
    assert summary["paged_questions"] == 2
    assert summary["whole_sentence_pct"] == 50.0  # 4 of 8 spans
    assert summary["answers_all_whole_pct"] == 25.0
    assert summary["uncited_answers"] == 1
    assert summary["p50_ms"] == 250.0


def test_charter_scores_count_on_subject_and_unsupported_sections() -> None:
    subject = qa.CharterSubject("screen-FAQ.txt", "sop", "SOP: troubleshooting GNU Screen")
    on = {
        "document_title": "screen-FAQ",
        "text": "Screen failed to change the owner of the pty it uses.",
    }
    off = {"document_title": "debian-faq", "text": "not a sentence of the FAQ at all"}
    charter = {
        "sections": [
            {"key": "purpose", "status": "drafted", "body": "…", "citations": [on, off]},
            {"key": "scope", "status": "unsupported", "body": "…", "citations": []},
        ]
    }
    row = qa.score_charter(subject, charter, SOURCES)
    assert (row["sections"], row["unsupported"], row["citations"], row["on_subject"]) == (
        2,
        1,
        2,
        1,
    )
    assert (row["whole"], row["not_found"]) == (1, 1)
    summary = qa.summarize_charters([row], [1000.0])
    assert summary["on_subject_pct"] == 50.0
    assert summary["whole_sentence_pct"] == 50.0
    assert summary["unsupported_pct"] == 50.0


def test_the_report_shows_both_modes_and_the_three_goals() -> None:
    answers = qa.summarize_answers([_row("fhs-3.0.pdf", True, True, 2, 1, page=True)], [120.0])
    charters = qa.summarize_charters([], [])
    results = {
        "qa": {
            "questions": 1,
            "documents": [
                {"filename": "fhs-3.0.pdf", "media_type": "application/pdf", "size_bytes": 1000,
                 "chunk_count": 3}
            ],
            "ingest_seconds": 5.0,
            "goals": {"facts_and_source_pct": 85.0},
            "answers": {
                "extractive": {**answers, "rows": [_row("fhs-3.0.pdf", True, True, 2, 1)]},
                "model": {"status": "not run: no model server"},
            },
            "charters": {"extractive": charters, "model": {"status": "not run: no model server"}},
        }
    }  # fmt: skip
    page = report.render(results)
    assert "| **key facts + right source** (goal ≥ 85 %) | 100.0 % | not run |" in page
    assert "Model mode: not run: no model server." in page
    found = {t.name: t for t in report.targets(results)}
    assert found["real documents: key facts + right source (extractive)"].met is True
    assert found["real documents: charter citations on-subject (extractive)"].met is None


def test_kept_answers_are_rescored_with_the_current_measures() -> None:
    question = next(q for q in QUESTIONS if q.id == "screen-biff")
    reply = {
        "mode": "extractive",
        "answer": "Screen failed to change the owner of the pty it uses. [1] ... setuid-root.",
        "citations": [
            {"document_title": "screen-FAQ", "page": None, "chunk_id": "x",
             "text": "Screen failed to change the owner of the pty it uses."}
        ],
    }  # fmt: skip
    row = {**qa.score_answer(question, reply, SOURCES), "ms": 50.0}
    kept = {
        "answers": {"extractive": {"rows": [{**row, "stated": False, "whole": 0}]}},
        "charters": {"model": {"status": "not run: no model server"}},
    }
    again = qa.rescore(kept)
    (rescored,) = again["answers"]["extractive"]["rows"]
    assert rescored["stated"] is True
    assert rescored["whole"] == 1
    assert again["answers"]["extractive"]["facts_and_source_pct"] == 100.0
    assert again["charters"]["model"] == {"status": "not run: no model server"}


def test_model_mode_takes_the_questions_round_robin_over_the_documents() -> None:
    order = qa.interleaved(QUESTIONS)
    assert sorted(q.id for q in order) == sorted(q.id for q in QUESTIONS)
    first = [q.source for q in order[: len({q.source for q in QUESTIONS})]]
    assert len(set(first)) == len(first)  # one question of each document before any second


def test_a_miss_is_put_down_to_its_cause() -> None:
    question = qa.Question("x", "a.txt", "Who?", ("alice", "bob"))
    docs = {
        "a.txt": [
            "Nothing here. Alice met Bob. The end.",
            "Alice came. Bob left.",
            "Unrelated text.",
        ]
    }

    def row(stated: bool, right: bool, *quotes: str) -> dict[str, Any]:
        citations = [{"document_title": "a", "text": t} for t in quotes]
        return {"stated": stated, "right_source": right, "citations": citations}

    assert qa_gaps.cause(question, row(True, True, "Alice met Bob."), docs) is None
    assert qa_gaps.cause(question, row(False, False), docs) == "other document"
    assert qa_gaps.cause(question, row(True, False), docs) == "facts stated, wrong source"
    assert qa_gaps.cause(question, row(False, True, "Unrelated text."), docs) == "wrong passage"
    assert (
        qa_gaps.cause(question, row(False, True, "Nothing here."), docs)
        == "key sentence not chosen"
    )
    assert (
        qa_gaps.cause(question, row(False, True, "Alice came."), docs)
        == "fact split across sentences"
    )
    lonely = qa.Question("y", "a.txt", "Who?", ("alice", "carol"))
    assert qa_gaps.cause(lonely, row(False, True, "Alice came."), docs) == "fact not in one passage"


def test_the_report_says_how_much_of_model_mode_ran_and_how_often_it_fell_back() -> None:
    model = {
        "model": "tiny (llama.cpp server)",
        "order": "round-robin over the documents",
        "questions": 2,
        "modes_seen": ["extractive", "llm"],
        "rows": [{"mode": "llm"}, {"mode": "extractive"}],
    }
    qa_result = {
        "questions": 52,
        "answers": {"model": model},
        "charters": {"extractive": {"charters": 8}, "model": {"charters": 3}},
    }
    note = report._qa_model_note(qa_result)
    assert "2 of 52 questions (round-robin over the documents)" in note
    assert "3 of 8 charters (the rest not started" in note
    assert "(1 answered with the extracts instead)" in note
