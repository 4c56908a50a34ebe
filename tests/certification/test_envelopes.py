import datetime as dt
import email
import hashlib
import re
from email.header import decode_header, make_header

import pytest

from pecmail.certification import breve, classify, daticert, envelopes, mimebytes, testing
from pecmail.certification.envelopes import Transaction

UTC = dt.UTC
WHEN = dt.datetime(2025, 3, 1, 9, 15, 2, tzinfo=UTC)
SENDER = "mario.rossi@pec.example.test"
ORIGINAL = (
    b"Received: from client by mx.pec.example.test; Sat, 1 Mar 2025 10:15:01 +0100\r\n"
    b"From: Mario Rossi <mario.rossi@pec.example.test>\r\n"
    b"To: Anna Bianchi <anna.bianchi@pec.altro.test>\r\n"
    b"Cc: luca.verdi@gmail.com\r\n"
    b"Subject: =?utf-8?q?Diffida_=C3=A8_urgente?=\r\n"
    b"Message-ID: <c0ffee.1@client.example>\r\n"
    b"X-TipoRicevuta: breve\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Gentile Anna,\r\n"
    b"--b1\r\n"
    b'Content-Type: application/pdf; name="diffida.pdf"\r\n'
    b'Content-Disposition: attachment; filename="diffida.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQKJcfs\r\nj6IKMSAwIG9iago=\r\n"
    b"--b1\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: x@y.test\r\nSubject: inner\r\n\r\nhello\r\n"
    b"--b1--\r\n"
)


@pytest.fixture(scope="module")
def identity():
    return testing.make_identity("pec.example.test", "Example PEC S.p.A.")


@pytest.fixture(scope="module")
def peer():
    return testing.make_identity("pec.altro.test", "Altro PEC S.r.l.")


@pytest.fixture(scope="module")
def trust(identity, peer):
    return testing.trust_store_for(identity, peer)


@pytest.fixture
def tx():
    return Transaction.from_message(
        ORIGINAL,
        pec_id=envelopes.new_pec_id("pec.example.test", WHEN),
        when=WHEN,
        recipient_types={"luca.verdi@gmail.com": "esterno"},
    )


def headers_of(raw: bytes) -> email.message.Message:
    return email.message_from_bytes(raw)


def subject_of(raw: bytes) -> str:
    return str(make_header(decode_header(headers_of(raw)["Subject"])))


def check_valid(raw: bytes, trust, kind: str) -> classify.Classification:
    result = classify.classify(raw, trust=trust, at=WHEN + dt.timedelta(hours=1))
    assert result.problems == []
    assert result.kind == kind
    assert result.valid is True
    assert b"\n" not in re.sub(rb"\r\n", b"", raw)
    return result


def text_plain(raw: bytes) -> str:
    message = headers_of(raw)
    for part in message.walk():
        if part.get_content_type() == "text/plain" and part.get_filename() is None:
            return part.get_payload(decode=True).decode(part.get_content_charset())
    raise AssertionError("no text part")


def test_it_reads_the_transaction_from_the_original():
    t = Transaction.from_message(ORIGINAL, pec_id="p@x", when=WHEN)
    assert t.sender == SENDER
    assert t.to == ["anna.bianchi@pec.altro.test"]
    assert t.cc == ["luca.verdi@gmail.com"]
    assert t.subject == "Diffida è urgente"
    assert t.client_msgid == "<c0ffee.1@client.example>"
    assert t.receipt_type == "breve"
    assert t.risposte == SENDER


def test_it_makes_unique_pec_ids_on_the_provider_domain():
    first, second = (
        envelopes.new_pec_id("pec.example.test", WHEN),
        envelopes.new_pec_id("pec.example.test", WHEN),
    )
    assert first != second
    assert first.startswith("pecmail.20250301101502.")
    assert first.endswith("@pec.example.test")


