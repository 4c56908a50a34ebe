from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OptionsConfig(AppConfig):
    name = "pecmail.options"
    label = "options"
    verbose_name = _("Options")

    def ready(self) -> None:
        from . import receivers  # noqa: F401 - connects the signal receivers
