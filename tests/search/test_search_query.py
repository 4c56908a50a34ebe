"""The query reader and the safe renderings (no database)."""

from __future__ import annotations

import pytest

from pecmail.search import query as q


def test_it_reads_words_phrases_exclusions_and_or():
    parsed = q.parse('fattura "mario rossi" -bozza or contratto')
    assert parsed.groups == [
        [q.Term("fattura"), q.Term("mario rossi"), q.Term("bozza", negated=True)],
        [q.Term("contratto")],
    ]


def test_it_runs_an_unbalanced_quote_to_the_end():
    assert q.parse('"mario rossi').groups == [[q.Term("mario rossi")]]


def test_it_drops_terms_without_letters_or_digits():
    assert q.parse('*** "" - ^ :').is_empty is True


def test_it_bounds_the_number_of_terms_and_the_length():
    parsed = q.parse("parola " * 1000)
    assert sum(len(g) for g in parsed.groups) == q.MAX_TERMS
    assert len(q.clean_query("x" * 10_000)) == q.MAX_QUERY_CHARS


def test_it_removes_nul_and_control_characters():
    assert q.clean_query("a\x00b\x02c\x03d") == "a b c d"


def test_it_quotes_every_fts5_term_so_operators_are_text():
    match, exclude = q.fts5_expression(q.parse('subject:secret NEAR(a b) x* ^start "q""uote'))
    assert exclude == ""
    assert match == '("subject:secret" AND "NEAR(a" AND "b)" AND "x*" AND "^start" AND "q" AND "uote")'
    # Every term is a quoted FTS5 string: nothing outside quotes but AND/OR/NOT and parentheses.
    outside = "".join(part for i, part in enumerate(match.split('"')) if i % 2 == 0)
    assert set(outside.replace("AND", "").replace("OR", "").replace("NOT", "")) <= set("() ")


def test_it_doubles_double_quotes_inside_an_fts5_string():
    assert q._fts5_string(q.Term('a"b')) == '"a""b"'


def test_it_builds_an_exclusion_only_expression_apart():
    assert q.fts5_expression(q.parse("-bozza")) == ("", '"bozza"')


def test_it_builds_alternatives_with_exclusions():
    match, exclude = q.fts5_expression(q.parse("a -b or c"))
    assert match == '(("a") NOT ("b")) OR ("c")'
    assert exclude == ""


def test_it_folds_accents():
    assert q.fold("perché Città ÀÉÎ") == "perche Citta AEI"


@pytest.mark.parametrize(
    ("marked", "html"),
    [
        ("a \x02b\x03 c", "a <mark>b</mark> c"),
        ("<script>\x02x\x03</script>", "&lt;script&gt;<mark>x</mark>&lt;/script&gt;"),
        ("\x02<b>\x03", "<mark>&lt;b&gt;</mark>"),
        ("\x02open", "<mark>open</mark>"),
        ("close\x03 \x03", "close "),
        ("\"quote\" & 'apos'", "&quot;quote&quot; &amp; &#x27;apos&#x27;"),
    ],
)
def test_it_escapes_before_marking(marked, html):
    assert str(q.mark_html(marked)) == html
