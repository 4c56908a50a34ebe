"""Writes of the Options tab: preferences, notification addresses and notices, message rules."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.http import HttpRequest
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from pecmail.accounts.models import User
from pecmail.mail import parsing, storage
from pecmail.mail import services as mail_services
from pecmail.mail.models import Folder, Mailbox, Message
from pecmail.mail.pipeline import is_certified_domain

from .models import LoginEvent, Notice, NotificationAddress, Preferences, Rule, RuleRun
from .selectors import preferences_for

logger = logging.getLogger(__name__)

# The header a rule's forward carries: the chain of mailbox tokens that already forwarded it.
FORWARDED_HEADER = "X-Pecmail-Forwarded-By"
RECEIPTS_FOLDER = "Receipts"
CONFIRM_SALT = "pecmail.options.notification-confirm"


def _confirm_max_age() -> int:
    return getattr(settings, "PECMAIL_NOTIFY_CONFIRM_MAX_AGE", 3 * 24 * 3600)


def site_url(path: str = "") -> str:
    return settings.SITE_URL.rstrip("/") + path


# --- General parameters ------------------------------------------------------------------


PREFERENCE_FIELDS = (
    "signature",
    "signature_is_html",
    "language",
    "time_zone",
    "page_size",
    "receipt_type",
    "reading_pane",
    "receipts",
)


def preferences_update(*, user: User, **fields: Any) -> Preferences:
    """Store the given preference fields for ``user`` (others keep their value)."""
    unknown = set(fields) - set(PREFERENCE_FIELDS)
    if unknown:
        raise TypeError(f"unknown preferences: {sorted(unknown)}")
    prefs, _created = Preferences.objects.get_or_create(user=user)
    for name, value in fields.items():
        setattr(prefs, name, value)
    prefs.full_clean()
    prefs.save()
    return prefs


def mailbox_settings_update(*, mailbox: Mailbox, display_name: str, accept_ordinary_mail: bool) -> Mailbox:
    """The display name shown in From of the next message, and whether mail from outside PEC is accepted."""
    mailbox.display_name = display_name.strip()
    mailbox.accept_ordinary_mail = accept_ordinary_mail
    mailbox.save(update_fields=["display_name", "accept_ordinary_mail"])
    return mailbox


@transaction.atomic
def general_update(*, mailbox: Mailbox, data: dict[str, Any]) -> Preferences:
    """Save the General page: the mailbox's sender settings and its owner's preferences."""
    mailbox_settings_update(
        mailbox=mailbox, display_name=data["display_name"], accept_ordinary_mail=data["accept_ordinary_mail"]
    )
    return preferences_update(user=mailbox.owner, **{name: data[name] for name in PREFERENCE_FIELDS})


def session_preferences_apply(*, request: HttpRequest, prefs: Preferences) -> None:
    """Remember language and time zone in the session; the options middleware applies them."""
    session = getattr(request, "session", None)
    if session is None:
        return
    session["pecmail_timezone"] = prefs.time_zone
    if prefs.language:
        # One-shot: the middleware turns it into the language cookie, then the cookie rules.
        session["pecmail_language"] = prefs.language


# --- Notification addresses and notices --------------------------------------------------


def notification_address_add(*, user: User, address: str) -> NotificationAddress:
    """Add an ordinary address and send it a confirmation link; notices wait for the click.

    Raises ValidationError for an invalid or certified (PEC) address, or a duplicate.
    """
    address = address.strip().lower()
    validate_email(address)
    if is_certified_domain(address):
        raise ValidationError(_("Notices go to ordinary (non-PEC) addresses only."))
    if NotificationAddress.objects.filter(user=user, address=address).exists():
        raise ValidationError(_("This address is already in the list."))
    # Each address added mails a stranger a link: a small cap keeps this from being a spam tool.
    limit = getattr(settings, "PECMAIL_NOTIFY_MAX_ADDRESSES", 5)
    if NotificationAddress.objects.filter(user=user).count() >= limit:
        raise ValidationError(
            _("At most %(limit)d addresses: remove one before adding another.") % {"limit": limit}
        )
    with transaction.atomic():
        entry = NotificationAddress.objects.create(user=user, address=address)
        from . import tasks

        tasks.notification_confirmation_send.delay_on_commit(entry.pk)
    return entry


def notification_token(entry: NotificationAddress) -> str:
    return signing.dumps({"id": entry.pk, "address": entry.address}, salt=CONFIRM_SALT)


def notification_token_read(token: str) -> NotificationAddress:
    """The address a confirmation token names; ValidationError if forged, expired or stale."""
    try:
        data = signing.loads(token, salt=CONFIRM_SALT, max_age=_confirm_max_age())
    except signing.SignatureExpired:
        raise ValidationError(_("This confirmation link has expired. Add the address again.")) from None
    except signing.BadSignature:
        raise ValidationError(_("This confirmation link is not valid.")) from None
    entry = NotificationAddress.objects.filter(pk=data.get("id"), address=data.get("address")).first()
    if entry is None:
        raise ValidationError(_("This address is no longer in the list."))
    return entry


def notification_address_confirm(*, token: str) -> NotificationAddress:
    entry = notification_token_read(token)
    if entry.confirmed_at is None:
        NotificationAddress.objects.filter(pk=entry.pk, confirmed_at__isnull=True).update(
            confirmed_at=timezone.now()
        )
        entry.refresh_from_db()
    return entry


def notification_address_delete(*, entry: NotificationAddress) -> None:
    entry.delete()


def _send(*, subject: str, body: str, to: str) -> None:
    EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[to]).send()


def notification_confirmation_send(*, address_id: int) -> bool:
    """Mail the confirmation link to an unconfirmed address; False when nothing to send."""
    entry = NotificationAddress.objects.select_related("user").filter(pk=address_id).first()
    if entry is None or entry.confirmed:
        return False
    link = site_url(reverse("options:notify_confirm", args=[notification_token(entry)]))
    with translation.override(preferences_for(entry.user).language or settings.LANGUAGE_CODE):
        subject = _("Confirm notices from pecmail")
        body = _(
            "Someone asked pecmail to send a short notice to this address for each new certified "
            "message (PEC) arriving in %(mailbox)s.\n\nTo confirm, open this link within three days:\n"
            "%(link)s\n\nIf this was not you, ignore this message: nothing will be sent."
        ) % {"mailbox": entry.user.email, "link": link}
    _send(subject=subject, body=body, to=entry.address)
    return True


def _notice_text(*, user: User, message: Message | None, test: bool) -> tuple[str, str]:
    prefs = preferences_for(user)
    with (
        translation.override(prefs.language or settings.LANGUAGE_CODE),
        timezone.override(prefs.time_zone or settings.TIME_ZONE),
    ):
        if test:
            subject = _("pecmail: test notice")
            body = _(
                "This is a test notice for %(mailbox)s. Notices for new certified messages will look "
                "like this.\n\nOpen the webmail: %(link)s"
            ) % {"mailbox": user.email, "link": site_url("/")}
            return subject, body
        assert message is not None
        sender = (
            f"{message.from_name} <{message.from_address}>" if message.from_name else message.from_address
        )
        when = formats.date_format(timezone.localtime(message.date), "DATETIME_FORMAT")
        subject = _("New PEC in %(mailbox)s") % {"mailbox": user.email}
        body = _(
            "A new certified message (PEC) arrived in %(mailbox)s.\n\nFrom: %(sender)s\nSubject: %(subject)s\n"
            "Received: %(when)s\n\nRead it in the webmail: %(link)s"
        ) % {
            "mailbox": message.mailbox.address,
            "sender": sender,
            "subject": message.subject or _("(no subject)"),
            "when": when,
            "link": site_url(reverse("mail:index")),
        }
        return subject, body


def notice_test_send(*, address_id: int) -> bool:
    """Send a test notice to a confirmed address; False when the address is not confirmed."""
    entry = NotificationAddress.objects.select_related("user").filter(pk=address_id).first()
    if entry is None or not entry.confirmed:
        return False
    subject, body = _notice_text(user=entry.user, message=None, test=True)
    _send(subject=subject, body=body, to=entry.address)
    return True


def notices_send(*, message_id: int) -> int:
    """Tell each confirmed address of the owner about a new PEC; returns how many were sent.

    Each (address, message) is claimed with a unique row first, so a repeated task sends nothing twice.
    """
    message = Message.objects.select_related("mailbox__owner").filter(pk=message_id).first()
    if message is None or message.kind != Message.Kind.CERTIFIED:
        return 0
    user = message.mailbox.owner
    sent = 0
    for entry in NotificationAddress.objects.filter(user=user, confirmed_at__isnull=False):
        try:
            with transaction.atomic():
                notice = Notice.objects.create(address=entry, message=message)
        except IntegrityError:
            continue
        subject, body = _notice_text(user=user, message=message, test=False)
        try:
            _send(subject=subject, body=body, to=entry.address)
        except Exception as exc:  # noqa: BLE001 - recorded on the row; one bad address must not stop the rest
            logger.exception("notice to %s failed", entry.address)
            Notice.objects.filter(pk=notice.pk).update(error=str(exc)[:1000])
            continue
        Notice.objects.filter(pk=notice.pk).update(sent_at=timezone.now())
        sent += 1
    return sent


# --- Receipts folder --------------------------------------------------------------------


def receipt_file(*, message_id: int) -> bool:
    """Move a receipt into the "Receipts" folder when its owner files receipts; True if moved."""
    message = Message.objects.select_related("mailbox__owner", "folder").filter(pk=message_id).first()
    if message is None or not message.is_receipt or message.folder.role != Folder.Role.INBOX:
        return False
    if preferences_for(message.mailbox.owner).receipts != Preferences.Receipts.FOLDER:
        return False
    folder, _created = Folder.objects.get_or_create(
        mailbox=message.mailbox, name=RECEIPTS_FOLDER, defaults={"role": Folder.Role.USER}
    )
    mail_services.message_move(message=message, folder=folder)
    return True


# --- Message rules ----------------------------------------------------------------------


def rule_create(*, mailbox: Mailbox, **fields: Any) -> Rule:
    position = (Rule.objects.filter(mailbox=mailbox).aggregate(top=Max("position"))["top"] or 0) + 1
    rule = Rule(mailbox=mailbox, position=position, **fields)
    _rule_check(rule)
    rule.save()
    return rule


def rule_update(*, rule: Rule, **fields: Any) -> Rule:
    for name, value in fields.items():
        setattr(rule, name, value)
    _rule_check(rule)
    rule.save()
    return rule


def _rule_check(rule: Rule) -> None:
    if rule.move_to is not None and rule.move_to.mailbox_id != rule.mailbox_id:
        raise ValidationError(_("Choose one of your own folders."))
    if rule.field != Rule.Field.ALL and not rule.value.strip():
        raise ValidationError(_("Type the text the condition looks for."))
    if not (rule.forward_to or rule.move_to or rule.mark_read or rule.flag):
        raise ValidationError(_("Choose at least one action."))
    if rule.forward_to and rule.forward_to.strip().lower() == rule.mailbox.address.lower():
        raise ValidationError(_("A rule cannot forward to its own mailbox."))


def rule_delete(*, rule: Rule) -> None:
    rule.delete()


def rule_move(*, rule: Rule, up: bool) -> None:
    """Swap the rule with its neighbour above (``up``) or below; positions are renumbered 1…n."""
    with transaction.atomic():
        rules = list(
            Rule.objects.select_for_update().filter(mailbox_id=rule.mailbox_id).order_by("position", "id")
        )
        index = next(i for i, r in enumerate(rules) if r.pk == rule.pk)
        other = index - 1 if up else index + 1
        if 0 <= other < len(rules):
            rules[index], rules[other] = rules[other], rules[index]
        for position, item in enumerate(rules, start=1):
            if item.position != position:
                Rule.objects.filter(pk=item.pk).update(position=position)


def chain_token(mailbox: Mailbox) -> str:
    """The mailbox's opaque id in the forward chain header (no address leaks to the recipient)."""
    return salted_hmac("pecmail.options.forward-chain", mailbox.address, algorithm="sha256").hexdigest()[:16]


