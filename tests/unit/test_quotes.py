"""What extracts may quote (retrieval/quotes.py), on lines of real documents nobody here wrote:
the hard-wrapped GNU Screen FAQ and Debian FAQ (tests/fixtures/corpus)."""

from __future__ import annotations

from pathlib import Path

from charterflow.retrieval import quotes

CORPUS = Path(__file__).parent.parent / "fixtures" / "corpus"


def _paragraph(name: str, starts: str, lines: int) -> str:
    """``lines`` lines of ``name`` from the last line starting with ``starts``."""
    text = (CORPUS / name).read_text()
    at = text.rindex(starts)
    return "\n".join(text[at:].splitlines()[:lines])


def test_hard_wrapped_lines_are_joined_into_sentences() -> None:
    text = _paragraph("screen-FAQ.txt", "Q:   I cannot configure screen.", 7)
    units = quotes.units(text)
    said = [" ".join(text[u.start : u.end].split()) for u in units]
    assert said[0] == "Q: I cannot configure screen."
    assert units[0].question
    assert units[1].question  # "Sed does not work." is part of the question
    assert not units[1].whole or units[1].question
    # The answer starts after "A:", and its first sentence spans two lines of the file.
    assert said[2] == (
        "The regular expressions used in our configure scrip are too complicated for GNU sed "
        "version 2.03."
    )
    assert units[2].whole
    assert units[2].opens_paragraph
    assert not units[2].question


def test_section_numbers_and_headings_are_not_sentences() -> None:
    contents = _paragraph("debian-faq-ch1-2.txt", "    2.1. What is the latest version", 3)
    units = quotes.units(contents)
    assert contents[units[0].start : units[0].end] == "2.1. What is the latest version of Debian?"
    assert all(u.question for u in units[:3])  # the contents' entries: questions, not answers
    body = _paragraph("debian-faq-ch1-2.txt", "Currently there are three versions", 3)
    lead = quotes.units(body)[0]
    assert quotes.leads_in(body[lead.start : lead.end])
    assert not quotes.units("Chapter 2.")[0].whole
    assert not quotes.units("Getting and installing Debian GNU/Linux")[0].whole
    assert quotes.units("It is too complicated for GNU sed version 2.03.")[0].whole


def test_a_passage_cut_mid_sentence_does_not_start_with_a_sentence() -> None:
    units = quotes.units("running in the lost screen session. Screen is a means.", False)
    assert not units[0].whole
    assert units[1].whole


def test_boilerplate() -> None:
    assert quotes.boilerplate("FITNESS FOR A PARTICULAR PURPOSE.") == "licence"
    assert quotes.boilerplate("Copyright © 1996-2021 Software in the Public Interest") == "licence"
    assert quotes.boilerplate("Send patches to jnweiger@immd4.informatik.uni-erlangen.de.") == (
        "contact"
    )
    assert quotes.boilerplate("https://www.debian.org/doc/") == "contact"
    assert quotes.boilerplate("1.1 What is this FAQ? ........ 3") == "contents"
    # Sentences about licences and copyright files are content, not boilerplate.
    assert quotes.boilerplate("The debian/copyright file must be machine-interpretable.") is None
    assert quotes.boilerplate("In order to accept your pull request, we need a CLA.") is None


def test_questions_echoes_and_values() -> None:
    assert quotes.is_question("Is there a Java version of zlib?")
    assert quotes.is_question("Q:   Screen gets the terminal size wrong and messes up.")
    assert quotes.echoes("GNU sed exit codes.", "What exit codes does GNU sed return?")
    assert not quotes.echoes("An exit status of 0 means success.", "What exit codes?")
    assert quotes.wants_value("What is the default weight of a glob, and the maximum?")
    assert not quotes.wants_value("Why does sed not work?")
    assert quotes.leans_back("This is done by the kernel.")


def test_a_sentence_opening_with_the_following_introduces_a_list() -> None:
    # The FHS (page 25) introduces its table of required directories this way.
    assert quotes.leads_in(
        "The following directories, or symbolic links to directories, are required in /usr."
    )
    assert quotes.leads_in("GNU sed returns these exit codes:")
    assert not quotes.leads_in("Data stored in /var/tmp is more persistent than data in /tmp.")
    assert not quotes.leads_in("Following the release, the branch is merged into dev.")
