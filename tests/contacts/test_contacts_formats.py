"""vCard and CSV: parsing, hostile input, and export → import → export round trips."""

from __future__ import annotations

import pytest

from pecmail.contacts import formats


def mario() -> formats.Record:
    record = formats.empty_record()
    del record["warnings"]
    record.update(
        first_name="Niccolò",
        last_name="D'Àngelo",
        company="Società Ñandù S.r.l.; sede è",
        job_title="Amministratore",
        street="Via Libertà, 12",
        city="Forlì",
        postal_code="47121",
        region="FC",
        country="Italia",
        vat_number="IT01234567890",
        tax_code="DNGNCL80A01D704X",
        website="https://example.it/chi-siamo",
        notes="Prima riga: perché?\nSeconda riga, più lunga; fine.",
        favourite=True,
        groups=["Clienti", "Fornitori è"],
        addresses=[
            {"kind": "pec", "address": "niccolo@pec.example.it"},
            {"kind": "email", "address": "niccolo@example.it"},
            {"kind": "pec", "address": "amministrazione@pec.example.it"},
        ],
        phones=[{"kind": "mobile", "number": "+39 333 1234567"}, {"kind": "work", "number": "0543 123456"}],
    )
    return record


def strip_warnings(records: list[formats.Record]) -> list[formats.Record]:
    return [{k: v for k, v in r.items() if k != "warnings"} for r in records]


@pytest.mark.parametrize("version", ["3.0", "4.0"])
def test_it_round_trips_vcard_with_italian_accents(version):
    first = formats.vcard_serialize([mario()], version=version)
    parsed = formats.vcard_parse(first.encode())
    assert parsed.skipped == []
    assert strip_warnings(parsed.records) == [mario()]
    second = formats.vcard_serialize(strip_warnings(parsed.records), version=version)
    assert second == first
    assert f"VERSION:{version}" in first


@pytest.mark.parametrize("flavour", ["outlook", "gmail"])
def test_it_round_trips_csv_with_italian_accents(flavour):
    record = mario()
    if flavour == "outlook":
        # Outlook has no PEC marker nor favourites: the kind comes back from the providers index.
        record["favourite"] = False
        for item in record["addresses"]:
            item["kind"] = "email"
    first = formats.csv_serialize([record], flavour=flavour)
    parsed = formats.csv_parse(first.encode("utf-8"))
    assert parsed.skipped == []
    assert strip_warnings(parsed.records) == [record]
    assert formats.csv_serialize(strip_warnings(parsed.records), flavour=flavour) == first


def test_it_reads_a_real_outlook_export_with_semicolons_and_windows_1252():
    data = (
        '"First Name";"Last Name";"Company";"E-mail Address";"Mobile Phone";"Categories"\r\n'
        '"Lucia";"Città";"Bar Roma";"lucia@example.it";"333 1";"Amici;Lavoro"\r\n'
    ).encode("cp1252")
    parsed = formats.csv_parse(data)
    [record] = parsed.records
    assert record["last_name"] == "Città"
    assert record["addresses"] == [{"kind": "email", "address": "lucia@example.it"}]
    assert record["phones"] == [{"kind": "mobile", "number": "333 1"}]
    assert record["groups"] == ["Amici", "Lavoro"]


def test_it_reads_an_old_gmail_export_with_types_and_multiple_values():
    data = (
        b"Name,Given Name,Family Name,Group Membership,E-mail 1 - Type,E-mail 1 - Value,Phone 1 - Type,Phone 1 - Value\n"
        b"Anna Bianchi,Anna,Bianchi,* myContacts ::: * starred ::: Famiglia,* PEC,anna@pec.it ::: anna2@pec.it,Mobile,+39 1\n"
    )
    [record] = formats.csv_parse(data).records
    assert record["addresses"] == [
        {"kind": "pec", "address": "anna@pec.it"},
        {"kind": "pec", "address": "anna2@pec.it"},
    ]
    assert record["favourite"] is True
    assert record["groups"] == ["Famiglia"]


