"""selectors.message_list builds Message instances without QuerySet.raw: they must behave as ORM rows."""

from __future__ import annotations

import datetime as dt

from django.db.models import signals

from pecmail.mail import selectors
from pecmail.mail.models import Folder, Message


def _store(mailbox, subject: str, when: dt.datetime) -> Message:
    inbox = Folder.objects.get(mailbox=mailbox, role=Folder.Role.INBOX)
    return Message.objects.create(
        mailbox=mailbox,
        folder=inbox,
        raw_sha256="0" * 64,
        subject=subject,
        date=when,
        to_addresses=["bob@pec.localhost"],
        cc_addresses=[],
        certified_data={"mittente": "a@b"},
        client_msgid="<c@x>",
    )


def test_it_returns_saved_instances_equal_to_the_orm_rows(alice):
    when = dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC)
    stored = _store(alice, "primo", when)
    inbox = stored.folder
    [row] = selectors.message_list(folder=inbox)
    assert row == stored
    assert row._state.adding is False
    assert row._state.db == "default"
    assert row.subject == "primo"
    assert row.date == when
    assert row.to_addresses == ["bob@pec.localhost"]
    assert row.folder_id == inbox.pk
    assert row.folder == inbox
    assert row.get_kind_display() == stored.get_kind_display()


def test_it_defers_the_list_deferred_columns_and_loads_them_on_access(alice):
    stored = _store(alice, "secondo", dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC))
    [row] = selectors.message_list(folder=stored.folder)
    deferred = {Message._meta.get_field(name).attname for name in selectors.LIST_DEFERRED}
    assert row.get_deferred_fields() == deferred
    assert row.certified_data == {"mittente": "a@b"}
    assert row.client_msgid == "<c@x>"


def test_it_saves_a_listed_row_as_an_update(alice):
    stored = _store(alice, "terzo", dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC))
    [row] = selectors.message_list(folder=stored.folder)
    row.seen = True
    row.save(update_fields=["seen"])
    assert Message.objects.filter(folder=stored.folder).count() == 1
    assert Message.objects.get(pk=stored.pk).seen is True
    assert Message.objects.get(pk=stored.pk).certified_data == {"mittente": "a@b"}


def test_it_goes_through_model_init_when_someone_listens_to_post_init(alice):
    stored = _store(alice, "quarto", dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC))
    seen: list[int] = []

    def listener(sender, instance, **kwargs):
        seen.append(instance.pk)

    signals.post_init.connect(listener, sender=Message)
    selectors._plans.clear()
    try:
        [row] = selectors.message_list(folder=stored.folder)
    finally:
        signals.post_init.disconnect(listener, sender=Message)
        selectors._plans.clear()
    assert seen == [stored.pk]
    assert row.get_deferred_fields() == {
        Message._meta.get_field(name).attname for name in selectors.LIST_DEFERRED
    }


def test_it_pages_with_ties_on_the_date(alice):
    when = dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC)
    created = [_store(alice, f"m{i}", when) for i in range(5)]
    inbox = created[0].folder
    first = selectors.message_list(folder=inbox, limit=2)
    rest = selectors.message_list(folder=inbox, before=(first[-1].date, first[-1].pk), limit=10)
    assert [m.pk for m in first + rest] == sorted((m.pk for m in created), reverse=True)
