"""``pec samples`` and ``pec verify``: the message formats, for independent checking.

``pec samples --out DIR`` runs a demo exchange through the real builders (a throwaway test CA
and provider identity, nothing written to the database) and writes one file per message type
plus ``ca.pem`` and ``provider.pem``, so that ``openssl smime -verify -CAfile ca.pem`` and
``pec verify --cert provider.pem --ca ca.pem`` can check them. ``pec verify FILE…`` prints one
JSON object per file and exits non-zero if any file is not valid PEC.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
from pathlib import Path
from typing import Any

from cryptography import x509
from django.conf import settings
from django.core.management.base import CommandError

from pecmail.certification import classify, envelopes, pki
from pecmail.certification.envelopes import Transaction
from pecmail.certification.smime import certificate_addresses
from pecmail.certification.trust import TrustedProvider, TrustStore

SAMPLE_FILES = (
    "accettazione.eml",
    "non-accettazione.eml",
    "non-accettazione-virus.eml",
    "posta-certificata.eml",
    "presa-in-carico.eml",
    "avvenuta-consegna-completa.eml",
    "avvenuta-consegna-breve.eml",
    "avvenuta-consegna-sintetica.eml",
    "errore-consegna.eml",
    "errore-consegna-virus.eml",
    "preavviso-errore-consegna-12h.eml",
    "preavviso-errore-consegna-24h.eml",
    "rilevazione-virus.eml",
    "anomalia.eml",
)
EICAR_NAME = "Eicar-Test-Signature"


def register(subparsers: Any, command: Any) -> None:
    p = subparsers.add_parser("samples", help="Write one signed example of every PEC message type.")
    p.add_argument(
        "--out", required=True, help="Directory to write the .eml files, ca.pem and provider.pem to."
    )
    p.add_argument("--domain", default=None, help="Demo provider domain (default: settings.PEC_DOMAIN).")
    p.set_defaults(handler=samples_command)

    p = subparsers.add_parser("verify", help="Classify and verify PEC messages; one JSON object per file.")
    p.add_argument("files", nargs="+", help="RFC 5322 message files (.eml).")
    p.add_argument(
        "--cert",
        action="append",
        default=[],
        help="Trust the provider certificate(s) in this PEM file instead of the providers index (repeatable).",
    )
    p.add_argument("--ca", default=None, help="PEM trust anchors for --cert (optional).")
    p.add_argument(
        "--at",
        default=None,
        help="Check certificates at this ISO 8601 time, or 'date' for each message's own Date header.",
    )
    p.set_defaults(handler=verify_command)


# ------------------------------------------------------------------------------------ samples


def tiny_pdf(text: str = "Diffida di pagamento") -> bytes:
    """Return a minimal but valid one-page PDF showing ``text`` (ASCII)."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode() + b"0000000000 65535 f \n"
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _b64(data: bytes) -> bytes:
    import base64

    encoded = base64.b64encode(data)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def demo_original(
    *, domain: str, when: dt.datetime, msgid: str, subject: str, extra_headers: str = ""
) -> bytes:
    """The demo user's message: HTML body with a text alternative and a PDF attachment."""
    date = email.utils.format_datetime(when.astimezone(envelopes.ROME))
    head = (
        f"Received: from [127.0.0.1] by {domain} with ESMTPSA; {date}\r\n"
        f'From: "Mario Rossi" <mario.rossi@{domain}>\r\n'
        f'To: "Anna Bianchi" <anna.bianchi@{domain}>\r\n'
        f"Cc: carlo.neri@{domain}, luca.verdi@example.com\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {date}\r\n"
        f"Message-ID: {msgid}\r\n"
        f"{extra_headers}"
        "X-TipoRicevuta: completa\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="=_mixed_demo"\r\n'
        "\r\n"
    ).encode()
    body = (
        b"--=_mixed_demo\r\n"
        b'Content-Type: multipart/alternative; boundary="=_alt_demo"\r\n\r\n'
        b"--=_alt_demo\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Gentile Anna,\r\nin allegato la diffida relativa alla fattura n. 42.\r\n\r\nMario Rossi\r\n"
        b"--=_alt_demo\r\n"
        b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"<p>Gentile Anna,</p><p>in allegato la <b>diffida</b> relativa alla fattura n. 42.</p>"
        b"<p>Mario Rossi</p>\r\n"
        b"--=_alt_demo--\r\n"
        b"--=_mixed_demo\r\n"
        b'Content-Type: application/pdf; name="diffida.pdf"\r\n'
        b'Content-Disposition: attachment; filename="diffida.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + _b64(tiny_pdf()) + b"\r\n"
        b"--=_mixed_demo--\r\n"
    )
    return head + body


