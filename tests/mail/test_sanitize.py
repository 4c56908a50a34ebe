"""The HTML allow-list and the plain-text linkifier of the reading pane."""

from __future__ import annotations

import pytest

from pecmail.mail.sanitize import frame_document, linkify_text, sanitize_html


def test_it_keeps_ordinary_formatting():
    html = '<p><b>bold</b> <i>it</i> <u>u</u> <a href="https://example.org/a?b=1">link</a></p><ul><li>x</li></ul>'
    out = sanitize_html(html).html
    assert "<b>bold</b>" in out
    assert "<i>it</i>" in out
    assert "<u>u</u>" in out
    assert 'href="https://example.org/a?b=1"' in out
    assert 'rel="noopener noreferrer nofollow"' in out
    assert "<li>x</li>" in out


def test_it_removes_scripts_with_their_content():
    out = sanitize_html("<p>a</p><script>alert(1)</script><p>b</p>").html
    assert out == "<p>a</p><p>b</p>"


def test_it_removes_event_handlers():
    out = sanitize_html('<p onclick="alert(1)" onmouseover=alert(2)>x</p>').html
    assert out == "<p>x</p>"


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "jav&#x09;ascript:alert(1)",
        "&#106;avascript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "/relative/path",
        "//evil.example/",
    ],
)
def test_it_drops_links_that_are_not_http_https_or_mailto(href):
    out = sanitize_html(f'<a href="{href}">x</a>').html
    assert "href" not in out


def test_it_keeps_mailto_links():
    assert 'href="mailto:a@example.org"' in sanitize_html('<a href="mailto:a@example.org">m</a>').html


def test_it_withholds_remote_images_until_asked():
    html = '<img src="https://tracker.example/p.gif" alt="logo"><img src="http://x.example/a.png">'
    hidden = sanitize_html(html)
    assert "tracker.example" not in hidden.html
    assert 'alt="logo"' in hidden.html
    assert hidden.blocked_images == 2
    shown = sanitize_html(html, show_remote_images=True)
    assert 'src="https://tracker.example/p.gif"' in shown.html
    assert shown.blocked_images == 0


def test_it_keeps_raster_data_images_but_not_svg_ones():
    png = "data:image/png;base64,iVBORw0KGgo="
    assert f'src="{png}"' in sanitize_html(f'<img src="{png}">').html
    assert "src" not in sanitize_html('<img src="data:image/svg+xml;base64,PHN2Zz4=">').html
    assert "src" not in sanitize_html('<img src="data:text/html,<script>alert(1)</script>">').html


def test_it_resolves_inline_cid_images_to_data_urls():
    png = "data:image/png;base64,iVBORw0KGgo="
    out = sanitize_html('<img src="cid:logo@x">', cid_images={"<logo@x>": png}).html
    assert f'src="{png}"' in out
    assert "src" not in sanitize_html('<img src="cid:unknown@x">').html


@pytest.mark.parametrize(
    "tag", ["svg", "math", "iframe", "object", "template", "style", "noscript", "textarea"]
)
def test_it_drops_dangerous_containers_with_their_content(tag):
    # <a> is not an HTML "breakout" tag, so inside <svg>/<math> it stays foreign content.
    out = sanitize_html(f"<{tag}><a>inside</a></{tag}>after").html
    assert "inside" not in out
    assert out == "after"


@pytest.mark.parametrize("tag", ["base", "meta", "link"])
def test_it_drops_document_level_tags(tag):
    out = sanitize_html(
        f'<{tag} href="https://evil.example/" http-equiv="refresh" content="0;url=https://evil.example/">x'
    ).html
    assert out == "x"


def test_it_unwraps_forms_and_drops_their_controls():
    out = sanitize_html(
        '<form action="https://evil.example/"><input name="p"><button>Go</button></form>'
    ).html
    assert "<form" not in out
    assert "<input" not in out
    assert "<button" not in out
    assert "evil.example" not in out


@pytest.mark.parametrize(
    "style",
    [
        "background: url(https://evil.example/x)",
        "background-image: url(x)",
        "color: var(--evil)",
        "position: fixed; top: 0",
        "width: expression(alert(1))",
        "color: red; @import 'https://evil.example/x.css'",
        "font-family: '\\75 rl(x)'",
        "behavior: url(x.htc)",
        "content: 'x'",
    ],
)
def test_it_refuses_dangerous_css(style):
    out = sanitize_html(f'<p style="{style}">x</p>').html
    assert "url" not in out
    assert "var(" not in out
    assert "fixed" not in out
    assert "expression" not in out
    assert "@import" not in out


def test_it_keeps_safe_css_declarations():
    out = sanitize_html('<p style="color: rgb(1,2,3); font-weight: bold; position: absolute">x</p>').html
    assert out == '<p style="color: rgb(1,2,3); font-weight: bold">x</p>'


def test_it_neutralises_noscript_mutation_xss():
    out = sanitize_html('<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>').html
    assert "onerror" not in out
    assert "<img" not in out or "src" not in out


def test_it_linkifies_only_http_https_and_mailto_in_escaped_text():
    out = linkify_text("see https://a.example/x?a=1&b=2. or mailto:x@y.it, not javascript:alert(1) <b>")
    assert (
        '<a href="https://a.example/x?a=1&amp;b=2" rel="noopener noreferrer nofollow" target="_blank">' in out
    )
    assert '<a href="mailto:x@y.it"' in out
    assert "javascript:alert(1)" in out
    assert 'href="javascript' not in out
    assert "&lt;b&gt;" in out


def test_it_does_not_let_a_url_break_out_of_its_attribute():
    out = linkify_text('https://a.example/"onmouseover="alert(1)')
    assert out.startswith('<a href="https://a.example/"')
    assert "onmouseover=" in out  # as text after the link, escaped
    assert '"onmouseover' not in out.split(">", 1)[0]


def test_it_wraps_the_frame_document_without_scripts():
    doc = frame_document("<p>x</p>")
    assert doc.startswith("<!doctype html>")
    assert "<script" not in doc
    assert "<body><p>x</p></body>" in doc
