import datetime as dt
import io
from pathlib import Path

import pytest
from lxml import etree

from pecmail.certification import daticert
from pecmail.certification.daticert import Daticert, DaticertError, Recipient

UTC = dt.UTC
# The DTD as published in the shared spec when present (CI), else the package copy.
_SHARED_DTD = Path(__file__).resolve().parents[3] / "shared" / "pec" / "daticert.dtd"
DTD_BYTES = (_SHARED_DTD if _SHARED_DTD.exists() else daticert.DTD_PATH).read_bytes()


def make(**overrides) -> Daticert:
    values = dict(
        tipo="accettazione",
        mittente="mario.rossi@pec.example.it",
        destinatari=[
            Recipient("anna.bianchi@pec.altro.it", "certificato"),
            Recipient("luca.verdi@gmail.com", "esterno"),
        ],
        risposte="mario.rossi@pec.example.it",
        oggetto="Diffida",
        gestore_emittente="Example PEC S.p.A.",
        data=dt.datetime(2025, 3, 1, 9, 15, 2, tzinfo=UTC),
        identificativo="pecmail.20250301101502.5f3a9c1e@pec.example.it",
        msgid="<c0ffee.1@client.example>",
    )
    values.update(overrides)
    return Daticert(**values)


def assert_dtd_valid(xml: bytes) -> None:
    dtd = etree.DTD(io.BytesIO(DTD_BYTES))
    assert dtd.validate(etree.fromstring(xml)) is True, dtd.error_log


ALL_TYPES = [
    make(),
    make(tipo="non-accettazione", errore="altro", errore_esteso="Destinatari in copia nascosta non ammessi"),
    make(tipo="non-accettazione", errore="virus", errore_esteso="Eicar-Test-Signature"),
    make(tipo="posta-certificata", ricevuta="breve"),
    make(tipo="presa-in-carico", ricezione=["anna.bianchi@pec.altro.it", "x@pec.altro.it"]),
    make(tipo="avvenuta-consegna", ricevuta="completa", consegna="anna.bianchi@pec.altro.it"),
    make(
        tipo="errore-consegna",
        errore="no-dest",
        consegna="a@b.it",
        errore_esteso="5.1.1 - X - indirizzo non valido",
    ),
    make(tipo="errore-consegna", errore="virus", consegna="a@b.it", errore_esteso="Eicar"),
    make(
        tipo="preavviso-errore-consegna", errore="altro", consegna="a@b.it", errore_esteso="5.4.1 - X - tempo"
    ),
    make(tipo="rilevazione-virus", errore="virus", consegna="a@b.it", errore_esteso="Eicar"),
    make(msgid="", oggetto=None),
]


@pytest.mark.parametrize("d", ALL_TYPES, ids=lambda d: f"{d.tipo}-{d.errore}")
def test_it_builds_dtd_valid_files_that_round_trip(d):
    xml = daticert.build(d)
    assert_dtd_valid(xml)
    assert daticert.validation_errors(xml) == []
    assert daticert.parse(xml) == d


def test_it_writes_the_elements_in_dtd_order_with_four_space_indent_and_no_doctype():
    xml = daticert.build(
        make(tipo="avvenuta-consegna", ricevuta="completa", consegna="a@b.it", errore_esteso="x")
    ).decode()
    assert xml.startswith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<postacert tipo="avvenuta-consegna" errore="nessuno">'
    )
    assert "DOCTYPE" not in xml
    order = [
        "<gestore-emittente>",
        "<data ",
        "<giorno>",
        "<ora>",
        "<identificativo>",
        "<msgid>",
        "<ricevuta ",
        "<consegna>",
        "<errore-esteso>",
    ]
    positions = [xml.index(tag) for tag in order]
    assert positions == sorted(positions)
    assert "\n    <intestazione>\n        <mittente>" in xml


def test_it_writes_identificativo_bare_and_msgid_with_escaped_brackets():
    xml = daticert.build(make()).decode()
    assert "<identificativo>pecmail.20250301101502.5f3a9c1e@pec.example.it</identificativo>" in xml
    assert "<msgid>&lt;c0ffee.1@client.example&gt;</msgid>" in xml


def test_it_refuses_identificativo_with_brackets_or_msgid_without():
    with pytest.raises(ValueError):
        daticert.build(make(identificativo="<x@y>"))
    with pytest.raises(ValueError):
        daticert.build(make(msgid="x@y"))


def test_it_escapes_subjects_and_addresses():
    d = make(oggetto='Fattura <n. 5> & "saldo" è', mittente="a&b@pec.example.it")
    xml = daticert.build(d)
    assert b'<oggetto>Fattura &lt;n. 5&gt; &amp; "saldo" \xc3\xa8</oggetto>' in xml
    assert b"<mittente>a&amp;b@pec.example.it</mittente>" in xml
    assert daticert.parse(xml).oggetto == 'Fattura <n. 5> & "saldo" è'


def test_it_drops_characters_xml_cannot_carry():
    xml = daticert.build(make(oggetto="a\x00b\x1bc"))
    assert daticert.parse(xml).oggetto == "abc"


