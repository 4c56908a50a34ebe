"""Views of the Contacts tab: fetch with permission, one service call, a response."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pecmail.lib.http import AuthenticatedHttpRequest

from . import formats, selectors, services
from .forms import (
    AddFromAddressForm,
    AddressFormSet,
    ContactForm,
    ExportForm,
    GroupForm,
    ImportForm,
    PhoneFormSet,
    formset_rows,
    import_max_bytes,
)
from .models import Contact

IMPORT_SESSION_KEY = "contacts_import_plan"
LETTERS = [*"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "#"]


@require_GET
@login_required
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    query = request.GET.get("q", "")[:200]
    letter = request.GET.get("letter", "")[:1].upper()
    sort = request.GET.get("sort", "name")
    favourites = request.GET.get("favourites") == "1"
    group = None
    if request.GET.get("group", "").isdigit():
        group = selectors.group_get(user=user, group_id=int(request.GET["group"]))
    contacts = selectors.contact_list(
        user=user, query=query, letter=letter, sort=sort, group=group, favourites=favourites
    )
    page = Paginator(contacts, 50).get_page(request.GET.get("page"))
    certified = selectors.certified_addresses(addresses=[a for c in page for a in c.addresses.all()])
    present = selectors.contact_letters(user=user)
    return render(
        request,
        "contacts/index.html",
        {
            "tab": "contacts",
            "page": page,
            "certified": certified,
            "query": query,
            "letter": letter,
            "sort": sort if sort in selectors.SORTS else "name",
            "group": group,
            "favourites": favourites,
            "groups": selectors.group_list(user=user),
            "letters": [(x, x in present) for x in LETTERS],
        },
    )


def _contact_form_page(request: AuthenticatedHttpRequest, contact: Contact | None) -> HttpResponse:
    user = request.user
    if request.method == "POST":
        form = ContactForm(request.POST, instance=contact, owner=user)
        addresses = AddressFormSet(request.POST, prefix="addr")
        phones = PhoneFormSet(request.POST, prefix="tel")
        if form.is_valid() and addresses.is_valid() and phones.is_valid():
            address_rows = formset_rows(addresses, "address")
            clash = selectors.addresses_taken(
                user=user, addresses=[a["address"].lower() for a in address_rows], exclude=contact
            )
            if clash:
                address, other = next(iter(clash.items()))
                form.add_error(
                    None,
                    _("%(address)s already belongs to %(name)s.")
                    % {"address": address, "name": other.display_name},
                )
            elif not (
                form.cleaned_data["first_name"]
                or form.cleaned_data["last_name"]
                or form.cleaned_data["company"]
                or address_rows
            ):
                form.add_error(None, _("Give at least a name, a company or an address."))
            else:
                saved = services.contact_save(
                    owner=user,
                    contact=contact,
                    fields=form.cleaned_data,
                    addresses=address_rows,
                    phones=formset_rows(phones, "number"),
                    groups=list(form.cleaned_data["groups"]),
                )
                messages.success(request, _("Contact saved."))
                return redirect("contacts:detail", saved.pk)
        status = 422
    else:
        form = ContactForm(instance=contact, owner=user)
        initial_addresses = (
            [{"kind": a.kind, "address": a.address} for a in contact.addresses.all()] if contact else []
        )
        initial_phones = (
            [{"kind": p.kind, "number": p.number} for p in contact.phones.all()] if contact else []
        )
        addresses = AddressFormSet(prefix="addr", initial=initial_addresses)
        phones = PhoneFormSet(prefix="tel", initial=initial_phones)
        status = 200
    return render(
        request,
        "contacts/form.html",
        {"tab": "contacts", "form": form, "addresses": addresses, "phones": phones, "contact": contact},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@login_required
def contact_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _contact_form_page(request, None)


@require_http_methods(["GET", "POST"])
@login_required
def contact_edit(request: AuthenticatedHttpRequest, contact_id: int) -> HttpResponse:
    contact = selectors.contact_get(user=request.user, contact_id=contact_id)
    return _contact_form_page(request, contact)


@require_GET
@login_required
def contact_detail(request: AuthenticatedHttpRequest, contact_id: int) -> HttpResponse:
    contact = selectors.contact_get(user=request.user, contact_id=contact_id)
    certified = selectors.certified_addresses(addresses=list(contact.addresses.all()))
    return render(
        request, "contacts/detail.html", {"tab": "contacts", "contact": contact, "certified": certified}
    )


@require_POST
@login_required
def contact_delete(request: AuthenticatedHttpRequest, contact_id: int) -> HttpResponse:
    contact = selectors.contact_get(user=request.user, contact_id=contact_id)
    services.contact_delete(contact=contact)
    messages.success(request, _("Contact deleted."))
    return redirect("contacts:index")


@require_POST
@login_required
def contact_favourite(request: AuthenticatedHttpRequest, contact_id: int) -> HttpResponse:
    contact = selectors.contact_get(user=request.user, contact_id=contact_id)
    services.contact_favourite_toggle(contact=contact)
    return redirect(_safe_next(request, reverse("contacts:detail", args=[contact.pk])))


def _safe_next(request: AuthenticatedHttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@require_GET
@login_required
def groups(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(
        request,
        "contacts/groups.html",
        {"tab": "contacts", "groups": selectors.group_list(user=request.user), "form": GroupForm()},
    )


@require_POST
@login_required
def group_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = GroupForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "contacts/groups.html",
            {"tab": "contacts", "groups": selectors.group_list(user=request.user), "form": form},
            status=422,
        )
    services.group_create(owner=request.user, name=form.cleaned_data["name"])
    return redirect("contacts:groups")


@require_POST
@login_required
def group_rename(request: AuthenticatedHttpRequest, group_id: int) -> HttpResponse:
    group = selectors.group_get(user=request.user, group_id=group_id)
    form = GroupForm(request.POST)
    if form.is_valid():
        if (
            selectors.group_list(user=request.user)
            .filter(name=form.cleaned_data["name"].strip())
            .exclude(pk=group.pk)
        ):
            messages.error(request, _("A group with this name already exists."))
        else:
            services.group_rename(group=group, name=form.cleaned_data["name"])
    return redirect("contacts:groups")


@require_POST
@login_required
def group_delete(request: AuthenticatedHttpRequest, group_id: int) -> HttpResponse:
    group = selectors.group_get(user=request.user, group_id=group_id)
    services.group_delete(group=group)
    messages.success(request, _("Group deleted; its contacts are kept."))
    return redirect("contacts:groups")


@require_http_methods(["GET", "POST"])
@login_required
def import_upload(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            plan = services.contacts_import_plan(owner=request.user, parsed=form.cleaned_data["file"])
            request.session[IMPORT_SESSION_KEY] = plan.as_json()
            return redirect("contacts:import_preview")
        status = 422
    else:
        form = ImportForm()
        status = 200
    return render(
        request,
        "contacts/import.html",
        {
            "tab": "contacts",
            "form": form,
            "limit": import_max_bytes(),
            "export_form": ExportForm(owner=request.user),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@login_required
def import_preview(request: AuthenticatedHttpRequest) -> HttpResponse:
    data = request.session.get(IMPORT_SESSION_KEY)
    if data is None:
        messages.info(request, _("There is no import waiting for confirmation."))
        return redirect("contacts:import")
    plan = services.ImportPlan.from_json(data)
    if request.method == "POST":
        del request.session[IMPORT_SESSION_KEY]
        if request.POST.get("action") != "confirm":
            messages.info(request, _("Import cancelled: nothing was imported."))
            return redirect("contacts:index")
        created = services.contacts_import(owner=request.user, plan=plan)
        messages.success(
            request,
            ngettext("%(count)s contact imported.", "%(count)s contacts imported.", len(created))
            % {"count": len(created)},
        )
        return redirect("contacts:index")
    return render(
        request,
        "contacts/import_preview.html",
        {"tab": "contacts", "plan": plan, "labels": [formats.record_label(r) for r in plan.to_create]},
    )


@require_GET
@login_required
def export(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ExportForm(request.GET, owner=request.user)
    if not form.is_valid():
        return render(
            request,
            "contacts/import.html",
            {"tab": "contacts", "form": ImportForm(), "limit": import_max_bytes(), "export_form": form},
            status=422,
        )
    records = selectors.contact_records(user=request.user, group=form.cleaned_data["group"])
    choice = form.cleaned_data["format"]
    if choice in {"vcard3", "vcard4"}:
        body = formats.vcard_serialize(records, version="3.0" if choice == "vcard3" else "4.0")
        response = HttpResponse(body, content_type="text/vcard; charset=utf-8")
        filename = "contacts.vcf"
    else:
        # A BOM lets Excel open the accents correctly; the importers skip it.
        body = "\ufeff" + formats.csv_serialize(records, flavour=choice)
        response = HttpResponse(body, content_type="text/csv; charset=utf-8")
        filename = f"contacts-{choice}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@login_required
def contact_vcard(request: AuthenticatedHttpRequest, contact_id: int) -> HttpResponse:
    """One contact as a vCard 4.0 file, to hand to a phone or another program."""
    contact = selectors.contact_get(user=request.user, contact_id=contact_id)
    body = formats.vcard_serialize([selectors.contact_to_record(contact)], version="4.0")
    response = HttpResponse(body, content_type="text/vcard; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="contact-{contact.pk}.vcf"'
    return response


@require_GET
@login_required
def autocomplete(request: AuthenticatedHttpRequest) -> JsonResponse:
    results = selectors.autocomplete(user=request.user, query=request.GET.get("q", "")[:100])
    return JsonResponse({"results": results})


@require_POST
@login_required
def add_from_address(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = AddFromAddressForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("This address cannot be added to your contacts."))
        return redirect(_safe_next(request, reverse("contacts:index")))
    contact, created = services.contact_add_from_address(
        owner=request.user, address=form.cleaned_data["address"], name=form.cleaned_data["name"]
    )
    if created:
        messages.success(request, _("Added to your contacts: complete the details if you wish."))
        return redirect("contacts:edit", contact.pk)
    messages.info(request, _("This address is already in your contacts."))
    return redirect("contacts:detail", contact.pk)
