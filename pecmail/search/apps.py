from django.apps import AppConfig
from django.db.models.signals import post_save
from django.utils.translation import gettext_lazy as _


class SearchConfig(AppConfig):
    name = "pecmail.search"
    label = "search"
    verbose_name = _("Search")

    def ready(self) -> None:
        from pecmail.mail.models import Message

        from . import signals

        # Same transaction as the message's INSERT: a filed message is searchable at commit.
        post_save.connect(signals.message_saved, sender=Message, dispatch_uid="search.message_saved")