def demo_identity(domain: str, name: str) -> tuple[pki.ProviderIdentity, x509.Certificate]:
    ca_key, ca_cert = pki.create_test_ca(f"{name} demo")
    key, cert = pki.issue_provider_certificate(ca_key=ca_key, ca_cert=ca_cert, domain=domain, name=name)
    return pki.ProviderIdentity(domain=domain, name=name, key=key, cert=cert, chain=(ca_cert,)), ca_cert


def write_samples(out: Path, *, domain: str, name: str, now: dt.datetime | None = None) -> dict[str, bytes]:
    """Run the demo exchange and write every message type; return {file name: bytes}.

    One provider manages the demo domain, so every message (the sender side and the
    recipient side, processed in full even within one domain) is signed by ``provider.pem``.
    """
    identity, ca_cert = demo_identity(domain, name)
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    second = dt.timedelta(seconds=1)
    anna, carlo, luca = f"anna.bianchi@{domain}", f"carlo.neri@{domain}", "luca.verdi@example.com"
    kinds = {anna.lower(): "certificato", carlo.lower(): "certificato", luca: "esterno"}
    subject = "=?iso-8859-1?q?Diffida_di_pagamento:_fattura_n._42_=E8_scaduta?="

    def submission(msgid: str, when: dt.datetime, extra: str = "") -> tuple[bytes, Transaction]:
        original = demo_original(domain=domain, when=when, msgid=msgid, subject=subject, extra_headers=extra)
        tx = Transaction.from_message(
            original, pec_id=envelopes.new_pec_id(domain, when), when=when, recipient_types=kinds
        )
        return original, tx

    files: dict[str, bytes] = {}
    original, tx = submission(f"<demo.{now:%Y%m%d%H%M%S}.1@client.{domain}>", now)
    files["accettazione.eml"] = envelopes.build_acceptance(tx, identity=identity).raw
    envelope = envelopes.build_transport_envelope(tx, original, identity=identity)
    files["posta-certificata.eml"] = envelope.raw
    postacert = classify.classify(envelope.raw).postacert
    assert postacert is not None
    # The receiving side (the same provider here) rebuilds the transaction from the envelope.
    received = Transaction.from_daticert(envelope.daticert, to=tx.to, cc=tx.cc, when=now + second)
    files["presa-in-carico.eml"] = envelopes.build_take_charge(
        received, [anna, carlo], identity=identity, to=identity.service_address
    ).raw
    delivered = received.at(now + 2 * second)
    for kind in ("completa", "breve"):
        files[f"avvenuta-consegna-{kind}.eml"] = envelopes.build_delivery_receipt(
            delivered, anna, kind, postacert, identity=identity
        ).raw
    sintetica = envelopes.receipt_type_for(carlo, received.to, received.cc, received.receipt_type)
    files["avvenuta-consegna-sintetica.eml"] = envelopes.build_delivery_receipt(
        delivered, carlo, sintetica, postacert, identity=identity
    ).raw
    files["errore-consegna.eml"] = envelopes.build_delivery_error(
        delivered, carlo, "no-dest", f"5.1.1 - {name} - indirizzo non valido", identity=identity
    ).raw
    files["preavviso-errore-consegna-12h.eml"] = envelopes.build_timeout_notice(
        tx.at(now + dt.timedelta(hours=12)), carlo, 12, identity=identity
    ).raw
    files["preavviso-errore-consegna-24h.eml"] = envelopes.build_timeout_notice(
        tx.at(now + dt.timedelta(hours=24)), carlo, 24, identity=identity
    ).raw
    files["rilevazione-virus.eml"] = envelopes.build_virus_detection(
        delivered, carlo, EICAR_NAME, identity=identity, to=identity.service_address
    ).raw
    files["errore-consegna-virus.eml"] = envelopes.build_virus_delivery_error(
        tx.at(now + 3 * second), carlo, EICAR_NAME, identity=identity
    ).raw

    _original, refused = submission(
        f"<demo.{now:%Y%m%d%H%M%S}.2@client.{domain}>", now + 10 * second, extra=f"Bcc: nascosto@{domain}\r\n"
    )
    files["non-accettazione.eml"] = envelopes.build_non_acceptance(
        refused, identity=identity, reason="Destinatari in copia nascosta (Bcc) non ammessi"
    ).raw
    _original, infected = submission(f"<demo.{now:%Y%m%d%H%M%S}.3@client.{domain}>", now + 20 * second)
    files["non-accettazione-virus.eml"] = envelopes.build_non_acceptance(
        infected, identity=identity, reason=EICAR_NAME, virus=True
    ).raw

    date = email.utils.format_datetime((now + 30 * second).astimezone(envelopes.ROME))
    ordinary = (
        f"Received: from mx.example.com by {domain}; {date}\r\n"
        f"From: luca.verdi@example.com\r\nTo: {anna}\r\nSubject: Re: Diffida\r\nDate: {date}\r\n"
        f"Message-ID: <ordinary.{now:%Y%m%d%H%M%S}@example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nRicevuto, grazie.\r\n"
    ).encode()
    files["anomalia.eml"] = envelopes.build_anomaly(
        ordinary,
        "la firma digitale del messaggio non risulta attendibile",
        identity=identity,
        when=now + 30 * second,
    ).raw

    out.mkdir(parents=True, exist_ok=True)
    for filename in SAMPLE_FILES:
        (out / filename).write_bytes(files[filename])
    (out / "ca.pem").write_bytes(pki.cert_to_pem(ca_cert))
    (out / "provider.pem").write_bytes(pki.cert_to_pem(identity.cert))
    return files