def test_it_reports_rows_and_cards_without_name_or_address():
    parsed = formats.csv_parse(
        b"First Name,Last Name,E-mail Address\nMario,Rossi,m@x.it\n,,\n,,not-an-address\n"
    )
    assert [r["last_name"] for r in parsed.records] == ["Rossi"]
    assert parsed.skipped == [("row 4", "it has no name and no address")]


def test_it_skips_a_malformed_card_and_keeps_the_good_ones():
    data = (
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Good\r\nN:Good;;;;\r\nEND:VCARD\r\n"
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nthis line has no colon\r\nEND:VCARD\r\n"
    )
    parsed = formats.vcard_parse(data)
    assert [r["last_name"] for r in parsed.records] == ["Good"]
    assert parsed.skipped[0][0] == "card 2"
    assert "malformed" in parsed.skipped[0][1]


def test_it_refuses_a_file_that_is_not_a_vcard():
    with pytest.raises(formats.FormatError):
        formats.vcard_parse(b"hello")


def test_it_refuses_a_csv_without_known_columns():
    with pytest.raises(formats.FormatError):
        formats.csv_parse(b"foo,bar\n1,2\n")


def test_it_drops_javascript_urls_and_says_so():
    data = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:X\r\nN:X;;;;\r\nURL:javascript:alert(1)\r\nEND:VCARD\r\n"
    [record] = formats.vcard_parse(data).records
    assert record["website"] == ""
    assert "javascript:alert(1)" in record["warnings"][0]


def test_it_reads_vcard_4_tel_uris_and_quoted_types():
    data = (
        b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Mario Rossi\r\n"
        b'TEL;VALUE=uri;TYPE="voice,cell":tel:+39-333-1\r\nEMAIL;TYPE=work;PREF=1:M@X.IT\r\nEND:VCARD\r\n'
    )
    [record] = formats.vcard_parse(data).records
    assert (record["first_name"], record["last_name"]) == ("Mario", "Rossi")
    assert record["phones"] == [{"kind": "mobile", "number": "+39-333-1"}]
    assert record["addresses"] == [{"kind": "email", "address": "m@x.it"}]


@pytest.mark.parametrize("version", ["3.0", "4.0"])
def test_it_round_trips_company_only_and_address_only_cards(version):
    company = formats.empty_record()
    del company["warnings"]
    company.update(
        company="Àcme Società S.r.l.", addresses=[{"kind": "pec", "address": "acme@pec.example.it"}]
    )
    bare = formats.empty_record()
    del bare["warnings"]
    bare.update(addresses=[{"kind": "email", "address": "solo@example.it"}])
    first = formats.vcard_serialize([company, bare], version=version)
    parsed = formats.vcard_parse(first.encode())
    assert strip_warnings(parsed.records) == [company, bare]
    assert formats.vcard_serialize(strip_warnings(parsed.records), version=version) == first


def test_it_reads_an_outlook_vcard_2_1_with_bare_types_and_quoted_printable():
    data = (
        b"BEGIN:VCARD\r\nVERSION:2.1\r\nN;LANGUAGE=it;CHARSET=Windows-1252:Rossi;Mario\r\n"
        b"FN:Mario Rossi\r\nTEL;WORK;VOICE:06 1234\r\nTEL;CELL;VOICE:333 1\r\nEMAIL;PREF;INTERNET:mario@acme.it\r\n"
        b"NOTE;ENCODING=QUOTED-PRINTABLE:Citt=C3=A0 e perch=C3=A9\r\nEND:VCARD\r\n"
    )
    [record] = formats.vcard_parse(data).records
    assert record["phones"] == [{"kind": "work", "number": "06 1234"}, {"kind": "mobile", "number": "333 1"}]
    assert record["notes"] == "Città e perché"
