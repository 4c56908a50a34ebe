"""Reads of the Contacts tab, always scoped to the user."""

from __future__ import annotations

from email.utils import getaddresses
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404

from pecmail.accounts.models import User

from . import formats
from .models import Contact, ContactAddress, ContactGroup
from .pec import pec_domains_among

SORTS = {
    "name": ["sort_name", "pk"],
    "company": ["company", "sort_name", "pk"],
    "recent": ["-updated_at", "pk"],
}


def contact_get(*, user: User, contact_id: int) -> Contact:
    try:
        return Contact.objects.prefetch_related("addresses", "phones", "groups").get(
            pk=contact_id, owner=user
        )
    except Contact.DoesNotExist:
        raise Http404 from None


def group_get(*, user: User, group_id: int) -> ContactGroup:
    try:
        return ContactGroup.objects.get(pk=group_id, owner=user)
    except ContactGroup.DoesNotExist:
        raise Http404 from None


def group_list(*, user: User) -> QuerySet[ContactGroup]:
    return ContactGroup.objects.filter(owner=user).order_by("name")


def contact_list(
    *,
    user: User,
    query: str = "",
    letter: str = "",
    sort: str = "name",
    group: ContactGroup | None = None,
    favourites: bool = False,
) -> QuerySet[Contact]:
    contacts = Contact.objects.filter(owner=user)
    for word in query.split():
        contacts = contacts.filter(
            Q(first_name__icontains=word)
            | Q(last_name__icontains=word)
            | Q(company__icontains=word)
            | Q(addresses__address__icontains=word)
            | Q(phones__number__icontains=word)
            | Q(vat_number__icontains=word)
            | Q(tax_code__icontains=word)
        )
    if letter == "#":
        contacts = contacts.exclude(sort_name__regex=r"^[a-z]")
    elif len(letter) == 1 and letter.isalpha():
        contacts = contacts.filter(sort_name__startswith=letter.lower())
    if group is not None:
        contacts = contacts.filter(groups=group)
    if favourites:
        contacts = contacts.filter(favourite=True)
    return (
        contacts.distinct()
        .order_by(*SORTS.get(sort, SORTS["name"]))
        .prefetch_related(Prefetch("addresses", queryset=ContactAddress.objects.order_by("pk")), "phones")
    )


def contact_letters(*, user: User) -> set[str]:
    """Initials that have at least one contact, for the letter index."""
    letters = set()
    for key in Contact.objects.filter(owner=user).values_list("sort_name", flat=True):
        initial = key[:1].upper()
        letters.add(initial if initial.isascii() and initial.isalpha() else "#")
    return letters


def certified_addresses(*, addresses: list[ContactAddress]) -> set[str]:
    """Which of these PEC addresses are at a domain in the providers index."""
    domains = pec_domains_among({a.domain for a in addresses if a.kind == ContactAddress.Kind.PEC})
    return {a.address for a in addresses if a.kind == ContactAddress.Kind.PEC and a.domain in domains}


def contact_to_record(contact: Contact) -> formats.Record:
    record = formats.empty_record()
    del record["warnings"]
    for name in formats.SCALAR_FIELDS:
        record[name] = getattr(contact, name)
    record["favourite"] = contact.favourite
    record["groups"] = sorted(g.name for g in contact.groups.all())
    record["addresses"] = [{"kind": a.kind, "address": a.address} for a in contact.addresses.all()]
    record["phones"] = [{"kind": p.kind, "number": p.number} for p in contact.phones.all()]
    return record


def contact_records(*, user: User, group: ContactGroup | None = None) -> list[formats.Record]:
    contacts = Contact.objects.filter(owner=user).order_by("sort_name", "pk")
    if group is not None:
        contacts = contacts.filter(groups=group)
    contacts = contacts.prefetch_related(
        Prefetch("addresses", queryset=ContactAddress.objects.order_by("pk")), "phones", "groups"
    )
    return [contact_to_record(c) for c in contacts]


def recent_correspondents(*, user: User, limit: int = 200) -> list[str]:
    """Addresses the user recently wrote to or heard from, newest first.

    Reads pecmail.mail's Message when it has ``mailbox``, ``from_address`` and
    ``to_addresses``; an empty list until it does.
    """
    try:
        from pecmail.mail.models import Message  # type: ignore[attr-defined]  # noqa: PLC0415
    except ImportError:
        return []
    names = {f.name for f in Message._meta.get_fields()}
    if not {"mailbox", "from_address", "to_addresses"} <= names:
        return []
    own = set(user.mailboxes.values_list("address", flat=True)) | {user.email.lower()}
    seen: dict[str, None] = {}
    order = ["-date", "-pk"] if "date" in names else ["-pk"]
    rows = (
        Message.objects.filter(mailbox__owner=user)
        .order_by(*order)
        .values_list("from_address", "to_addresses")[: limit * 2]
    )
    for sender, recipients in rows:
        for address in [sender, *_addresses(recipients)]:
            address = (address or "").strip().lower()
            if address and "@" in address and address not in own:
                seen.setdefault(address, None)
        if len(seen) >= limit:
            break
    return list(seen)[:limit]


def _addresses(value: Any) -> list[str]:
    """Recipients stored either as a list or as a header-style string."""
    if not value:
        return []
    items = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    return [address for _name, address in getaddresses(items)]


def _quoted(name: str) -> str:
    """A display name safe inside an RFC 5322 quoted string."""
    return name.replace("\\", "\\\\").replace('"', '\\"')


def autocomplete(*, user: User, query: str, limit: int = 10) -> list[dict[str, Any]]:
    """Suggestions for a To/Cc field: contacts' addresses, groups (expanded), recent correspondents."""
    query = query.strip()
    if not query:
        return []
    results: list[dict[str, Any]] = []
    addresses = list(
        ContactAddress.objects.filter(contact__owner=user)
        .filter(
            Q(address__icontains=query)
            | Q(contact__first_name__icontains=query)
            | Q(contact__last_name__icontains=query)
            | Q(contact__company__icontains=query)
        )
        .select_related("contact")
        .order_by("-contact__favourite", "contact__sort_name", "pk")[:limit]
    )
    certified = certified_addresses(addresses=addresses)
    taken: set[str] = set()
    for item in addresses:
        taken.add(item.address)
        name = item.contact.full_name or item.contact.company
        results.append(
            {
                "kind": "contact",
                "name": name,
                "address": item.address,
                "pec": item.kind == ContactAddress.Kind.PEC,
                "certified": item.address in certified,
                "value": f'"{_quoted(name)}" <{item.address}>' if name else item.address,
            }
        )
    for group in group_list(user=user).filter(name__icontains=query)[:limit]:
        members = list(
            ContactAddress.objects.filter(contact__groups=group, contact__owner=user)
            .order_by("contact__sort_name", "pk")
            .values_list("address", flat=True)
        )
        if members:
            results.append(
                {"kind": "group", "name": group.name, "addresses": members, "value": ", ".join(members)}
            )
    needle = query.lower()
    for address in recent_correspondents(user=user):
        if needle in address and address not in taken:
            results.append({"kind": "recent", "name": "", "address": address, "value": address})
            if sum(r["kind"] == "recent" for r in results) >= limit:
                break
    return results


def addresses_taken(
    *, user: User, addresses: list[str], exclude: Contact | None = None
) -> dict[str, Contact]:
    """Which of ``addresses`` already belong to another of the user's contacts."""
    rows = ContactAddress.objects.filter(contact__owner=user, address__in=addresses).select_related("contact")
    if exclude is not None:
        rows = rows.exclude(contact=exclude)
    return {row.address: row.contact for row in rows}
