"""The Messages tab's pages: permissions, methods, lists, reading, downloads, folders."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from pecmail.mail import services
from pecmail.mail.models import Draft, Folder, Message
from tests.mail.ui_factories import store

PDF = b"%PDF-1.4\n% test\n"


def folder_of(mailbox, role):
    return Folder.objects.get(mailbox=mailbox, role=role)


@pytest.fixture
def message(alice):
    return store(
        alice,
        subject="Fattura 42",
        text="See https://example.org/f?a=1&b=2 now",
        html='<p>Hi <b>Alice</b><img src="https://tracker.example/p.gif"><script>alert(1)</script></p>',
        attachments=[
            ("fattura.pdf", "application/pdf", PDF),
            ("evil.html", "text/html", b"<script>1</script>"),
        ],
    )


@pytest.fixture
def draft(alice):
    return services.draft_save(mailbox=alice, to="bob@example.org", subject="Draft one", body_text="x")


@pytest.fixture
def user_folder(alice):
    return services.folder_create(mailbox=alice, name="Clients")


def all_urls(message, draft, user_folder) -> list[tuple[str, str]]:
    """(method, url) of every page of the tab that reaches one of alice's objects."""
    m, d, f = message.pk, draft.pk, user_folder.pk
    attachment = draft.attachments.first()
    return [
        ("get", reverse("mail:folder", args=[f])),
        ("post", reverse("mail:bulk", args=[f])),
        ("post", reverse("mail:folder_rename", args=[f])),
        ("post", reverse("mail:folder_delete", args=[f])),
        ("get", reverse("mail:read", args=[m])),
        ("get", reverse("mail:body", args=[m])),
        ("get", reverse("mail:deliveries", args=[m])),
        ("get", reverse("mail:raw", args=[m])),
        ("get", reverse("mail:attachment", args=[m, 0])),
        ("post", reverse("mail:move", args=[m])),
        ("post", reverse("mail:delete", args=[m])),
        ("post", reverse("mail:mark", args=[m])),
        ("get", reverse("mail:reply", args=[m])),
        ("get", reverse("mail:reply_all", args=[m])),
        ("get", reverse("mail:forward", args=[m])),
        ("get", reverse("mail:draft", args=[d])),
        ("post", reverse("mail:draft", args=[d])),
        ("post", reverse("mail:draft_attachments", args=[d])),
        ("post", reverse("mail:draft_attachment_remove", args=[d, attachment.pk if attachment else 1])),
        ("post", reverse("mail:draft_discard", args=[d])),
    ]


OWN_URLS = [
    ("get", "mail:index"),
    ("get", "mail:compose"),
    ("post", "mail:compose"),
    ("post", "mail:folder_create"),
    ("post", "mail:trash_empty"),
    ("post", "mail:receipts_toggle"),
]


def test_it_redirects_anonymous_visitors_to_the_login_page(client, message, draft, user_folder):
    for method, url in all_urls(message, draft, user_folder) + [(m, reverse(n)) for m, n in OWN_URLS]:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("account_login")), url


def test_it_answers_404_to_another_user_for_every_object_url(charlie_client, message, draft, user_folder):
    folder_id = user_folder.pk
    for method, url in all_urls(message, draft, user_folder):
        response = getattr(charlie_client, method)(
            url, {"action": "read", "ids": [message.pk], "name": "X", "folder": folder_id, "mark": "flag"}
        )
        assert response.status_code == 404, url
    message.refresh_from_db()
    assert message.folder.role == Folder.Role.INBOX
    assert Draft.objects.filter(pk=draft.pk).exists() is True
    assert Folder.objects.filter(pk=folder_id, name="Clients").exists() is True


def test_it_refuses_charlie_ticking_alices_message_in_his_own_folder(charlie_client, charlie, message):
    inbox = folder_of(charlie, Folder.Role.INBOX)
    response = charlie_client.post(
        reverse("mail:bulk", args=[inbox.pk]), {"action": "delete", "ids": [message.pk]}
    )
    assert response.status_code == 404
    message.refresh_from_db()
    assert message.folder.role == Folder.Role.INBOX


