from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from pecmail.accounts.views import email_management_disabled

# The admin signs in through allauth too: same rate limits, same two-factor check.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="mail:index", permanent=False)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("accounts/email/", email_management_disabled),
    path("accounts/confirm-email/", include("pecmail.accounts.disabled_urls")),
    path("accounts/", include("allauth.urls")),
    path("messages/", include("pecmail.mail.urls")),
    path("contacts/", include("pecmail.contacts.urls")),
    path("calendar/", include("pecmail.agenda.urls")),
    path("tasks/", include("pecmail.todos.urls")),
    path("search/", include("pecmail.search.urls")),
    path("options/", include("pecmail.options.urls")),
]