def samples_command(command: Any, options: dict[str, Any]) -> None:
    out = Path(options["out"])
    domain = (options.get("domain") or settings.PEC_DOMAIN).strip().lower()
    write_samples(out, domain=domain, name=settings.PEC_PROVIDER_NAME)
    for filename in (*SAMPLE_FILES, "ca.pem", "provider.pem"):
        command.stdout.write(str(out / filename))


# ------------------------------------------------------------------------------------- verify


def trust_store_from_pem(cert_files: list[Path], ca_file: Path | None = None) -> TrustStore:
    """A trust store listing each certificate in ``cert_files`` as a provider of its SAN domains."""
    providers = []
    for path in cert_files:
        for cert in x509.load_pem_x509_certificates(path.read_bytes()):
            domains = frozenset(a.rpartition("@")[2] for a in certificate_addresses(cert))
            service = next(iter(sorted(certificate_addresses(cert))), "")
            name = cert.subject.rfc4514_string()
            providers.append(
                TrustedProvider(name=name, mail_receipt=service, domains=domains, certificates=(cert,))
            )
    anchors = x509.load_pem_x509_certificates(ca_file.read_bytes()) if ca_file else []
    return TrustStore(providers, anchors=anchors)


def _message_date(raw: bytes) -> dt.datetime | None:
    match = re.search(rb"^Date:[ \t]*(.+)$", raw[:65536], re.MULTILINE | re.IGNORECASE)
    if not match:
        return None
    try:
        return email.utils.parsedate_to_datetime(match.group(1).decode("ascii", "replace").strip())
    except (TypeError, ValueError):
        return None


def verify_command(command: Any, options: dict[str, Any]) -> None:
    if options["cert"]:
        try:
            trust = trust_store_from_pem(
                [Path(p) for p in options["cert"]], Path(options["ca"]) if options.get("ca") else None
            )
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot load the certificates: {exc}") from exc
    else:
        from pecmail.certification import index

        trust = index.trust_store()
    at_option = options.get("at")
    fixed_at: dt.datetime | None = None
    if at_option and at_option != "date":
        try:
            fixed_at = dt.datetime.fromisoformat(at_option)
        except ValueError as exc:
            raise CommandError(f"--at: {exc}") from exc
        if fixed_at.tzinfo is None:
            fixed_at = fixed_at.replace(tzinfo=dt.UTC)
    invalid = 0
    for filename in options["files"]:
        try:
            raw = Path(filename).read_bytes()
        except OSError as exc:
            command.stdout.write(json.dumps({"file": filename, "valid": False, "problems": [str(exc)]}))
            invalid += 1
            continue
        at = _message_date(raw) if at_option == "date" else fixed_at
        result = classify.classify(raw, trust=trust, at=at)
        command.stdout.write(json.dumps({"file": filename, **result.to_json()}, ensure_ascii=False))
        if not result.valid:
            invalid += 1
    if invalid:
        raise CommandError(f"{invalid} of {len(options['files'])} file(s) are not valid PEC", returncode=1)