def test_it_builds_the_acceptance_receipt(tx, identity, trust):
    built = envelopes.build_acceptance(tx, identity=identity)
    result = check_valid(built.raw, trust, "accettazione")
    h = headers_of(built.raw)
    assert h["X-Ricevuta"] == "accettazione"
    assert h["From"] == "posta-certificata@pec.example.test"
    assert h["To"] == SENDER
    assert h["X-Riferimento-Message-ID"] == "<c0ffee.1@client.example>"
    assert h["Message-ID"] == f"<{built.message_id}>"
    assert built.message_id != tx.pec_id
    assert subject_of(built.raw) == "ACCETTAZIONE: Diffida è urgente"
    assert h["Subject"].startswith("ACCETTAZIONE: =?utf-8?")
    d = result.daticert
    assert d.tipo == "accettazione" and d.errore == "nessuno"
    assert [(r.address, r.tipo) for r in d.destinatari] == [
        ("anna.bianchi@pec.altro.test", "certificato"),
        ("luca.verdi@gmail.com", "esterno"),
    ]
    assert d.identificativo == tx.pec_id
    assert d.msgid == "<c0ffee.1@client.example>"
    assert result.postacert is None
    body = text_plain(built.raw)
    assert 'anna.bianchi@pec.altro.test ("posta certificata")' in body
    assert 'luca.verdi@gmail.com ("posta ordinaria")' in body


def test_it_uses_one_timestamp_in_date_body_and_daticert(tx, identity, trust):
    summer = tx.at(dt.datetime(2025, 7, 1, 10, 0, 0, 123456, tzinfo=UTC))
    built = envelopes.build_acceptance(summer, identity=identity)
    assert headers_of(built.raw)["Date"] == "Tue, 01 Jul 2025 12:00:00 +0200"
    assert "Il giorno 01/07/2025 alle ore 12:00:00 (+0200)" in text_plain(built.raw)
    xml = daticert.build(built.daticert).decode()
    assert (
        '<data zona="+0200">' in xml and "<ora>12:00:00</ora>" in xml and "<giorno>01/07/2025</giorno>" in xml
    )


def test_it_writes_text_parts_in_latin1_quoted_printable_with_an_html_alternative(tx, identity):
    raw = envelopes.build_acceptance(tx, identity=identity).raw
    message = headers_of(raw)
    leaves = [p for p in message.walk() if p.get_content_maintype() == "text"]
    assert [p.get_content_type() for p in leaves] == ["text/plain", "text/html"]
    for part in leaves:
        assert part.get_content_charset() == "iso-8859-1"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    html = leaves[1].get_payload(decode=True).decode("iso-8859-1")
    assert "src=" not in html and "href=" not in html and "<script" not in html
    assert "Diffida è urgente" in html


def test_it_falls_back_to_utf8_when_latin1_cannot_carry_the_subject(tx, identity):
    t = tx.at(WHEN)
    t.subject = "Преду́преждение"
    raw = envelopes.build_acceptance(t, identity=identity).raw
    assert 'charset="utf-8"' in raw.decode()
    assert "Преду́преждение" in text_plain(raw)


def test_it_builds_both_non_acceptance_notices(tx, identity, trust):
    formal = envelopes.build_non_acceptance(tx, identity=identity, reason="Destinatari Bcc non ammessi")
    result = check_valid(formal.raw, trust, "non-accettazione")
    assert result.daticert.errore == "altro"
    assert result.daticert.errore_esteso == "Destinatari Bcc non ammessi"
    assert subject_of(formal.raw).startswith("AVVISO DI NON ACCETTAZIONE: ")
    assert "X-VerificaSicurezza" not in headers_of(formal.raw)

    virus = envelopes.build_non_acceptance(tx, identity=identity, reason="Eicar-Test-Signature", virus=True)
    result = check_valid(virus.raw, trust, "non-accettazione")
    assert headers_of(virus.raw)["X-VerificaSicurezza"] == "errore"
    assert result.daticert.errore == "virus"
    assert result.virus is True
    assert subject_of(virus.raw).startswith("AVVISO DI NON ACCETTAZIONE PER VIRUS: ")
    assert result.postacert is None


