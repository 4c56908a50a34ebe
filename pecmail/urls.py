from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="mail:index", permanent=False)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("messages/", include("pecmail.mail.urls")),
    path("contacts/", include("pecmail.contacts.urls")),
    path("calendar/", include("pecmail.agenda.urls")),
    path("tasks/", include("pecmail.todos.urls")),
    path("search/", include("pecmail.search.urls")),
    path("options/", include("pecmail.options.urls")),
]
