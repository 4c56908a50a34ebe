import pytest
from django.core.management import CommandError, call_command

from pecmail.mail.models import Folder, Mailbox

pytestmark = pytest.mark.django_db


def test_it_creates_a_mailbox_with_its_login_and_folders():
    call_command(
        "mailbox", "create", "dora@pec.localhost", "--password", "a-long-password-1", "--name", "Dora Blu"
    )
    mailbox = Mailbox.objects.get(address="dora@pec.localhost")
    assert mailbox.owner.email == "dora@pec.localhost"
    assert mailbox.owner.check_password("a-long-password-1") is True
    assert mailbox.display_name == "Dora Blu"
    roles = set(Folder.objects.filter(mailbox=mailbox).values_list("role", flat=True))
    assert roles == {"inbox", "sent", "drafts", "trash"}


def test_it_refuses_a_duplicate_address():
    call_command("mailbox", "create", "dora@pec.localhost", "--password", "a-long-password-1")
    with pytest.raises(CommandError, match="already exists"):
        call_command("mailbox", "create", "DORA@pec.localhost", "--password", "a-long-password-1")


def test_it_refuses_an_invalid_address():
    with pytest.raises(CommandError):
        call_command("mailbox", "create", "not-an-address", "--password", "a-long-password-1")
