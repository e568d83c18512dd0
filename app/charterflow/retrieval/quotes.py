"""What an extract may quote: whole sentences, never a question, a heading or boilerplate.

Pure functions over a passage's text and the spans ``text.sentences`` gives it. They do not
depend on how the splitter works: a span that does not end a sentence (a hard-wrapped line, a
sentence the splitter cut at an abbreviation) is joined to the spans after it, within its
paragraph, until one ends with terminal punctuation; what still does not end one (a heading,
a list item without a full stop) is a *fragment*, quoted only as the neighbour of
a whole sentence (the items of a list that a sentence introduces with a colon). A table row
as the parsers label it ("van: V7; miles: 91234") is a whole fact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from charterflow.retrieval.embedders import terms
from charterflow.retrieval.text import sentences

#: A unit longer than this is not grown further (a paragraph without full stops is no sentence).
MAX_UNIT_CHARS = 600
#: Closing quotes and brackets that may follow a sentence's last punctuation.
_CLOSERS = "\"')]`\u201d\u2019"
_TERMINAL = re.compile(r"[.!?:][" + re.escape(_CLOSERS) + r"]*$")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_STARTS_LOWER = re.compile(r"^[a-z]")
#: A section number ending a span: "2.1.", "Getting started 3.1.", "7." alone.
_SECTION_NUMBER = re.compile(r"(?:^|\s)\d+(?:\.\d+)+\.?$|^\d+\.$")
_WORD = re.compile(r"[^\W\d_]{2,}")
#: A table row as the parsers label it ("van: V7; miles: 91234", ``parsers._labelled_rows``):
#: a whole fact by construction, though it ends with no full stop.
_LABELLED_ROW = re.compile(r"^[^:;\n]{1,80}: [^;\n]+(?:; [^:;\n]{1,80}: [^;\n]+)+$")
#: A span this short ending with a section number is a heading or a contents line.
HEADING_WORDS = 6
#: Words a whole sentence has at least, addresses left out ("Chapter 2." is a heading, not a
#: sentence, nor is "(https://www.debian.org/Bugs/ Reporting) .").
MIN_WORDS = 3
#: How an FAQ marks its questions and answers ("Q: ...", "A: ...").
_QUESTION_MARK = re.compile(r"^\s*(?:Q|Question)\s*[:.)]\s", re.IGNORECASE)
_ANSWER_MARK = re.compile(r"^\s*(?:A|Answer)\s*[:.)]\s+", re.IGNORECASE)
#: Sentences that only make sense after the one before them ("This is done by ...").
_LEANS_BACK = re.compile(
    r"^(?:this|that|these|those|it|they|such|here|otherwise|however|instead|also|then|thus|"
    r"therefore|hence|in (?:this|that|such a|either) case|for (?:this|that) reason|"
    r"in addition|as a result)\b",
    re.IGNORECASE,
)
#: Questions that ask for a value (a number, a code, a limit), which a sentence may leave to
#: the next one ("GNU sed returns an exit status." "0: success, 1: ...").
_WANTS_VALUE = re.compile(
    r"\b(?:how (?:many|much|long|large|big|old|often|far)|default|maximum|minimum|max|min|"
    r"limits?|exit (?:codes?|status(?:es)?)|return (?:codes?|values?)|values?|numbers?|"
    r"sizes?|versions?|ports?|percent(?:age)?|weights?|priority|priorities|when|year|date)\b",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")

#: Licence boilerplate: the notices themselves, not sentences that are about licences.
_LICENCE = re.compile(
    r"WITHOUT ANY WARRANTY|MERCHANTABILITY|FITNESS FOR A PARTICULAR PURPOSE|IN NO EVENT SHALL|"
    r"\bLIABLE\b|[\"“]AS IS[\"”]|\bPermission is (?:hereby )?granted\b|\bAll rights reserved\b|"
    r"\bCopyright (?:©|\(c\)|\d{4})|©\s*\d{4}|\bthis (?:program|library|document) is free "
    r"software\b|\byou can redistribute it\b|\bverbatim cop(?:y|ies)\b|\bpermission notice\b|"
    r"\bRedistributions? of source code\b|\bSPDX-License-Identifier\b|\btrademarks?\b",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|<[^<>@\s]+ at [^<>\s]+>")
#: A postal address or a telephone number.
_CONTACT = re.compile(
    r"\b(?:Boston, MA|Cambridge, MA|Suite \d+|P\.?O\.? Box \d+|\d{5}(?:-\d{4})?,? USA)\b|"
    r"\b(?:phone|tel|fax)\b\.?:?\s*\+?\d",
    re.IGNORECASE,
)
_URL = re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.\S+")
#: A table of contents: dot leaders, or several section numbers in one span.
_TOC = re.compile(r"\.{4,}|(?:\s|^)\d+(?:\.\d+)+\.?\s+\S+(?:\s+\S+){0,8}\s+\d+(?:\.\d+)+\.?\s")
_CONTENTS = re.compile(r"^\s*(?:table of )?contents\b", re.IGNORECASE)


@dataclass(frozen=True)
class Unit:
    """A whole sentence of a passage (or a fragment), as offsets into the passage's text, and
    the indexes of the ``sentences`` spans it joins (their stored vectors are its vector)."""

    start: int
    end: int
    first: int
    last: int
    whole: bool
    #: A blank line (or the passage's start) comes before it: it starts a paragraph.
    opens_paragraph: bool
    #: A question, or part of one ("Q: I cannot configure screen. Sed does not work.").
    question: bool = False


def terminal(sentence: str) -> bool:
    """Whether ``sentence`` ends as sentences do (., !, ?, : before any closing quote), not with
    a section number ("2.1." before the heading or question it numbers)."""
    stripped = sentence.rstrip()
    if not _TERMINAL.search(stripped):
        return False
    # A number at the end of a short span numbers what follows; "... version 2.03." ends.
    return not (_SECTION_NUMBER.search(stripped) and _words(stripped) <= HEADING_WORDS)


def _words(sentence: str) -> int:
    return len(_WORD.findall(sentence))


def units(text: str, starts_document: bool = True) -> list[Unit]:
    """The passage's sentences: its spans joined, within a paragraph, until one ends a sentence.

    A unit is *whole* if it ends with terminal punctuation and starts a sentence: after a
    paragraph break or a sentence that ended, not in lower case at the very start of a passage
    that does not start its document (``starts_document``; a chunk cut mid-sentence).
    """
    spans = sentences(text)
    groups: list[list[int]] = []
    for i, (s, _e) in enumerate(spans):
        if groups:
            g = groups[-1]
            a, b = spans[g[0]][0], spans[g[-1]][1]
            if (
                not terminal(text[a:b])
                and not _PARAGRAPH_BREAK.search(text[b:s])
                and not _LABELLED_ROW.match(text[a:b])
                and not _LABELLED_ROW.match(text[s : spans[i][1]])
                and spans[i][1] - a <= MAX_UNIT_CHARS
            ):
                g.append(i)
                continue
        groups.append([i])
    out: list[Unit] = []
    previous_ended = True
    asking = False  # inside an FAQ's "Q: ..." paragraph
    for n, g in enumerate(groups):
        a, b = spans[g[0]][0], spans[g[-1]][1]
        gap = text[spans[groups[n - 1][-1]][1] : a] if n else text[:a]
        opens = n == 0 or bool(_PARAGRAPH_BREAK.search(gap))
        # Text the splitter left between two spans (a two-letter "If" at a line's end) means
        # this one starts mid-sentence.
        starts = (previous_ended or opens) and (n == 0 or not gap.strip())
        if n == 0 and not starts_document and _STARTS_LOWER.match(text[a:b]):
            starts = False
        ended = terminal(text[a:b])
        mark = _ANSWER_MARK.match(text[a:b])
        start = a + mark.end() if mark and mark.end() < b - a else a  # quote the answer itself
        row = bool(_LABELLED_ROW.match(text[start:b]))
        whole = row or (starts and ended and _words(_URL.sub(" ", text[start:b])) >= MIN_WORDS)
        if opens or mark:
            asking = False
        asking = asking or bool(_QUESTION_MARK.match(text[a:b]))
        question = asking or is_question(text[a:b])
        out.append(Unit(start, b, g[0], g[-1], whole, opens, question))
        previous_ended = ended
    return out


def is_question(sentence: str) -> bool:
    """A question (an FAQ's question line, a table of contents' entry), which answers nothing."""
    return sentence.rstrip().rstrip(_CLOSERS).endswith("?") or bool(_QUESTION_MARK.match(sentence))


def echoes(sentence: str, question: str) -> bool:
    """Whether ``sentence`` says nothing the question did not (a heading, the question again)."""
    said = set(terms(sentence))
    return not said or said <= set(terms(question))


def leads_in(sentence: str) -> bool:
    """A sentence that introduces what follows it ("GNU sed returns these codes:", "The
    following directories are required in /usr.")."""
    stripped = sentence.rstrip().rstrip(_CLOSERS)
    return (
        stripped.endswith(":")
        or bool(
            re.search(r"\b(?:as follows|the following|following ones)\.?$", stripped, re.IGNORECASE)
        )
        or bool(re.match(r"(?:all of )?the following\b", stripped, re.IGNORECASE))
    )


def leans_back(sentence: str) -> bool:
    return bool(_LEANS_BACK.match(sentence.lstrip("\"'(`- \u201c\u2018")))


def wants_value(question: str) -> bool:
    return bool(_WANTS_VALUE.search(question))


def has_value(sentence: str) -> bool:
    return bool(_DIGIT.search(sentence))


def boilerplate(sentence: str) -> str | None:
    """Why ``sentence`` can never support a charter (licence, contact, contents), or None."""
    if _LICENCE.search(sentence):
        return "licence"
    if _EMAIL.search(sentence) or _CONTACT.search(sentence):
        return "contact"
    if _URL.sub("", sentence).strip(" .,;:()<>[]") == "":
        return "contact"
    if _CONTENTS.match(sentence) or _TOC.search(sentence):
        return "contents"
    return None


def collapse(text: str) -> str:
    """``text`` with each run of whitespace as one space (a hard-wrapped line break is none)."""
    return " ".join(text.split())
