"""The quick MIME helpers answer exactly what their generic counterparts answer."""

from __future__ import annotations

from email.message import Message
from email.policy import compat32

import pytest

from pecmail.certification import mimebytes


@pytest.mark.parametrize(
    "body",
    [
        b"AAAA\r\n" * 50 + b"--b\r\nx\r\n--b--\r\n",
        b"- - - -- --- ----b --x\r\n" * 40 + b"--b\r\n",
        b"-" * 5000 + b"--b",
        b"no delimiter at all, only - dashes - here",
        b"--b",
        b"",
    ],
)
@pytest.mark.parametrize("delimiter", [b"--b", b"--=_pecmail_0123456789_1"])
def test_it_finds_delimiters_like_bytes_find(body, delimiter):
    for start in (0, 1, 7):
        for end in (len(body), max(0, len(body) - 3)):
            assert mimebytes.find_delimiter(body, delimiter, start, end) == body.find(delimiter, start, end)


def test_it_finds_a_delimiter_after_many_dashes():
    body = b"-x" * 1000 + b"--b\r\n"
    assert mimebytes.find_delimiter(body, b"--b", 0, len(body)) == 2000


@pytest.mark.parametrize(
    "value",
    [
        'multipart/signed; protocol="application/x-pkcs7-signature"; micalg="sha-256";\r\n boundary="--x"',
        "multipart/mixed; boundary=b",
        'multipart/mixed; BOUNDARY="a;b"; boundary=c',
        "multipart/mixed; boundary*=utf-8''x",
        'multipart/mixed; boundary=""',
        "text/plain",
        'multipart/mixed; boundary="a\\"b"',
        "multipart/mixed;boundary = x ;",
        "multipart/mixed; foo; boundary=z",
        "multipart/mixed; boundary=" + " " * 5000 + "x",
    ],
)
def test_it_reads_parameters_like_email(value):
    headers = Message(policy=compat32)
    headers["Content-Type"] = value
    for name in ("boundary", "protocol", "micalg"):
        assert mimebytes.get_param(headers, name) == headers.get_param(name)


@pytest.mark.parametrize(
    "headers",
    [
        'Content-Type: application/xml; name="daticert.xml"\r\nContent-Disposition: inline; filename="daticert.xml"',
        "Content-Type: message/rfc822; name=postacert.eml\r\nContent-Disposition: inline; filename=postacert.eml",
        'Content-Type: text/plain\r\nContent-Disposition: attachment; filename="  spaced.txt  "',
        'Content-Type: text/plain; name="only-name.txt"',
        'Content-Disposition: attachment; filename=""\r\nContent-Type: text/plain; name="fallback.txt"',
        "Content-Disposition: attachment; filename*=utf-8''caff%C3%A8.pdf",
        'Content-Disposition: attachment; filename*0="a"; filename*1="b.txt"',
        "Content-Type: text/plain; name*=iso-8859-1''%E8.txt",
        'Content-Disposition: attachment; filename="<angled.txt>"',
        'Content-Disposition: attachment; filename="quo\\\\"ted.txt"',
        "Content-Disposition: attachment; filename",
        "Content-Disposition: attachment",
        "Content-Type: text/plain",
        'Content-Disposition: attachment; filename="=?utf-8?q?x?="',
        "Content-Disposition: attachment; FILENAME=UPPER.TXT",
        "",
    ],
)
def test_part_filenames_are_what_the_email_package_says(headers):
    """``Part.filename`` with the quick get_param equals get_filename() or get_param("name")."""
    from email.utils import collapse_rfc2231_value

    raw = headers.encode() + b"\r\n\r\nbody\r\n"
    part = mimebytes.parse(raw)
    message = part.headers
    expected = message.get_filename() or message.get_param("name")
    if isinstance(expected, tuple):
        expected = collapse_rfc2231_value(expected)
    expected = str(expected).strip() if expected else None
    assert part.filename == expected
