"""Lexical search on PostgreSQL loosens its match level by level (see search._pg_lexical)."""

from charterflow.retrieval.search import _tsquery_levels


def test_three_terms_go_all_then_all_but_one_then_any() -> None:
    assert _tsquery_levels(["'launch'", "'window'", "'friday'"]) == [
        "'launch' & 'window' & 'friday'",
        "('window' & 'friday') | ('launch' & 'friday') | ('launch' & 'window')",
        "'launch' | 'window' | 'friday'",
    ]


def test_two_terms_skip_the_middle_level_and_one_term_is_one_level() -> None:
    assert _tsquery_levels(["'a'", "'b'"]) == ["'a' & 'b'", "'a' | 'b'"]
    assert _tsquery_levels(["'a'"]) == ["'a'"]
    assert _tsquery_levels([]) == []


def test_long_queries_skip_the_combinatorial_level() -> None:
    terms = [f"'t{i}'" for i in range(9)]
    assert len(_tsquery_levels(terms)) == 2
