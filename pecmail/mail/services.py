"""Writes of the Messages tab."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from pecmail.accounts.models import User

from .models import Folder, Mailbox


@transaction.atomic
def mailbox_create(*, address: str, password: str | None, display_name: str = "") -> Mailbox:
    """Create a mailbox, its owner (who logs in with the address) and its system folders.

    Raises ValidationError if the address is invalid or already taken.
    """
    address = address.strip().lower()
    validate_email(address)
    if Mailbox.objects.filter(address=address).exists() or User.objects.filter(email=address).exists():
        raise ValidationError(f"{address} already exists.")
    first, _sep, last = display_name.partition(" ")
    owner = User.objects.create_user(email=address, password=password, first_name=first, last_name=last)
    mailbox = Mailbox.objects.create(address=address, owner=owner, display_name=display_name)
    folders_ensure(mailbox=mailbox)
    return mailbox


def folders_ensure(*, mailbox: Mailbox) -> None:
    """Create the system folders a mailbox lacks (Inbox, Sent, Drafts, Trash)."""
    for role in Folder.SYSTEM_ROLES:
        Folder.objects.get_or_create(mailbox=mailbox, role=role, defaults={"name": str(role.label)})
