"""Writes of the Contacts tab."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from pecmail.accounts.models import User

from . import formats
from .models import Contact, ContactAddress, ContactGroup, ContactPhone
from .pec import is_pec_address


def address_kind(*, address: str, declared: str) -> str:
    """PEC when the file says so or when the providers index knows the domain."""
    if declared == ContactAddress.Kind.PEC or is_pec_address(address):
        return ContactAddress.Kind.PEC
    return ContactAddress.Kind.EMAIL


@transaction.atomic
def contact_save(
    *,
    owner: User,
    contact: Contact | None = None,
    fields: dict[str, Any],
    addresses: list[dict[str, str]],
    phones: list[dict[str, str]],
    groups: list[ContactGroup] | None = None,
) -> Contact:
    """Create (``contact`` None) or replace a contact with these fields, addresses and phones."""
    if contact is None:
        contact = Contact(owner=owner)
    for name in formats.SCALAR_FIELDS:
        if name in fields:
            setattr(contact, name, fields[name] or "")
    if "favourite" in fields:
        contact.favourite = bool(fields["favourite"])
    contact.sort_name = contact.compute_sort_name()
    contact.save()
    contact.addresses.all().delete()
    seen: set[str] = set()
    for item in addresses:
        address = item["address"].strip().lower()
        if address and address not in seen:
            seen.add(address)
            ContactAddress.objects.create(contact=contact, address=address, kind=item["kind"])
    if not contact.sort_name and seen:
        contact.sort_name = sorted(seen)[0]
        contact.save(update_fields=["sort_name"])
    contact.phones.all().delete()
    ContactPhone.objects.bulk_create(
        ContactPhone(contact=contact, kind=p["kind"], number=p["number"])
        for p in phones
        if p["number"].strip()
    )
    if groups is not None:
        contact.groups.set([g for g in groups if g.owner_id == owner.pk])
    return contact


def contact_delete(*, contact: Contact) -> None:
    contact.delete()


def contact_favourite_toggle(*, contact: Contact) -> bool:
    contact.favourite = not contact.favourite
    contact.save(update_fields=["favourite", "updated_at"])
    return contact.favourite


def contact_add_from_address(*, owner: User, address: str, name: str = "") -> tuple[Contact, bool]:
    """The owner's contact holding ``address``, created from a message's sender if missing.

    Returns (contact, created).
    """
    address = address.strip().lower()
    existing = Contact.objects.filter(owner=owner, addresses__address=address).first()
    if existing:
        return existing, False
    first, _sep, last = name.strip().rpartition(" ")
    first, last = (first, last) if first else (name.strip(), "")
    contact = contact_save(
        owner=owner,
        fields={"first_name": first[:100], "last_name": last[:100]},
        addresses=[{"address": address, "kind": address_kind(address=address, declared="")}],
        phones=[],
    )
    return contact, True


def group_create(*, owner: User, name: str) -> ContactGroup:
    group, _created = ContactGroup.objects.get_or_create(owner=owner, name=name.strip()[:100])
    return group


def group_rename(*, group: ContactGroup, name: str) -> ContactGroup:
    group.name = name.strip()[:100]
    group.save(update_fields=["name"])
    return group


def group_delete(*, group: ContactGroup) -> None:
    """Delete the group; its contacts stay."""
    group.delete()


# --- import --------------------------------------------------------------------------


@dataclass
class ImportPlan:
    """What an import would do, shown to the user before anything is written."""

    to_create: list[formats.Record] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"to_create": self.to_create, "skipped": self.skipped, "warnings": self.warnings}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportPlan:
        return cls(
            to_create=list(data["to_create"]),
            skipped=[tuple(s) for s in data["skipped"]],  # type: ignore[misc]
            warnings=[tuple(w) for w in data["warnings"]],  # type: ignore[misc]
        )


def contacts_import_plan(*, owner: User, parsed: formats.Parsed) -> ImportPlan:
    """Decide, record by record, what to create and what to skip (duplicates by address)."""
    plan = ImportPlan(skipped=list(parsed.skipped))
    known = set(ContactAddress.objects.filter(contact__owner=owner).values_list("address", flat=True))
    in_file: set[str] = set()
    for record in parsed.records:
        label = formats.record_label(record)
        for warning in record.get("warnings", []):
            plan.warnings.append((label, warning))
        addresses = [a["address"] for a in record["addresses"]]
        clash = next((a for a in addresses if a in known), None)
        if clash:
            plan.skipped.append((label, _("%(address)s is already in your contacts") % {"address": clash}))
            continue
        repeated = next((a for a in addresses if a in in_file), None)
        if repeated:
            plan.skipped.append((label, _("%(address)s appears earlier in the file") % {"address": repeated}))
            continue
        for item in record["addresses"]:
            item["kind"] = address_kind(address=item["address"], declared=item["kind"])
        in_file.update(addresses)
        plan.to_create.append({k: v for k, v in record.items() if k != "warnings"})
    return plan


@transaction.atomic
def contacts_import(*, owner: User, plan: ImportPlan) -> list[Contact]:
    """Create every contact of a confirmed plan, all or nothing; addresses that appeared since are skipped."""
    known = set(ContactAddress.objects.filter(contact__owner=owner).values_list("address", flat=True))
    groups: dict[str, ContactGroup] = {g.name: g for g in ContactGroup.objects.filter(owner=owner)}
    created: list[Contact] = []
    for record in plan.to_create:
        if any(a["address"] in known for a in record["addresses"]):
            continue
        for name in record["groups"]:
            if name not in groups:
                groups[name] = ContactGroup.objects.create(owner=owner, name=name)
        contact = contact_save(
            owner=owner,
            fields=record,
            addresses=record["addresses"],
            phones=record["phones"],
            groups=[groups[name] for name in record["groups"]],
        )
        known.update(a["address"] for a in record["addresses"])
        created.append(contact)
    return created
