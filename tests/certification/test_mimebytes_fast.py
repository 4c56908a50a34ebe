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