def test_it_builds_the_transport_envelope(tx, identity, trust):
    built = envelopes.build_transport_envelope(tx, ORIGINAL, identity=identity)
    result = check_valid(built.raw, trust, "posta-certificata")
    h = headers_of(built.raw)
    assert built.message_id == tx.pec_id
    assert h["Message-ID"] == f"<{tx.pec_id}>"
    assert h["X-Trasporto"] == "posta-certificata"
    assert h["X-Riferimento-Message-ID"] == "<c0ffee.1@client.example>"
    assert h["X-TipoRicevuta"] == "breve"
    assert h["From"] == '"Per conto di: mario.rossi@pec.example.test" <posta-certificata@pec.example.test>'
    assert h["Reply-To"] == SENDER
    assert h["To"] == "Anna Bianchi <anna.bianchi@pec.altro.test>"
    assert h["Cc"] == "luca.verdi@gmail.com"
    assert h["Received"].startswith("from client by mx.pec.example.test")
    assert subject_of(built.raw) == "POSTA CERTIFICATA: Diffida è urgente"
    assert result.daticert.ricevuta == "breve"
    assert result.receipt_type == "breve"
    inner = result.postacert
    inner_headers = headers_of(inner)
    assert inner_headers.get_all("Message-ID") == [f"<{tx.pec_id}>"]
    assert inner_headers["X-Riferimento-Message-ID"] == "<c0ffee.1@client.example>"
    # Only header lines were edited: the body is byte for byte the original's.
    assert inner.split(b"\r\n\r\n", 1)[1] == ORIGINAL.split(b"\r\n\r\n", 1)[1]


def test_it_keeps_an_existing_reply_to_on_the_envelope(tx, identity):
    original = ORIGINAL.replace(b"Cc: ", b"Reply-To: segreteria@pec.example.test\r\nCc: ")
    built = envelopes.build_transport_envelope(tx, original, identity=identity)
    assert headers_of(built.raw).get_all("Reply-To") == ["segreteria@pec.example.test"]


def test_it_canonicalises_an_lf_original_to_crlf(tx, identity, trust):
    built = envelopes.build_transport_envelope(tx, ORIGINAL.replace(b"\r\n", b"\n"), identity=identity)
    result = check_valid(built.raw, trust, "posta-certificata")
    assert result.postacert.split(b"\r\n\r\n", 1)[1] == ORIGINAL.split(b"\r\n\r\n", 1)[1]


def test_it_builds_the_take_charge_receipt_for_the_service_mailbox(tx, peer, trust):
    built = envelopes.build_take_charge(
        tx.at(WHEN + dt.timedelta(seconds=2)),
        ["anna.bianchi@pec.altro.test"],
        identity=peer,
        to="posta-certificata@pec.example.test",
    )
    result = check_valid(built.raw, trust, "presa-in-carico")
    assert headers_of(built.raw)["To"] == "posta-certificata@pec.example.test"
    assert headers_of(built.raw)["From"] == "posta-certificata@pec.altro.test"
    assert result.daticert.ricezione == ["anna.bianchi@pec.altro.test"]
    assert result.daticert.gestore_emittente == "Altro PEC S.r.l."
    assert subject_of(built.raw).startswith("PRESA IN CARICO: ")


def envelope_postacert(tx, identity, trust) -> bytes:
    built = envelopes.build_transport_envelope(tx, ORIGINAL, identity=identity)
    return classify.classify(built.raw, trust=trust, at=WHEN).postacert


def test_it_builds_the_complete_delivery_receipt(tx, identity, peer, trust):
    postacert = envelope_postacert(tx, identity, trust)
    built = envelopes.build_delivery_receipt(
        tx.at(WHEN + dt.timedelta(seconds=3)),
        "anna.bianchi@pec.altro.test",
        "completa",
        postacert,
        identity=peer,
    )
    result = check_valid(built.raw, trust, "avvenuta-consegna")
    assert result.receipt_type == "completa"
    assert result.daticert.consegna == "anna.bianchi@pec.altro.test"
    assert result.postacert == postacert
    assert subject_of(built.raw).startswith("CONSEGNA: ")
    assert "X-TipoRicevuta" not in headers_of(built.raw)