def forward_chain(raw: bytes) -> list[str]:
    """The tokens of every forward chain header in the message and the messages it carries."""
    tokens: list[str] = []
    for part in parsing.parse_bytes(raw).walk():
        for value in part.get_all(FORWARDED_HEADER) or []:
            tokens.extend(str(value).replace(",", " ").split())
    return tokens


def _matches(rule: Rule, message: Message) -> bool:
    if rule.field == Rule.Field.ALL:
        return True
    if rule.field == Rule.Field.SENDER:
        candidates = [message.from_address, message.from_name]
    elif rule.field == Rule.Field.SUBJECT:
        candidates = [message.subject]
    elif rule.field == Rule.Field.RECIPIENT:
        candidates = [*message.to_addresses, *message.cc_addresses]
    else:
        candidates = [message.kind, str(Message.Kind(message.kind).label)]
    needle = rule.value.strip().casefold()
    for candidate in candidates:
        text = (candidate or "").strip().casefold()
        if rule.operator == Rule.Operator.EQUALS and text == needle:
            return True
        if rule.operator == Rule.Operator.CONTAINS and needle in text:
            return True
    return False


def _rule_sees(rule: Rule, message: Message) -> bool:
    # Receipts reach only rules that ask for a PEC kind: "All messages" means what people send.
    if message.is_receipt and rule.field != Rule.Field.KIND:
        return False
    return _matches(rule, message)


