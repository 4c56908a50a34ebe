"""Compose: the form, drafts, autosave, uploads, validation, send, reply and forward."""

from __future__ import annotations

import re

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from pecmail.mail import parsing, services, storage
from pecmail.mail.models import Delivery, Draft, Folder, Message
from tests.conftest import make_mailbox
from tests.mail.ui_factories import store

DOMAIN = django_settings.PEC_DOMAIN
BOB = f"bob@{DOMAIN}"
CAROL = f"carol@{DOMAIN}"
PDF = b"%PDF-1.4\n% fattura\n"


def form_data(**overrides) -> dict:
    data = {
        "to": BOB,
        "cc": "",
        "subject": "Fattura 42",
        "body_format": "html",
        "body_html": "<p>In allegato la <strong>fattura</strong>.</p>",
        "body_text": "In allegato la fattura.",
        "receipt_type": "completa",
        "action": "save",
    }
    data.update(overrides)
    return data


def labels(html: str) -> set[str]:
    return {
        re.sub(r"<[^>]+>|📎", "", m).strip() for m in re.findall(r"<label[^>]*>(.*?)</label>", html, re.S)
    }


def test_it_shows_every_field_with_its_visible_label_and_no_bcc(alice_client, alice):
    response = alice_client.get(reverse("mail:compose"))
    assert response.status_code == 200
    html = response.content.decode()
    assert {"To", "Cc", "Subject", "Priority", "Confidential", "Attach"} <= labels(html)
    assert ">Send</button>" in html and ">Save draft</button>" in html
    assert "bcc" not in html.lower()
    assert 'value="Alice Rossi &lt;alice@' in html
    assert "readonly" in re.search(r'<input id="id_from"[^>]*>', html).group(0)
    assert 'type="file" id="id_attach" name="attach" multiple' in html


def test_it_prefills_the_recipient_from_the_query(alice_client):
    html = alice_client.get(reverse("mail:compose"), {"to": BOB}).content.decode()
    assert f'value="{BOB}"' in html


def test_it_saves_a_draft_and_keeps_editing_it(alice_client, alice):
    response = alice_client.post(reverse("mail:compose"), form_data(priority_high="on"))
    draft = Draft.objects.get(mailbox=alice)
    assert response["Location"] == reverse("mail:draft", args=[draft.pk])
    assert draft.to == BOB and draft.subject == "Fattura 42" and draft.priority_high is True
    assert "<strong>fattura</strong>" in draft.body_html
    page = alice_client.get(reverse("mail:draft", args=[draft.pk])).content.decode()
    assert 'value="Fattura 42"' in page
    assert 'id="id_priority_high" name="priority_high" checked' in page


