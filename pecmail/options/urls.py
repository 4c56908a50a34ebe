from django.urls import path

from . import views

app_name = "options"

urlpatterns = [
    path("", views.index, name="index"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/add/", views.notification_add, name="notification_add"),
    path("notifications/<int:address_id>/delete/", views.notification_delete, name="notification_delete"),
    path("notifications/<int:address_id>/test/", views.notification_test, name="notification_test"),
    path("notifications/<int:address_id>/resend/", views.notification_resend, name="notification_resend"),
    path("notifications/confirm/<str:token>/", views.notification_confirm, name="notify_confirm"),
    path("rules/", views.rules, name="rules"),
    path("rules/add/", views.rule_create, name="rule_create"),
    path("rules/<int:rule_id>/", views.rule_edit, name="rule_edit"),
    path("rules/<int:rule_id>/delete/", views.rule_delete, name="rule_delete"),
    path("rules/<int:rule_id>/move/", views.rule_move, name="rule_move"),
    path("rules/<int:rule_id>/toggle/", views.rule_toggle, name="rule_toggle"),
    path("security/", views.security, name="security"),
    path("language/", views.language_switch, name="language_switch"),
]