@pytest.mark.parametrize(
    ("when", "zona", "ora"),
    [
        # Last second of CET before the spring change (02:00 CET → 03:00 CEST, 2025-03-30).
        (dt.datetime(2025, 3, 30, 0, 59, 59, tzinfo=UTC), "+0100", "01:59:59"),
        (dt.datetime(2025, 3, 30, 1, 0, 0, tzinfo=UTC), "+0200", "03:00:00"),
        # Autumn change (03:00 CEST → 02:00 CET, 2025-10-26): 02:30 happens twice.
        (dt.datetime(2025, 10, 26, 0, 30, 0, tzinfo=UTC), "+0200", "02:30:00"),
        (dt.datetime(2025, 10, 26, 1, 30, 0, tzinfo=UTC), "+0100", "02:30:00"),
        (dt.datetime(2025, 7, 1, 10, 0, 0, tzinfo=UTC), "+0200", "12:00:00"),
        (dt.datetime(2025, 1, 1, 10, 0, 0, tzinfo=UTC), "+0100", "11:00:00"),
    ],
)
def test_it_writes_zona_from_europe_rome_at_the_event_time(when, zona, ora):
    xml = daticert.build(make(data=when)).decode()
    assert f'<data zona="{zona}">' in xml
    assert f"<ora>{ora}</ora>" in xml
    assert daticert.parse(xml.encode()).data == when


def test_it_refuses_naive_times():
    with pytest.raises(ValueError):
        daticert.build(make(data=dt.datetime(2025, 1, 1)))


def test_it_parses_a_real_aruba_daticert():
    xml = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<postacert tipo="avvenuta-consegna" errore="nessuno">\n'
        b"<intestazione><mittente>l.battistini@pec.it</mittente>"
        b'<destinatari tipo="certificato">l.battistini@pec.it</destinatari>'
        b"<risposte>l.battistini@pec.it</risposte><oggetto>IT03339130126_00009.xml</oggetto></intestazione>"
        b'<dati><gestore-emittente>ARUBA PEC S.p.A.</gestore-emittente><data zona="+0100">'
        b"<giorno>13/11/2018</giorno><ora>16:39:27</ora></data>"
        b"<identificativo>opec288.20181113163926.01838.310.1.63@pec.aruba.it</identificativo>"
        b'<msgid>&lt;1542@x&gt;</msgid><ricevuta tipo="completa" /><consegna>l.battistini@pec.it</consegna>'
        b"</dati></postacert>"
    )
    d = daticert.parse(xml)
    assert d.tipo == "avvenuta-consegna"
    assert d.ricevuta == "completa"
    assert d.msgid == "<1542@x>"
    assert d.data == dt.datetime(2018, 11, 13, 15, 39, 27, tzinfo=UTC)


HOSTILE = {
    "billion-laughs": b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
    b'<postacert tipo="accettazione">&lol2;</postacert>',
    "external-entity": b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<postacert tipo="accettazione">&x;</postacert>',
    "external-dtd": b'<?xml version="1.0"?><!DOCTYPE postacert SYSTEM "http://example.com/x.dtd"><postacert/>',
    "not-xml": b"\x00\xff garbage",
    "empty": b"",
    "truncated": daticert.build(make())[:200],
    "wrong-root": b"<foo/>",
    "oversized": b"<postacert>" + b" " * (daticert.MAX_SIZE + 1) + b"</postacert>",
    "stray-text": daticert.build(make()).replace(b"</risposte>", b"</risposte>a"),
    "bad-tipo": daticert.build(make()).replace(b'tipo="accettazione"', b'tipo="errore"'),
    "bad-zona": daticert.build(make()).replace(b'zona="+0100"', b'zona="CET"'),
    "missing-data": daticert.build(make()).replace(b"<giorno>01/03/2025</giorno>", b""),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_it_refuses_hostile_or_invalid_input_with_daticert_error(name):
    with pytest.raises(DaticertError):
        daticert.parse(HOSTILE[name])
    # zona is CDATA in the DTD: only parse() checks its format.
    if name != "bad-zona":
        assert daticert.validation_errors(HOSTILE[name]) != []


def test_it_reads_a_dtd_invalid_file_leniently_when_asked():
    d = daticert.parse(HOSTILE["stray-text"], validate=False)
    assert d.risposte == "mario.rossi@pec.example.it"


@pytest.mark.parametrize(
    ("giorno", "ora"),
    [
        ("13/11/2018", "16:39:27"),
        ("1/2/2026", "7:05:09"),
        ("31/12/1999", "23:59:59"),
        ("29/02/2024", "00:00:00"),
        ("29/02/2025", "00:00:00"),
        ("31/04/2025", "10:00:00"),
        ("00/01/2025", "10:00:00"),
        ("01/13/2025", "10:00:00"),
        ("01/01/2025", "24:00:00"),
        ("01/01/2025", "10:60:00"),
        ("01/01/2025", "10:00:60"),
        ("01/01/25", "10:00:00"),
        ("01-01-2025", "10:00:00"),
        ("01/01/2025", "10:00"),
        ("", ""),
        ("01/01/2025x", "10:00:00"),
    ],
)
def test_giorno_and_ora_are_read_as_strptime_reads_them(giorno, ora):
    """The hand-written reader takes exactly the dd/mm/yyyy hh:mm:ss stamps strptime takes."""
    xml = daticert.build(make()).replace(b"01/03/2025", giorno.encode()).replace(b"10:15:02", ora.encode())
    assert b"<giorno>" + giorno.encode() in xml and b"<ora>" + ora.encode() in xml
    try:
        expected = dt.datetime.strptime(f"{giorno} {ora}", "%d/%m/%Y %H:%M:%S")
    except ValueError:
        with pytest.raises(DaticertError, match="giorno/ora"):
            daticert.parse(xml)
    else:
        parsed = daticert.parse(xml)
        assert parsed.data.replace(tzinfo=None) == expected
        assert parsed.data.utcoffset() == dt.timedelta(hours=1)
