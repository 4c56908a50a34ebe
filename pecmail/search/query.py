"""What the user typed, read the way websearch_to_tsquery reads it, and safe renderings of it.

Syntax: words are ANDed, ``"a phrase"`` in double quotes (an unbalanced quote runs to the
end), ``-word`` or ``-"a phrase"`` excludes, the word ``or`` between terms separates
alternatives (AND binds tighter, as in websearch_to_tsquery). Everything else, FTS5
operators (NEAR, ``*``, ``^``, ``col:``) included, is text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Longer input is cut here: nobody types more, and it bounds the work of a hostile request.
MAX_QUERY_CHARS = 500
MAX_TERMS = 32
# Highlight markers: control characters never stored in the index (clean_text removes them).
MARK_START = "\x02"
MARK_END = "\x03"

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WORD = re.compile(r"\w")


def clean_text(text: str) -> str:
    """``text`` without NUL and control characters (PostgreSQL refuses NUL; \\x02/\\x03 are markers)."""
    return _CONTROL.sub(" ", text)


def clean_query(text: str) -> str:
    """The user's query, control characters removed, whitespace collapsed, length bounded."""
    return " ".join(clean_text(text or "")[:MAX_QUERY_CHARS].split())


def fold(text: str) -> str:
    """``text`` without diacritics ("perché" → "perche"): the accent-insensitive form."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True)
class Term:
    text: str
    negated: bool = False


@dataclass
class ParsedQuery:
    """Alternatives (OR) of groups of terms (AND), as websearch_to_tsquery groups them."""

    groups: list[list[Term]] = field(default_factory=list)

    @property
    def positive_words(self) -> list[str]:
        """The words of every non-excluded term, for the simple searches of the other tabs."""
        words: list[str] = []
        for group in self.groups:
            for term in group:
                if not term.negated:
                    words.extend(w for w in re.split(r"\W+", term.text) if w)
        return words

    @property
    def is_empty(self) -> bool:
        return not any(self.groups)


def parse(text: str) -> ParsedQuery:
    """Read ``text`` (already cleaned or not) into OR-groups of AND-terms; never raises."""
    text = clean_query(text)
    groups: list[list[Term]] = [[]]
    count = 0
    i = 0
    while i < len(text) and count < MAX_TERMS:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        negated = False
        if ch == "-" and i + 1 < len(text) and not text[i + 1].isspace():
            negated = True
            i += 1
            ch = text[i]
        if ch == '"':
            end = text.find('"', i + 1)
            end = len(text) if end == -1 else end
            word, quoted = text[i + 1 : end], True
            i = end + 1
        else:
            end = i
            while end < len(text) and not text[end].isspace() and text[end] != '"':
                end += 1
            word, quoted = text[i:end], False
            i = end
        if not quoted and not negated and word.lower() == "or":
            if groups[-1]:
                groups.append([])
            continue
        if _WORD.search(word):
            groups[-1].append(Term(text=word, negated=negated))
            count += 1
    return ParsedQuery(groups=[g for g in groups if g])


def _fts5_string(term: Term) -> str:
    # Inside an FTS5 string only the double quote is special (doubled); the tokenizer turns
    # the rest into a phrase of words, so operators and column names are just text.
    return '"' + term.text.replace('"', '""') + '"'


def fts5_expression(parsed: ParsedQuery) -> tuple[str, str]:
    """(match, exclude): FTS5 MATCH expressions built only from quoted strings.

    ``match`` selects the documents ("" when no group has a positive term); ``exclude`` is
    set only when the whole query is exclusions (FTS5 NOT needs a left operand), for a
    ``rowid NOT IN (… MATCH exclude)`` condition.
    """
    alternatives: list[str] = []
    only_negative: list[str] = []
    for group in parsed.groups:
        positive = [_fts5_string(t) for t in group if not t.negated]
        negative = [_fts5_string(t) for t in group if t.negated]
        if not positive:
            only_negative.extend(negative)
            continue
        expression = "(" + " AND ".join(positive) + ")"
        if negative:
            expression = f"({expression} NOT ({' OR '.join(negative)}))"
        alternatives.append(expression)
    if alternatives:
        return " OR ".join(alternatives), ""
    if only_negative:
        return "", " OR ".join(only_negative)
    return "", ""


def mark_html(text: str) -> SafeString:
    """``text`` HTML-escaped, then its MARK_START/MARK_END pairs turned into <mark> elements.

    Escaping comes first, so nothing from a message can open a tag; an unclosed marker is
    closed at the end so the markup stays balanced.
    """
    out: list[str] = []
    open_mark = False
    for piece in re.split(f"([{MARK_START}{MARK_END}])", text or ""):
        if piece == MARK_START:
            if not open_mark:
                out.append("<mark>")
                open_mark = True
        elif piece == MARK_END:
            if open_mark:
                out.append("</mark>")
                open_mark = False
        else:
            out.append(str(escape(piece)))
    if open_mark:
        out.append("</mark>")
    return mark_safe("".join(out))  # noqa: S308 - every piece of text above is escaped