def test_it_builds_the_brief_receipt_with_hash_parts(tx, identity, peer, trust):
    postacert = envelope_postacert(tx, identity, trust)
    built = envelopes.build_delivery_receipt(
        tx, "anna.bianchi@pec.altro.test", "breve", postacert, identity=peer
    )
    result = check_valid(built.raw, trust, "avvenuta-consegna")
    assert result.receipt_type == "breve"
    brief = mimebytes.parse(result.postacert)
    names = {p.filename: p for p in brief.walk() if p.filename}
    assert set(names) == {"diffida.pdf.hash", "messaggio.eml.hash"}
    pdf_body = b"JVBERi0xLjQKJcfs\r\nj6IKMSAwIG9iago="
    assert (
        names["diffida.pdf.hash"].body == hashlib.sha1(pdf_body, usedforsecurity=False).hexdigest().encode()
    )
    assert names["diffida.pdf.hash"].content_type == "text/plain"
    inner = b"From: x@y.test\r\nSubject: inner\r\n\r\nhello"
    assert names["messaggio.eml.hash"].body == hashlib.sha1(inner, usedforsecurity=False).hexdigest().encode()
    assert b"Gentile Anna," in result.postacert
    assert b"JVBERi0x" not in result.postacert


def test_it_leaves_encrypted_originals_whole_in_a_brief_copy():
    original = (
        b"From: a@b.test\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIACAQAx\r\n"
    )
    assert breve.brief_copy(original) == original


def test_it_builds_the_synthetic_receipt_without_the_original(tx, peer, trust):
    built = envelopes.build_delivery_receipt(tx, "luca.verdi@gmail.com", "sintetica", None, identity=peer)
    result = check_valid(built.raw, trust, "avvenuta-consegna")
    assert result.receipt_type == "sintetica"
    assert result.postacert is None
    assert "Ricevuta sintetica di avvenuta consegna" in text_plain(built.raw)


@pytest.mark.parametrize(
    ("recipient", "requested", "expected"),
    [
        ("to@x.test", "completa", "completa"),
        ("TO@x.test", "breve", "breve"),
        ("cc@x.test", "completa", "sintetica"),
        ("cc@x.test", "breve", "sintetica"),
        ("to@x.test", "sintetica", "sintetica"),
        ("both@x.test", "breve", "completa"),
        ("nowhere@x.test", "breve", "completa"),
        ("to@x.test", "", "completa"),
    ],
)
def test_it_chooses_the_receipt_type_per_recipient(recipient, requested, expected):
    to, cc = ["to@x.test", "both@x.test"], ["cc@x.test", "both@x.test"]
    assert envelopes.receipt_type_for(recipient, to, cc, requested) == expected


@pytest.mark.parametrize("errore", ["no-dest", "no-dominio", "altro"])
def test_it_builds_the_delivery_error_notice(tx, peer, trust, errore):
    built = envelopes.build_delivery_error(
        tx,
        "anna.bianchi@pec.altro.test",
        errore,
        "5.1.1 - Altro PEC S.r.l. - indirizzo non valido",
        identity=peer,
    )
    result = check_valid(built.raw, trust, "errore-consegna")
    assert result.daticert.errore == errore
    assert result.daticert.errore_esteso == "5.1.1 - Altro PEC S.r.l. - indirizzo non valido"
    assert result.daticert.consegna == "anna.bianchi@pec.altro.test"
    assert subject_of(built.raw).startswith("AVVISO DI MANCATA CONSEGNA: ")