def _forward(*, rule: Rule, message: Message, raw: bytes, chain: list[str]) -> Message | None:
    """Forward ``message`` as PEC (certified domain) or ordinary mail; the Sent copy for PEC."""
    address = rule.forward_to.strip().lower()
    header = " ".join([*chain, chain_token(rule.mailbox)])
    subject = _("Fwd: %(subject)s") % {"subject": message.subject} if message.subject else _("Fwd:")
    sender = f"{message.from_name} <{message.from_address}>" if message.from_name else message.from_address
    body = _(
        "Forwarded by the rule “%(rule)s” of %(mailbox)s.\nOriginal sender: %(sender)s\n"
        "The original message is attached."
    ) % {"rule": rule.name, "mailbox": rule.mailbox.address, "sender": sender}
    filename = "original.eml"
    if is_certified_domain(address):
        return mail_services.message_submit(
            mailbox=rule.mailbox,
            to=[address],
            cc=[],
            subject=subject,
            body_text=body,
            body_html=None,
            attachments=[(filename, "message/rfc822", raw)],
            receipt_type=preferences_for(rule.mailbox.owner).receipt_type,
            extra_headers={FORWARDED_HEADER: header},
        )
    email = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
        reply_to=[message.from_address] if message.from_address else None,
        headers={FORWARDED_HEADER: header},
    )
    email.attach(filename, raw, "application/octet-stream")
    email.send()
    return None