def test_it_autosaves_through_fetch_with_a_json_answer(alice_client, alice):
    response = alice_client.post(
        reverse("mail:compose"), form_data(subject="Auto"), HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200
    data = response.json()
    draft = Draft.objects.get(pk=data["draft"])
    assert draft.subject == "Auto"
    assert data["url"] == reverse("mail:draft", args=[draft.pk])
    again = alice_client.post(data["url"], form_data(subject="Auto 2"), HTTP_ACCEPT="application/json")
    assert again.json()["draft"] == draft.pk
    assert Draft.objects.filter(mailbox=alice).count() == 1


def test_it_strips_hostile_html_from_the_editor_before_keeping_it(alice_client, alice):
    alice_client.post(
        reverse("mail:compose"), form_data(body_html='<p onclick="x()">hi<script>alert(1)</script></p>')
    )
    draft = Draft.objects.get(mailbox=alice)
    assert draft.body_html == "<p>hi</p>"


def test_it_uploads_attachments_to_a_draft_and_removes_them(alice_client, alice):
    draft = services.draft_save(mailbox=alice, subject="files")
    url = reverse("mail:draft_attachments", args=[draft.pk])
    files = [
        SimpleUploadedFile("a.pdf", PDF, "application/pdf"),
        SimpleUploadedFile("b.txt", b"hello", "text/plain"),
    ]
    response = alice_client.post(url, {"attach": files}, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    names = [a["filename"] for a in response.json()["attachments"]]
    assert names == ["a.pdf", "b.txt"]
    remove = response.json()["attachments"][0]["remove_url"]
    left = alice_client.post(remove, HTTP_ACCEPT="application/json").json()["attachments"]
    assert [a["filename"] for a in left] == ["b.txt"]
    assert alice_client.post(url, {}, HTTP_ACCEPT="application/json").status_code == 422


def test_it_refuses_an_invalid_send_with_422_and_keeps_everything_typed(alice_client, alice):
    data = form_data(
        action="send", to="bob@, not an address", cc="carol@x.it", subject="Keep me", priority_high="on"
    )
    response = alice_client.post(reverse("mail:compose"), data)
    assert response.status_code == 422
    html = response.content.decode()
    assert "Not a valid address" in html
    assert 'value="bob@, not an address"' in html
    assert 'value="Keep me"' in html
    assert 'value="carol@x.it"' in html
    assert 'name="priority_high" checked' in html
    # Nothing typed is lost: the draft holds it too, and nothing was sent.
    assert Draft.objects.get(mailbox=alice).subject == "Keep me"
    assert Message.objects.filter(mailbox=alice, kind=Message.Kind.SUBMITTED).exists() is False


def test_it_requires_a_recipient_to_send(alice_client, alice):
    response = alice_client.post(reverse("mail:compose"), form_data(action="send", to=""))
    assert response.status_code == 422
    assert "Add at least one recipient." in response.content.decode()


def test_it_refuses_a_message_over_the_size_limit(alice_client, alice, settings):
    settings.PEC_MAX_TOTAL_SIZE = 1000
    draft = services.draft_save(mailbox=alice, subject="big")
    alice_client.post(
        reverse("mail:draft_attachments", args=[draft.pk]),
        {"attach": SimpleUploadedFile("big.bin", b"x" * 400, "application/octet-stream")},
    )
    response = alice_client.post(reverse("mail:draft", args=[draft.pk]), form_data(action="send", cc=CAROL))
    assert response.status_code == 422
    assert "too large" in response.content.decode()


def test_it_ignores_a_bcc_smuggled_into_the_form(
    alice_client, alice, provider, django_capture_on_commit_callbacks
):
    make_mailbox("bob", "Bob Bianchi")
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("mail:compose"), form_data(action="send", bcc="eve@example.org"))
    sent = Message.objects.get(mailbox=alice, kind=Message.Kind.SUBMITTED)
    assert sent.bcc_addresses == []
    assert b"eve@example.org" not in storage.raw_get(sent.raw_sha256)


def test_it_sends_through_the_pipeline_and_shows_each_recipient_state(
    alice_client, alice, provider, django_capture_on_commit_callbacks
):
    make_mailbox("bob", "Bob Bianchi")
    make_mailbox("carol", "Carol Verdi")
    draft = services.draft_save(mailbox=alice, subject="x")
    alice_client.post(
        reverse("mail:draft_attachments", args=[draft.pk]),
        {"attach": SimpleUploadedFile("fattura.pdf", PDF, "application/pdf")},
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            reverse("mail:draft", args=[draft.pk]), form_data(action="send", cc=CAROL, priority_high="on")
        )
    sent = Message.objects.get(mailbox=alice, kind=Message.Kind.SUBMITTED)
    assert response["Location"] == reverse("mail:read", args=[sent.pk])
    assert Draft.objects.filter(pk=draft.pk).exists() is False
    assert sent.priority_high is True
    page = alice_client.get(response["Location"]).content.decode()
    deliveries = {d.recipient: d for d in Delivery.objects.filter(message=sent)}
    assert deliveries[BOB].state == Delivery.State.DELIVERED
    assert deliveries[CAROL].state == Delivery.State.DELIVERED
    assert page.count("state-delivered") == 2
    assert "Acceptance receipt" in page
    assert reverse("mail:read", args=[deliveries[BOB].receipt_id]) in page
    assert "(Complete)" in page and "(Synthetic)" in page
    # Every step one click away: acceptance then delivery, for each recipient.
    acceptance = Message.objects.get(related=sent, kind=Message.Kind.ACCEPTANCE)
    rows = re.findall(r'<tr class="delivery[^"]*" data-recipient="([^"]+)">(.*?)</tr>', page, re.S)
    assert [r for r, _ in rows] == [BOB, CAROL]
    for recipient, row in rows:
        steps = re.findall(r'<li><a href="([^"]+)">([^<]+)</a>', row)
        assert steps == [
            (reverse("mail:read", args=[acceptance.pk]), "Acceptance receipt"),
            (reverse("mail:read", args=[deliveries[recipient].receipt_id]), "Delivery receipt"),
        ]


def test_it_marks_an_unknown_local_recipient_not_delivered_with_the_notice(
    alice_client, alice, provider, django_capture_on_commit_callbacks
):
    ghost = f"ghost@{DOMAIN}"
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("mail:compose"), form_data(action="send", to=ghost))
    sent = Message.objects.get(mailbox=alice, kind=Message.Kind.SUBMITTED)
    delivery = Delivery.objects.get(message=sent, recipient=ghost)
    assert delivery.state == Delivery.State.ERROR
    page = alice_client.get(reverse("mail:read", args=[sent.pk])).content.decode()
    assert "state-error" in page
    assert reverse("mail:read", args=[delivery.receipt_id]) in page
    notice = alice_client.get(reverse("mail:read", args=[delivery.receipt_id])).content.decode()
    assert "no-dest" in notice


