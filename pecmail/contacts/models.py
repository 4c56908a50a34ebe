"""The Contacts tab's store: contacts, their addresses and phones, and groups."""

from __future__ import annotations

import unicodedata

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class ContactGroup(models.Model):
    """A named set of contacts; in compose it expands into its members' addresses."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contact_groups"
    )
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="contactgroup_unique_name")]
        verbose_name = _("group")
        verbose_name_plural = _("groups")

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contacts")
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    company = models.CharField(_("company"), max_length=200, blank=True)
    job_title = models.CharField(_("job title"), max_length=200, blank=True)
    street = models.CharField(_("street"), max_length=200, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    region = models.CharField(_("province / region"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=100, blank=True)
    vat_number = models.CharField(_("VAT number"), max_length=30, blank=True)
    tax_code = models.CharField(_("tax code"), max_length=30, blank=True)
    website = models.URLField(_("website"), max_length=500, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    favourite = models.BooleanField(_("favourite"), default=False)
    groups = models.ManyToManyField(
        ContactGroup, blank=True, related_name="contacts", verbose_name=_("groups")
    )
    # Lower-cased sort key kept in the row so the list can sort and build its letter index in SQL.
    sort_name = models.CharField(max_length=300, blank=True, db_index=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sort_name", "pk"]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")

    def __str__(self) -> str:
        return self.display_name

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @property
    def display_name(self) -> str:
        if self.full_name or self.company:
            return self.full_name or self.company
        # all() so that a prefetched list is used instead of one query per row.
        first = next(iter(self.addresses.all()), None) if self.pk else None
        return first.address if first else str(_("(no name)"))

    def compute_sort_name(self) -> str:
        """Surname first, as an Italian address book sorts; company or address when there is no name."""
        key = " ".join(part for part in (self.last_name, self.first_name) if part) or self.company
        # Accents folded away so that "Èrcole" files under E in the letter index.
        decomposed = unicodedata.normalize("NFKD", key.casefold())
        return "".join(char for char in decomposed if not unicodedata.combining(char))

    @property
    def safe_website(self) -> str:
        """The website only if it is an http(s) URL, so it can be a link."""
        from .formats import safe_url  # noqa: PLC0415 (formats imports vobject; keep models light)

        return safe_url(self.website)

    @property
    def initial(self) -> str:
        letter = self.sort_name[:1].upper()
        return letter if letter.isalpha() and letter.isascii() else "#"


class ContactAddress(models.Model):
    class Kind(models.TextChoices):
        PEC = "pec", _("PEC")
        EMAIL = "email", _("E-mail")

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="addresses")
    kind = models.CharField(_("kind"), max_length=5, choices=Kind.choices, default=Kind.PEC)
    address = models.EmailField(_("address"), max_length=254)

    class Meta:
        ordering = ["contact", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["contact", "address"], name="contactaddress_unique_per_contact")
        ]
        indexes = [models.Index(fields=["address"])]

    def __str__(self) -> str:
        return self.address

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


class ContactPhone(models.Model):
    class Kind(models.TextChoices):
        # A context of their own: "Home" alone is the admin's home page in other catalogues.
        MOBILE = "mobile", pgettext_lazy("phone kind", "Mobile")
        WORK = "work", pgettext_lazy("phone kind", "Work")
        HOME = "home", pgettext_lazy("phone kind", "Home")
        FAX = "fax", pgettext_lazy("phone kind", "Fax")
        OTHER = "other", pgettext_lazy("phone kind", "Other")

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="phones")
    kind = models.CharField(_("kind"), max_length=6, choices=Kind.choices, default=Kind.MOBILE)
    number = models.CharField(_("number"), max_length=50)

    class Meta:
        ordering = ["contact", "pk"]

    def __str__(self) -> str:
        return self.number