def rules_apply(*, message_id: int) -> list[RuleRun]:
    """Run the mailbox's active rules, in order, on a delivered message; returns the runs made now.

    Each (rule, message) is claimed by creating its RuleRun first, so a repeated task does nothing
    twice. A message that carries this mailbox's token in its forward chain, or a receipt of a
    message a rule forwarded, is never forwarded again (no loops). Failures are stored on the run.
    """
    message = Message.objects.select_related("mailbox__owner", "folder").filter(pk=message_id).first()
    if message is None or message.kind == Message.Kind.SUBMITTED:
        return []
    if message.related_id and RuleRun.objects.filter(produced_id=message.related_id).exists():
        return []
    rules = [r for r in Rule.objects.filter(mailbox=message.mailbox, active=True).select_related("move_to")]
    if not rules:
        return []
    raw: bytes | None = None
    runs: list[RuleRun] = []
    for rule in rules:
        if not _rule_sees(rule, message):
            continue
        try:
            with transaction.atomic():
                run = RuleRun.objects.create(rule=rule, message=message)
        except IntegrityError:
            continue
        runs.append(run)
        try:
            if rule.forward_to:
                if raw is None:
                    raw = storage.raw_get(message.raw_sha256)
                chain = forward_chain(raw)
                if chain_token(rule.mailbox) in chain:
                    run.status = RuleRun.Status.SKIPPED
                    run.error = _("Not forwarded again: this mailbox's rules already forwarded this message.")
                else:
                    run.produced = _forward(rule=rule, message=message, raw=raw, chain=chain)
            if rule.mark_read or rule.flag:
                mail_services.message_mark(
                    messages=[message],
                    seen=True if rule.mark_read else None,
                    flagged=True if rule.flag else None,
                )
            if rule.move_to is not None:
                mail_services.message_move(message=message, folder=rule.move_to)
            if run.status == RuleRun.Status.RUNNING:
                run.status = RuleRun.Status.DONE
        except Exception as exc:  # noqa: BLE001 - the user sees the failure on the rules page
            logger.exception("rule %s failed on message %s", rule.pk, message.pk)
            run.status = RuleRun.Status.FAILED
            run.error = str(exc)[:2000] or exc.__class__.__name__
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "produced", "finished_at"])
    return runs


# --- Logins -----------------------------------------------------------------------------


def login_event_record(*, user: User | None, request: HttpRequest | None, success: bool) -> LoginEvent | None:
    """Store one login (or failed attempt) with IP and browser; None when there is no user to show it to."""
    if user is None:
        return None
    meta = getattr(request, "META", {}) or {}
    ip = meta.get("REMOTE_ADDR") or None
    try:
        if ip:
            from django.core.validators import validate_ipv46_address

            validate_ipv46_address(ip)
    except ValidationError:
        ip = None
    event = LoginEvent.objects.create(
        user=user, success=success, ip=ip, user_agent=str(meta.get("HTTP_USER_AGENT", ""))[:300]
    )
    # The history is for the user to spot strangers, not an audit log: old rows go.
    keep_days = getattr(settings, "PECMAIL_LOGIN_HISTORY_DAYS", 90)
    LoginEvent.objects.filter(user=user, at__lt=timezone.now() - timedelta(days=keep_days)).delete()
    return event
