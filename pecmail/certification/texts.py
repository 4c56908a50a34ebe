"""The Italian, human-readable bodies of the PEC system messages (SPEC §5).

The wording follows the real Aruba, Sogei and Namirial texts where one exists and the
proposals of SPEC §5 elsewhere. Each body is rendered twice from the same lines: text/plain
and an HTML alternative that carries the same information with no external resource.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

LABEL = {"certificato": "posta certificata", "esterno": "posta ordinaria"}


@dataclass(frozen=True)
class Body:
    title: str
    plain: str
    html: str


@dataclass(frozen=True)
class Facts:
    """What a body relates: local date/time of the event, the original message and the outcome."""

    giorno: str
    ora: str
    zona: str
    oggetto: str
    mittente: str
    identificativo: str
    destinatari: Sequence[tuple[str, str]] = ()
    destinatario: str = ""
    errore: str = ""


def _when(f: Facts) -> str:
    return f"Il giorno {f.giorno} alle ore {f.ora} ({f.zona})"


def _recipient_lines(f: Facts) -> list[str]:
    return [f'{address} ("{LABEL.get(tipo, tipo)}")' for address, tipo in f.destinatari]


def _plain_recipients(f: Facts) -> list[str]:
    return [address for address, _tipo in f.destinatari]


def _lines(kind: str, f: Facts) -> tuple[str, list[str]]:
    when = _when(f)
    ident = f"Identificativo messaggio: {f.identificativo}"
    subject = f'"{f.oggetto}"'
    sender = f'"{f.mittente}"'
    rcpt = f'"{f.destinatario}"'
    if kind == "accettazione":
        return "Ricevuta di accettazione", [
            f"{when} il messaggio",
            f"{subject} proveniente da {sender}",
            "ed indirizzato a:",
            *_recipient_lines(f),
            "Il messaggio è stato accettato dal sistema ed inoltrato.",
            ident,
        ]
    if kind == "non-accettazione":
        return "Avviso di non accettazione", [
            f"{when} nel messaggio",
            f"{subject} proveniente da {sender}",
            "ed indirizzato a:",
            *_plain_recipients(f),
            "è stato rilevato un problema che ne impedisce l'accettazione a causa di:",
            f.errore,
            "Il messaggio non è stato accettato.",
            ident,
        ]
    if kind == "non-accettazione-virus":
        return "Avviso di non accettazione per virus", [
            f"{when} nel messaggio",
            f"{subject} proveniente da {sender}",
            "ed indirizzato a:",
            *_plain_recipients(f),
            f"è stato rilevato un problema di sicurezza: {f.errore}",
            "Il messaggio non è stato accettato.",
            ident,
        ]
    if kind == "posta-certificata":
        return "Messaggio di posta certificata", [
            f"{when} il messaggio",
            f"{subject} è stato inviato da {sender}",
            "indirizzato a:",
            *_plain_recipients(f),
            "Il messaggio originale è incluso in allegato.",
            ident,
        ]
    if kind == "presa-in-carico":
        return "Ricevuta di presa in carico", [
            f"{when} il messaggio",
            f"{subject} proveniente da {sender}",
            "ed indirizzato a:",
            *_plain_recipients(f),
            "è stato accettato dal sistema.",
            ident,
        ]
    if kind.startswith("avvenuta-consegna-"):
        variant = kind.removeprefix("avvenuta-consegna-")
        title = {
            "completa": "Ricevuta di avvenuta consegna",
            "breve": "Ricevuta breve di avvenuta consegna",
            "sintetica": "Ricevuta sintetica di avvenuta consegna",
        }[variant]
        lines = [
            f"{when} il messaggio",
            f"{subject} proveniente da {sender}",
            f"ed indirizzato a {rcpt}",
            "è stato consegnato nella casella di destinazione.",
            ident,
        ]
        if variant == "completa":
            lines.append('Il messaggio originale è incluso in allegato (file "postacert.eml").')
        elif variant == "breve":
            lines.append(
                'Il messaggio originale è incluso in allegato (file "postacert.eml"): ogni suo allegato'
                ' è sostituito da un file ".hash" con l\'impronta SHA-1 del contenuto.'
            )
        return title, lines
    if kind == "errore-consegna":
        return "Avviso di mancata consegna", [
            f"{when} nel messaggio",
            f"{subject} proveniente da {sender}",
            f"e destinato all'utente {rcpt}",
            "è stato rilevato il seguente errore:",
            f.errore,
            "Il messaggio è stato rifiutato dal sistema.",
            ident,
        ]
    if kind == "errore-consegna-virus":
        return "Avviso di mancata consegna per virus", [
            f"{when} nel messaggio",
            f"{subject} proveniente da {sender}",
            f"ed indirizzato a {rcpt}",
            f"è stato rilevato un problema di sicurezza: {f.errore}",
            "Il messaggio non è stato consegnato.",
            ident,
        ]
    if kind == "preavviso-12h":
        return "Avviso di mancata consegna", [
            f"{when} il messaggio",
            f"{subject} proveniente da {sender}",
            f"ed indirizzato a {rcpt}",
            "non è stato consegnato nelle prime dodici ore seguenti il suo invio.",
            "Non si esclude che il messaggio possa essere consegnato in seguito, ma si ritiene utile"
            " considerare che l'invio potrebbe non avere esito positivo.",
            "Il sistema provvederà ad inviare un ulteriore avviso di mancata consegna qualora nelle"
            " successive dodici ore non pervenga conferma della consegna.",
            ident,
        ]
    if kind == "preavviso-24h":
        return "Avviso di mancata consegna per superamento dei tempi massimi", [
            f"{when} il messaggio",
            f"{subject} proveniente da {sender}",
            f"ed indirizzato a {rcpt}",
            "non è stato consegnato entro le ventiquattro ore seguenti il suo invio.",
            "La transazione si intende conclusa con esito negativo.",
            ident,
        ]
    if kind == "rilevazione-virus":
        return "Problema di sicurezza", [
            f"{when} nel messaggio",
            f"{subject} proveniente da {sender}",
            f"ed indirizzato a {rcpt}",
            f"è stato rilevato un problema di sicurezza: {f.errore}",
            ident,
        ]
    if kind == "anomalia":
        return "Anomalia nel messaggio", [
            f"{when} è stato ricevuto il messaggio",
            f"{subject} proveniente da {sender}",
            "ed indirizzato a:",
            *_plain_recipients(f),
            "Tali dati non sono stati certificati per il seguente errore:",
            f.errore,
            "Il messaggio originale è incluso in allegato.",
        ]
    raise ValueError(f"no text for {kind!r}")


def render(kind: str, facts: Facts) -> Body:
    """Return the title, text/plain and text/html bodies (LF line ends) of a system message."""
    title, lines = _lines(kind, facts)
    # Values come from the sender: keep them on one line so they cannot fake extra lines.
    lines = [" ".join(line.splitlines()) for line in lines]
    plain = f"-- {title} --\n\n" + "\n".join(lines) + "\n"
    esc_title = html.escape(title)
    body_html = "<br>\n".join(html.escape(line) for line in lines)
    markup = (
        "<html>\n<head><title>"
        + esc_title
        + "</title></head>\n<body>\n<h3>"
        + esc_title
        + "</h3>\n<hr><br>\n"
        + body_html
        + "<br>\n</body>\n</html>\n"
    )
    return Body(title=title, plain=plain, html=markup)