@pytest.mark.parametrize(("hours", "code", "words"), [(12, "4.4.7", "dodici"), (24, "5.4.1", "ventiquattro")])
def test_it_builds_the_timeout_notices_with_the_same_headers(tx, identity, trust, hours, code, words):
    built = envelopes.build_timeout_notice(
        tx.at(WHEN + dt.timedelta(hours=hours)), "anna.bianchi@pec.altro.test", hours, identity=identity
    )
    result = classify.classify(built.raw, trust=trust, at=WHEN + dt.timedelta(hours=hours))
    assert result.valid is True and result.kind == "preavviso-errore-consegna"
    assert headers_of(built.raw)["X-Ricevuta"] == "preavviso-errore-consegna"
    assert headers_of(built.raw)["To"] == SENDER
    assert subject_of(built.raw).startswith("AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO: ")
    assert result.daticert.errore_esteso.startswith(f"{code} - Example PEC S.p.A. - ")
    assert words in text_plain(built.raw)


def test_it_builds_the_virus_detection_notice_with_x_mittente(tx, peer, trust):
    built = envelopes.build_virus_detection(
        tx,
        "anna.bianchi@pec.altro.test",
        "Eicar-Test-Signature",
        identity=peer,
        to="posta-certificata@pec.example.test",
    )
    result = check_valid(built.raw, trust, "rilevazione-virus")
    h = headers_of(built.raw)
    assert h["X-Mittente"] == SENDER
    assert h["To"] == "posta-certificata@pec.example.test"
    assert result.daticert.errore == "virus"
    assert result.daticert.errore_esteso == "Eicar-Test-Signature"
    assert subject_of(built.raw).startswith("PROBLEMA DI SICUREZZA: ")


def test_it_builds_the_virus_delivery_error(tx, identity, trust):
    built = envelopes.build_virus_delivery_error(
        tx, "anna.bianchi@pec.altro.test", "Eicar", identity=identity
    )
    result = check_valid(built.raw, trust, "errore-consegna")
    assert headers_of(built.raw)["X-VerificaSicurezza"] == "errore"
    assert result.daticert.errore == "virus"
    assert subject_of(built.raw).startswith("AVVISO DI MANCATA CONSEGNA PER VIRUS: ")


def test_it_builds_the_anomaly_envelope_without_daticert(identity, peer, trust):
    received = ORIGINAL.replace(b"X-TipoRicevuta: breve\r\n", b"")
    built = envelopes.build_anomaly(received, "la firma non risulta attendibile", identity=peer, when=WHEN)
    result = check_valid(built.raw, trust, "anomalia")
    h = headers_of(built.raw)
    assert h["X-Trasporto"] == "errore"
    assert h["Message-ID"] == "<c0ffee.1@client.example>"
    assert h["From"] == '"Per conto di: mario.rossi@pec.example.test" <posta-certificata@pec.altro.test>'
    assert h["Reply-To"] == SENDER
    assert subject_of(built.raw) == "ANOMALIA MESSAGGIO: Diffida è urgente"
    assert built.daticert is None and result.daticert is None
    assert b"daticert.xml" not in built.raw
    assert result.postacert == received
    assert "Tali dati non sono stati certificati per il seguente errore:" in text_plain(built.raw)


def test_every_system_message_gets_its_own_message_id(tx, identity, peer):
    ids = {
        envelopes.build_acceptance(tx, identity=identity).message_id,
        envelopes.build_transport_envelope(tx, ORIGINAL, identity=identity).message_id,
        envelopes.build_delivery_receipt(tx, "a@pec.altro.test", "sintetica", None, identity=peer).message_id,
        envelopes.build_delivery_error(tx, "a@pec.altro.test", "altro", "x", identity=peer).message_id,
        envelopes.build_timeout_notice(tx, "a@pec.altro.test", 12, identity=identity).message_id,
    }
    assert len(ids) == 5


def test_it_rebuilds_the_transaction_from_a_received_daticert(tx, identity, trust):
    built = envelopes.build_transport_envelope(tx, ORIGINAL, identity=identity)
    d = classify.classify(built.raw, trust=trust, at=WHEN).daticert
    later = WHEN + dt.timedelta(minutes=1)
    again = Transaction.from_daticert(d, to=tx.to, cc=tx.cc, when=later)
    assert again.pec_id == tx.pec_id
    assert again.client_msgid == tx.client_msgid
    assert again.subject == tx.subject
    assert again.recipient_types == {
        "anna.bianchi@pec.altro.test": "certificato",
        "luca.verdi@gmail.com": "esterno",
    }
    assert again.receipt_type == "breve"
    assert again.when == later