def test_it_answers_405_to_the_wrong_method(alice_client, message, draft, user_folder):
    for method, url in all_urls(message, draft, user_folder) + [(m, reverse(n)) for m, n in OWN_URLS]:
        if reverse("mail:compose") == url or url == reverse("mail:draft", args=[draft.pk]):
            assert alice_client.put(url).status_code == 405, url
            continue
        wrong = "post" if method == "get" else "get"
        assert getattr(alice_client, wrong)(url).status_code == 405, url


def test_it_requires_the_csrf_token_for_every_state_change(alice, message, draft, user_folder):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice.owner)
    for method, url in all_urls(message, draft, user_folder) + [(m, reverse(n)) for m, n in OWN_URLS]:
        if method == "post":
            assert client.post(url, {"action": "save"}).status_code == 403, url
    message.refresh_from_db()
    assert message.folder.role == Folder.Role.INBOX


def test_it_lists_the_inbox_newest_first_with_unread_in_bold_and_marks(alice_client, alice):
    store(alice, subject="Old one", date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    store(
        alice,
        subject="Urgent",
        date=dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
        headers={"Importance": "high", "X-Priority": "1"},
        attachments=[("a.pdf", "application/pdf", PDF)],
    )
    response = alice_client.get(reverse("mail:index"))
    assert response.status_code == 200
    body = response.content.decode()
    assert body.index("Urgent") < body.index("Old one")
    assert re.search(r'class="msg-row unread"', body) is not None
    assert 'class="mark priority"' in body
    assert 'class="mark attach"' in body
    assert "Inbox" in body and "Sent" in body and "Drafts" in body and "Trash" in body


def test_it_shows_a_badge_for_the_pec_kind(alice_client, alice):
    store(alice, subject="ACCETTAZIONE: x", fields={"kind": Message.Kind.ACCEPTANCE})
    store(alice, subject="POSTA CERTIFICATA: y", fields={"kind": Message.Kind.CERTIFIED})
    store(alice, subject="AVVISO DI MANCATA CONSEGNA: z", fields={"kind": Message.Kind.DELIVERY_ERROR})
    body = alice_client.get(reverse("mail:index")).content.decode()
    assert "kind-accettazione" in body and "Acceptance receipt" in body
    assert "kind-posta-certificata" in body and "Certified message" in body
    assert "kind-errore-consegna kind-bad" in body


def test_it_paginates_with_a_keyset_cursor_and_never_offset(alice_client, alice):
    base = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    for i in range(55):
        store(alice, subject=f"Message {i:02d}", text=f"body {i}", date=base + dt.timedelta(minutes=i))
    with CaptureQueriesContext(connection) as queries:
        first = alice_client.get(reverse("mail:index"))
    assert all("OFFSET" not in q["sql"].upper() for q in queries.captured_queries)
    page = first.content.decode()
    assert "Message 54" in page and "Message 05" in page
    assert "Message 04" not in page
    older = first.context["older_url"]
    assert "before=" in older
    with CaptureQueriesContext(connection) as queries:
        second = alice_client.get(older)
    assert all("OFFSET" not in q["sql"].upper() for q in queries.captured_queries)
    rows = [m.subject for m in second.context["rows"]]
    assert rows == [f"Message {i:02d}" for i in range(4, -1, -1)]
    assert second.context["older_url"] == ""


def test_it_answers_404_to_a_forged_cursor(alice_client):
    assert alice_client.get(reverse("mail:index"), {"before": "x_y"}).status_code == 404


def test_it_reads_a_message_and_marks_it_seen(alice_client, message):
    response = alice_client.get(reverse("mail:read", args=[message.pk]))
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.seen is True
    body = response.content.decode()
    # The HTML body is only ever in the sandboxed frame, never inline.
    assert "<script>alert(1)</script>" not in body
    frame = re.search(r"<iframe[^>]*>", body).group(0)
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame
    assert "allow-scripts" not in frame
    assert "allow-same-origin" not in frame
    assert reverse("mail:body", args=[message.pk]) in frame
    assert "fattura.pdf" in body and "application/pdf" in body
    assert "Show images" in body


def test_it_serves_the_body_sanitised_with_its_own_strict_csp(alice_client, message):
    response = alice_client.get(reverse("mail:body", args=[message.pk]))
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "img-src data:;" in csp
    assert "script-src" not in csp
    assert "sandbox" in csp
    assert "frame-ancestors 'self'" in csp
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    html = response.content.decode()
    assert "<b>Alice</b>" in html
    assert "<script" not in html
    assert "tracker.example" not in html


def test_it_shows_remote_images_only_when_asked(alice_client, message):
    response = alice_client.get(reverse("mail:body", args=[message.pk]), {"images": "1"})
    assert "tracker.example/p.gif" in response.content.decode()
    assert "img-src data: https: http:" in response["Content-Security-Policy"]


def test_it_keeps_deny_framing_on_every_other_page(alice_client, message):
    assert alice_client.get(reverse("mail:read", args=[message.pk]))["X-Frame-Options"] == "DENY"


def test_it_shows_plain_text_escaped_and_linkified(alice_client, alice):
    plain = store(alice, subject="Plain", text="<b>not bold</b> https://example.org/x javascript:alert(1)")
    body = alice_client.get(reverse("mail:read", args=[plain.pk])).content.decode()
    assert "&lt;b&gt;not bold&lt;/b&gt;" in body
    assert '<a href="https://example.org/x" rel="noopener noreferrer nofollow" target="_blank">' in body
    assert 'href="javascript' not in body
    assert "<iframe" not in body


def test_it_downloads_attachments_as_attachments_with_nosniff(alice_client, message):
    response = alice_client.get(reverse("mail:attachment", args=[message.pk, 0]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert 'filename="fattura.pdf"' in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.content == PDF
    risky = alice_client.get(reverse("mail:attachment", args=[message.pk, 1]))
    assert risky["Content-Type"] == "application/octet-stream"
    assert "sandbox" in risky["Content-Security-Policy"]
    assert alice_client.get(reverse("mail:attachment", args=[message.pk, 9])).status_code == 404


def test_it_gives_hostile_filenames_a_safe_rfc6266_header(alice_client, alice):
    hostile = store(
        alice,
        subject="Files",
        attachments=[('..\\..\\evil"\r\nX-Injected: 1\u202egpj.exe', "application/pdf", PDF)],
    )
    response = alice_client.get(reverse("mail:attachment", args=[hostile.pk, 0]))
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "\r" not in disposition and "\n" not in disposition
    assert "\u202e" not in disposition
    assert "X-Injected" not in response.headers or response.headers.get("X-Injected") is None
    assert ".." not in disposition.split("filename", 1)[1][:4]


def test_it_downloads_the_raw_eml(alice_client, message):
    from pecmail.mail import storage

    response = alice_client.get(reverse("mail:raw", args=[message.pk]))
    assert response.status_code == 200
    assert response.content == storage.raw_get(message.raw_sha256)
    assert response["Content-Disposition"].startswith("attachment;")
    assert ".eml" in response["Content-Disposition"]


def test_it_shows_the_certified_data_outside_the_content(alice_client, alice):
    certified = store(
        alice,
        subject="POSTA CERTIFICATA: Contratto",
        fields={
            "kind": Message.Kind.CERTIFIED,
            "signature_valid": True,
            "signer_provider": "Provider Test S.p.A.",
            "certified_data": {
                "daticert": {
                    "tipo": "posta-certificata",
                    "mittente": "bob@pec.example",
                    "destinatari": [{"address": "alice@pec.example", "tipo": "certificato"}],
                    "data": "2026-11-01T11:00:00+01:00",
                    "zona": "+0100",
                    "identificativo": "opec21.20261101110000.12345.01.1.1@pec.example",
                    "gestore_emittente": "Provider Test S.p.A.",
                    "errore": "nessuno",
                }
            },
        },
    )
    body = alice_client.get(reverse("mail:read", args=[certified.pk])).content.decode()
    section = body[body.index('class="certified"') : body.index('class="reader-body"')]
    assert "Certified data" in section
    assert "bob@pec.example" in section
    assert "alice@pec.example" in section
    assert "opec21.20261101110000.12345.01.1.1@pec.example" in section
    assert "valid" in section and "Provider Test S.p.A." in section


def test_it_moves_deletes_and_marks_from_the_reading_pane(alice_client, alice, message, user_folder):
    assert (
        alice_client.post(reverse("mail:move", args=[message.pk]), {"folder": user_folder.pk}).status_code
        == 302
    )
    message.refresh_from_db()
    assert message.folder_id == user_folder.pk
    alice_client.post(reverse("mail:mark", args=[message.pk]), {"mark": "flag"})
    message.refresh_from_db()
    assert message.flagged is True
    alice_client.post(reverse("mail:delete", args=[message.pk]))
    message.refresh_from_db()
    assert message.folder.role == Folder.Role.TRASH
    alice_client.post(reverse("mail:delete", args=[message.pk]))
    assert Message.objects.filter(pk=message.pk).exists() is False


def test_it_applies_bulk_actions_to_the_ticked_messages(alice_client, alice, user_folder):
    one, two = store(alice, subject="one"), store(alice, subject="two", text="2")
    inbox = folder_of(alice, Folder.Role.INBOX)
    url = reverse("mail:bulk", args=[inbox.pk])
    alice_client.post(url, {"action": "read", "ids": [one.pk, two.pk]})
    assert set(Message.objects.filter(pk__in=[one.pk, two.pk]).values_list("seen", flat=True)) == {True}
    alice_client.post(url, {"action": "flag", "ids": [one.pk]})
    one.refresh_from_db()
    assert one.flagged is True
    alice_client.post(url, {"action": "move", "ids": [one.pk], "folder": user_folder.pk})
    one.refresh_from_db()
    assert one.folder_id == user_folder.pk
    alice_client.post(url, {"action": "delete", "ids": [two.pk]})
    two.refresh_from_db()
    assert two.folder.role == Folder.Role.TRASH
    assert alice_client.post(url, {"action": "move", "ids": [two.pk]}).status_code == 422
    assert alice_client.post(url, {"action": "read"}).status_code == 422


def test_it_empties_the_trash(alice_client, alice):
    doomed = store(alice, role=Folder.Role.TRASH, subject="bye")
    assert alice_client.post(reverse("mail:trash_empty")).status_code == 302
    assert Message.objects.filter(pk=doomed.pk).exists() is False


def test_it_creates_renames_and_deletes_folders(alice_client, alice):
    response = alice_client.post(reverse("mail:folder_create"), {"name": "Fornitori"})
    created = Folder.objects.get(mailbox=alice, name="Fornitori")
    assert response["Location"] == reverse("mail:folder", args=[created.pk])
    assert alice_client.post(reverse("mail:folder_create"), {"name": "fornitori"}).status_code == 422
    assert alice_client.post(reverse("mail:folder_create"), {"name": "Inbox"}).status_code == 422
    alice_client.post(reverse("mail:folder_rename", args=[created.pk]), {"name": "Suppliers"})
    created.refresh_from_db()
    assert created.name == "Suppliers"
    kept = store(alice, subject="inside")
    services.message_move(message=kept, folder=created)
    alice_client.post(reverse("mail:folder_delete", args=[created.pk]))
    assert Folder.objects.filter(pk=created.pk).exists() is False
    kept.refresh_from_db()
    assert kept.folder.role == Folder.Role.TRASH


def test_it_refuses_to_rename_or_delete_system_folders(alice_client, alice):
    inbox = folder_of(alice, Folder.Role.INBOX)
    assert alice_client.post(reverse("mail:folder_rename", args=[inbox.pk]), {"name": "X"}).status_code == 404
    assert alice_client.post(reverse("mail:folder_delete", args=[inbox.pk])).status_code == 404


def test_it_shows_unread_counts_in_the_folder_list(alice_client, alice):
    store(alice, subject="a")
    store(alice, subject="b", text="b")
    folders = alice_client.get(reverse("mail:index")).context["folders"]
    inbox = next(f for f in folders if f.role == Folder.Role.INBOX)
    assert inbox.unread == 2


def test_it_hides_receipts_folded_under_their_message_when_asked(alice_client, alice):
    sent = store(alice, role=Folder.Role.SENT, subject="Original", fields={"kind": Message.Kind.SUBMITTED})
    store(alice, subject="ACCETTAZIONE: Original", fields={"kind": Message.Kind.ACCEPTANCE, "related": sent})
    store(alice, subject="Unrelated", text="u")
    shown = alice_client.get(reverse("mail:index")).content.decode()
    assert "ACCETTAZIONE: Original" in shown
    alice_client.post(reverse("mail:receipts_toggle"), {"hide": "1"})
    hidden = alice_client.get(reverse("mail:index")).content.decode()
    assert "ACCETTAZIONE: Original" not in hidden
    assert "Unrelated" in hidden
    alice_client.post(reverse("mail:receipts_toggle"), {"hide": "0"})
    assert "ACCETTAZIONE: Original" in alice_client.get(reverse("mail:index")).content.decode()


def test_it_shows_inline_cid_images_as_data_urls_without_any_request(alice_client, alice):
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["To"] = alice.address
    msg["Subject"] = "Logo"
    msg.set_content("logo")
    msg.add_alternative('<p><img src="cid:logo@x" alt="logo"></p>', subtype="html")
    msg.get_payload()[1].add_related(
        b"\x89PNG\r\n\x1a\nfake", maintype="image", subtype="png", cid="<logo@x>"
    )
    stored = services.message_store(mailbox=alice, raw=bytes(msg))
    html = alice_client.get(reverse("mail:body", args=[stored.pk])).content.decode()
    assert 'src="data:image/png;base64,iVBORw0KGgpmYWtl"' in html


def test_it_tells_an_account_without_a_mailbox_so(client, django_user_model):
    user = django_user_model.objects.create_user(email="admin@example.org", password="x-long-password-1")
    client.force_login(user)
    response = client.get(reverse("mail:index"))
    assert response.status_code == 200
    assert "This account has no PEC mailbox." in response.content.decode()
    assert client.get(reverse("mail:compose")).status_code == 404


def test_it_offers_to_show_images_only_when_some_were_withheld(alice_client, alice):
    local = store(alice, subject="No remote", html="<p>only text</p>")
    assert "Show images" not in alice_client.get(reverse("mail:read", args=[local.pk])).content.decode()


def test_it_opens_a_message_in_the_reading_pane_beside_the_list(alice_client, alice, message):
    inbox = folder_of(alice, Folder.Role.INBOX)
    url = reverse("mail:folder", args=[inbox.pk])
    listing = alice_client.get(url).content.decode()
    assert f'href="{url}?open={message.pk}"' in listing
    response = alice_client.get(url, {"open": message.pk})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="reader-pane"' in page
    assert "msg-row open" in page
    assert reverse("mail:body", args=[message.pk]) in page
    message.refresh_from_db()
    assert message.seen is True
    # The images offer keeps the pane open.
    assert f"open={message.pk}&amp;images=1" in page


def test_it_refuses_to_open_a_message_of_another_folder_or_user(
    alice_client, charlie_client, charlie, alice, message
):
    sent = folder_of(alice, Folder.Role.SENT)
    assert alice_client.get(reverse("mail:folder", args=[sent.pk]), {"open": message.pk}).status_code == 404
    own_inbox = folder_of(charlie, Folder.Role.INBOX)
    response = charlie_client.get(reverse("mail:folder", args=[own_inbox.pk]), {"open": message.pk})
    assert response.status_code == 404


def test_it_opens_messages_on_their_own_page_when_the_pane_is_off(alice_client, alice, message, monkeypatch):
    from pecmail.mail.views import listing

    monkeypatch.setattr(listing, "reading_pane_for", lambda user: "off")
    page = alice_client.get(reverse("mail:index")).content.decode()
    assert f'href="{reverse("mail:read", args=[message.pk])}"' in page