def test_it_prefills_a_reply_and_a_reply_all(alice_client, alice):
    original = store(
        alice,
        subject="Domanda",
        sender="Bob <bob@example.org>",
        to=f"alice@{DOMAIN}, dan@example.org",
        text="Come stai?",
        headers={"Cc": "eve@example.org"},
    )
    reply = alice_client.get(reverse("mail:reply", args=[original.pk])).content.decode()
    assert 'value="bob@example.org"' in reply
    assert 'value="Re: Domanda"' in reply
    assert "&gt; Come stai?" in reply
    assert f'name="in_reply_to" value="{original.pk}"' in reply
    everyone = alice_client.get(reverse("mail:reply_all", args=[original.pk])).content.decode()
    assert 'value="bob@example.org, dan@example.org"' in everyone
    assert 'value="eve@example.org"' in everyone
    assert f"alice@{DOMAIN}," not in everyone


def test_it_forwards_with_the_original_attached(
    alice_client, alice, provider, django_capture_on_commit_callbacks
):
    make_mailbox("bob", "Bob Bianchi")
    original = store(alice, subject="Contratto", text="testo")
    page = alice_client.get(reverse("mail:forward", args=[original.pk])).content.decode()
    assert 'value="Fwd: Contratto"' in page
    assert "Contratto.eml" in page
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(
            reverse("mail:compose"),
            form_data(action="send", forward_of=original.pk, subject="Fwd: Contratto"),
        )
    sent = Message.objects.get(mailbox=alice, kind=Message.Kind.SUBMITTED)
    sent_raw = storage.raw_get(sent.raw_sha256)
    attached = next(a for a in parsing.message_parts(sent_raw).attachments if a.filename == "Contratto.eml")
    assert parsing.attachment_bytes(sent_raw, attached.index)[2] == storage.raw_get(original.raw_sha256)


def test_it_will_not_reply_to_or_forward_another_users_message(charlie_client, alice):
    theirs = store(alice, subject="private")
    data = form_data(action="save", forward_of=theirs.pk)
    assert charlie_client.post(reverse("mail:compose"), data).status_code == 404
    assert charlie_client.post(reverse("mail:compose"), form_data(in_reply_to=theirs.pk)).status_code == 404
    assert Draft.objects.exists() is False


def test_it_discards_a_draft(alice_client, alice):
    draft = services.draft_save(mailbox=alice, subject="bye")
    response = alice_client.post(reverse("mail:draft_discard", args=[draft.pk]))
    assert response["Location"] == reverse(
        "mail:folder", args=[Folder.objects.get(mailbox=alice, role="drafts").pk]
    )
    assert Draft.objects.filter(pk=draft.pk).exists() is False


def test_it_lists_drafts_in_the_drafts_folder(alice_client, alice):
    services.draft_save(mailbox=alice, subject="Half written", to=BOB)
    drafts = Folder.objects.get(mailbox=alice, role=Folder.Role.DRAFTS)
    page = alice_client.get(reverse("mail:folder", args=[drafts.pk])).content.decode()
    assert "Half written" in page


@pytest.mark.parametrize("present", [True, False])
def test_it_degrades_to_a_textarea_without_the_vendored_editor(alice_client, monkeypatch, present):
    from pecmail.mail.views import compose

    monkeypatch.setattr(compose, "quill_available", lambda: present)
    html = alice_client.get(reverse("mail:compose")).content.decode()
    assert '<textarea id="id_body_text" name="body_text"' in html
    assert ("vendor/quill/quill.js" in html) is present
    if not present:
        assert 'id="format-text" value="text" checked' in html


def test_it_speaks_italian(alice_client, settings):
    alice_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "it"
    html = alice_client.get(reverse("mail:compose")).content.decode()
    assert {"A", "Cc", "Oggetto", "Priorità", "Confidenziale", "Allega"} <= labels(html)
    assert ">Invia</button>" in html and ">Salva bozza</button>" in html


