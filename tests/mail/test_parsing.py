from __future__ import annotations

from email import policy
from email.message import EmailMessage

import pytest

from pecmail.certification import testing
from pecmail.certification.classify import classify
from pecmail.mail import parsing


def build(html: bool = True, attachment: bool = True) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "Alice Rossi <alice@pec.localhost>"
    msg["To"] = "bob@pec.localhost, Carol <carol@pec.localhost>"
    msg["Cc"] = "dan@pec.localhost"
    msg["Subject"] = "Fattura però"
    msg["Date"] = "Fri, 27 Nov 2026 21:00:00 +0100"
    msg["Message-ID"] = "<abc@pec.localhost>"
    msg["Importance"] = "high"
    msg["Sensitivity"] = "Company-Confidential"
    msg.set_content("Ciao Bob, ecco la fattura.")
    if html:
        msg.add_alternative("<p>Ciao <b>Bob</b></p>", subtype="html")
    if attachment:
        msg.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="fattura.pdf")
    return msg.as_bytes()


def test_it_reads_headers_text_html_and_attachments():
    parsed = parsing.message_parts(build())
    assert parsed.subject == "Fattura però"
    assert (parsed.from_name, parsed.from_address) == ("Alice Rossi", "alice@pec.localhost")
    assert parsed.to == ["bob@pec.localhost", "carol@pec.localhost"]
    assert parsed.cc == ["dan@pec.localhost"]
    assert parsed.message_id == "abc@pec.localhost"
    assert parsed.priority_high is True
    assert parsed.confidential is True
    assert parsed.text.strip() == "Ciao Bob, ecco la fattura."
    assert parsed.html is not None and "<b>Bob</b>" in parsed.html
    assert [(a.index, a.filename, a.content_type, a.size) for a in parsed.attachments] == [
        (0, "fattura.pdf", "application/pdf", 13)
    ]
    assert parsed.inner is None
    assert parsing.attachment_bytes(build(), 0) == ("fattura.pdf", "application/pdf", b"%PDF-1.4 fake")


def test_it_shows_the_postacert_of_an_envelope_and_numbers_attachments_across_levels():
    inner = build()
    raw = (
        b'From: "Per conto di: alice@pec.localhost" <posta-certificata@pec.localhost>\r\n'
        b"Subject: POSTA CERTIFICATA: Fattura\r\n"
        b'Content-Type: multipart/mixed; boundary="env"\r\n\r\n'
        b"--env\r\nContent-Type: text/plain\r\n\r\nMessaggio di posta certificata\r\n"
        b'--env\r\nContent-Type: application/xml; name="daticert.xml"\r\n'
        b'Content-Disposition: inline; filename="daticert.xml"\r\n\r\n<postacert/>\r\n'
        b'--env\r\nContent-Type: message/rfc822; name="postacert.eml"\r\n'
        b'Content-Disposition: inline; filename="postacert.eml"\r\n\r\n' + inner + b"\r\n--env--\r\n"
    )
    parsed = parsing.message_parts(raw)
    assert parsed.subject == "POSTA CERTIFICATA: Fattura"
    assert parsed.display is parsed.inner
    assert parsed.inner.subject == "Fattura però"
    assert parsed.inner.priority_high is True
    names = [(a.index, a.filename) for a in parsed.attachments + parsed.inner.attachments]
    assert names == [(0, "daticert.xml"), (1, "postacert.eml"), (2, "fattura.pdf")]
    assert parsing.attachment_bytes(raw, 2)[2] == b"%PDF-1.4 fake"


def test_it_never_raises_on_malformed_mime():
    hostile = [
        b"",
        b"\xff\xfe\x00garbage",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain; charset=bogus-42\r\n\r\nhi\r\n",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary at all",
        b"Subject: =?utf-8?B?!!!?=\r\nFrom: <<<@>>>\r\nDate: yesterday\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@@",
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
        + b"--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n" * 200,
        b'Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename="../../etc/passwd"\r\n\r\nSubject: in\r\n\r\nbody',
    ]
    for raw in hostile:
        parsed = parsing.message_parts(raw)
        assert isinstance(parsed.text, str)
        for info in parsed.attachments:
            assert "/" not in info.filename


def test_it_reports_unknown_attachment_indexes_as_keyerror():
    try:
        parsing.attachment_bytes(build(attachment=False), 0)
    except KeyError:
        return
    raise AssertionError("expected KeyError")


def test_it_previews_html_only_messages_as_text():
    parsed = parsing.ParsedMessage(
        html="<style>x{}</style><p>Hello&nbsp;<b>world</b></p><script>bad()</script>"
    )
    assert parsing.preview_of(parsed) == "Hello world"


SAMPLES = sorted((testing.samples_dir()).glob("*/*.eml"))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_it_reads_real_provider_messages(path):
    raw = path.read_bytes()
    parsed = parsing.message_parts(raw)
    result = classify(raw)
    if result.postacert is not None:
        assert parsed.inner is not None
        (postacert,) = [a for a in parsed.attachments if a.filename == "postacert.eml"]
        assert parsing.attachment_bytes(raw, postacert.index)[2] == result.postacert
    if parsed.x_ricevuta:
        assert parsed.display is parsed
    elif parsed.inner is not None:
        assert parsed.display is parsed.inner
    assert parsed.display.subject != ""