def test_it_keeps_header_injection_out_of_the_subject(tx, identity):
    t = tx.at(WHEN)
    t.subject = "Ciao\r\nBcc: victim@example.test"
    raw = envelopes.build_acceptance(t, identity=identity).raw
    assert b"\r\nBcc:" not in raw


def test_it_encodes_a_raw_utf8_subject_of_the_original(identity):
    original = ORIGINAL.replace(b"=?utf-8?q?Diffida_=C3=A8_urgente?=", "Diffida è urgente".encode())
    t = Transaction.from_message(original, pec_id="p@pec.example.test", when=WHEN)
    assert t.subject == "Diffida è urgente"
    raw = envelopes.build_transport_envelope(t, original, identity=identity).raw
    assert headers_of(raw)["Subject"].startswith("POSTA CERTIFICATA: =?utf-8?")
    assert subject_of(raw) == "POSTA CERTIFICATA: Diffida è urgente"


def test_it_wraps_a_pec_message_from_an_unknown_provider_in_an_anomaly(tx, identity, peer):
    stranger = testing.make_identity("pec.ignoto.test", "Ignoto PEC", ca_name="unknown ca")
    foreign = envelopes.build_transport_envelope(tx, ORIGINAL, identity=stranger).raw
    built = envelopes.build_anomaly(foreign, "firma non attendibile", identity=peer, when=WHEN)
    result = check_valid(built.raw, testing.trust_store_for(peer), "anomalia")
    assert subject_of(built.raw) == "ANOMALIA MESSAGGIO: POSTA CERTIFICATA: Diffida è urgente"
    assert headers_of(built.raw)["Message-ID"] == f"<{tx.pec_id}>"
    # The received message travels whole: its own signature still verifies inside.
    inner = classify.classify(result.postacert, trust=testing.trust_store_for(stranger), at=WHEN)
    assert inner.valid is True


def test_a_brief_copy_hashes_a_signed_originals_parts_and_a_top_level_attachment():
    signed = (
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary="s"\r\n\r\n'
        b'--s\r\nContent-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nciao\r\n'
        b'--m\r\nContent-Type: application/pdf; name="a.pdf"\r\n\r\nPDFDATA\r\n--m--\r\n'
        b'--s\r\nContent-Type: application/pkcs7-signature; name="smime.p7s"\r\n\r\nSIG\r\n--s--\r\n'
    )
    brief = mimebytes.parse(breve.brief_copy(signed))
    names = {p.filename: p.body for p in brief.walk() if p.filename}
    assert names == {
        "a.pdf.hash": hashlib.sha1(b"PDFDATA", usedforsecurity=False).hexdigest().encode(),
        "smime.p7s.hash": hashlib.sha1(b"SIG", usedforsecurity=False).hexdigest().encode(),
    }
    single = b'From: a@b.test\r\nContent-Type: application/pdf; name="x.pdf"\r\n\r\nPDF\r\n'
    copy = breve.brief_copy(single)
    assert copy.startswith(b"From: a@b.test\r\n")
    assert b'filename="x.pdf.hash"' in copy
    assert copy.endswith(hashlib.sha1(b"PDF\r\n", usedforsecurity=False).hexdigest().encode())


@pytest.mark.parametrize(
    ("data", "canonical"),
    [
        (b"", b""),
        (b"a\r\nb\r\n", b"a\r\nb\r\n"),
        (b"a\nb\n", b"a\r\nb\r\n"),
        (b"a\rb\r\n", b"a\r\nb\r\n"),
        (b"a\n\r\nb", b"a\r\n\r\nb"),
        (b"\r\r\n", b"\r\n\r\n"),
    ],
)
def test_it_canonicalises_line_ends_to_crlf(data, canonical):
    assert envelopes._crlf(data) == canonical
    assert envelopes._is_canonical(canonical) is True