def test_it_shows_each_recipients_state_in_the_sent_list(
    alice_client, alice, provider, django_capture_on_commit_callbacks
):
    make_mailbox("bob", "Bob Bianchi")
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("mail:compose"), form_data(action="send", cc=f"ghost@{DOMAIN}"))
    sent_folder = Folder.objects.get(mailbox=alice, role=Folder.Role.SENT)
    page = alice_client.get(reverse("mail:folder", args=[sent_folder.pk])).content.decode()
    assert f'title="{BOB}: Delivered"' in page
    assert f'title="ghost@{DOMAIN}: Not delivered"' in page


def options_or_skip():
    """The Options tab's preferences, when that app provides them."""
    options = pytest.importorskip("pecmail.options.selectors")
    if not hasattr(options, "default_receipt_type_for") or not hasattr(options, "signature_for"):
        pytest.skip("the Options tab has no preferences yet")
    from pecmail.options.models import Preferences

    return Preferences


def test_it_starts_from_the_options_receipt_type_and_signature(alice_client, alice):
    preferences = options_or_skip()
    preferences.objects.create(user=alice.owner, receipt_type="breve", signature="Alice Rossi\n<Ufficio>")
    html = alice_client.get(reverse("mail:compose")).content.decode()
    assert 'id="receipt-breve" value="breve" checked' in html
    assert "-- \nAlice Rossi\n&lt;Ufficio&gt;</textarea>" in html
    assert "&lt;p&gt;-- &lt;br&gt;Alice Rossi&lt;br&gt;&amp;lt;Ufficio&amp;gt;&lt;/p&gt;" in html


def test_it_pages_the_list_by_the_options_page_size(alice_client, alice):
    preferences = options_or_skip()
    preferences.objects.create(user=alice.owner, page_size=10)
    for i in range(12):
        store(alice, subject=f"m{i}", text=str(i))
    response = alice_client.get(reverse("mail:index"))
    assert len(response.context["rows"]) == 10
    assert response.context["older_url"] != ""


def test_it_vendors_only_the_listed_quill_files(tmp_path):
    from pecmail.lib import vendor

    dist = tmp_path / "node_modules" / "quill" / "dist"
    dist.mkdir(parents=True)
    (dist / "quill.js").write_text("/* quill */")
    (dist / "quill.snow.css").write_text("/* snow */")
    (dist / "quill.core.js").write_text("/* not needed */")
    (tmp_path / "node_modules" / "quill" / "LICENSE").write_text("BSD")
    written = vendor.vendor(node_modules=tmp_path / "node_modules", destination=tmp_path / "vendor")
    assert sorted(p.name for p in written) == ["LICENSE", "quill.js", "quill.snow.css"]
    assert (tmp_path / "vendor" / "quill" / "quill.core.js").exists() is False
    (dist / "quill.js").unlink()
    with pytest.raises(FileNotFoundError):
        vendor.vendor(node_modules=tmp_path / "node_modules", destination=tmp_path / "vendor2")


def test_the_delivery_section_is_served_alone_while_receipts_are_awaited(
    alice_client, alice, bob, charlie, provider, django_capture_on_commit_callbacks
):
    """The read page polls mail:deliveries until nothing more is awaited; only the owner may."""
    with django_capture_on_commit_callbacks(execute=False) as pending_work:
        sent = services.message_submit(
            mailbox=alice,
            to=[bob.address],
            cc=[],
            subject="In attesa",
            body_text="Testo.",
            body_html=None,
            attachments=[],
        )
    page = alice_client.get(reverse("mail:read", args=[sent.pk])).content.decode()
    url = reverse("mail:deliveries", args=[sent.pk])
    assert f'data-poll-url="{url}"' in page
    response = alice_client.get(url)
    assert response.status_code == 200 and response["X-Poll"] == "continue"
    waiting = response["X-Delivery-State"]
    assert "Waiting for acceptance" in response.content.decode()
    assert "serves it alone" not in response.content.decode()  # the template's comment stays one
    stranger = Client()
    stranger.force_login(charlie.owner)
    assert stranger.get(url).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        for callback in pending_work:  # the worker's turn: acceptance, then local delivery
            callback()
    response = alice_client.get(url)
    assert "X-Poll" not in response  # settled: the page stops asking
    assert response["X-Delivery-State"] != waiting
    body = response.content.decode()
    assert "Delivered" in body and "Acceptance receipt" in body
    assert "data-poll-url" not in alice_client.get(reverse("mail:read", args=[sent.pk])).content.decode()
    received = Message.objects.get(mailbox=bob, kind=Message.Kind.CERTIFIED)
    assert alice_client.get(reverse("mail:deliveries", args=[received.pk])).status_code == 404
